/**
 * ONNX -> Graph. Decodes the ModelProto with protobufjs, checks the model-level
 * contract (IR 3..10, default-domain opset 9..21, one float input whose only
 * symbolic dim is the batch, one output, no subgraphs, sparse or external
 * tensors), then imports the nodes in order with the handlers in ops.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../../errors';
import { type Graph, type GraphInput, validateGraph } from '../graph';
import { ImportContext } from './context';
import { HANDLERS, SUPPORTED_OPS } from './ops';
import { AttrType, DataType, decodeModelProto, type GraphProto, type ModelProto, type NodeProto, toNumber } from './proto';
import { decodeTensor, typeName } from './tensor';

export const IR_VERSIONS = { min: 3, max: 10 } as const;
export const OPSETS = { min: 9, max: 21 } as const;

/** A ModelProto starts with field 1 (ir_version, varint): tag byte 0x08 and a small version. */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x08 && bytes[1] >= 1 && bytes[1] <= 0x7f;
}

export function loadOnnx(source: string | Uint8Array): Graph {
  if (typeof source === 'string') {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(source);
    } catch (err) {
      throw new EdgeOptError('E_NOT_FOUND', `cannot read ONNX file ${source}: ${(err as Error).message}`);
    }
    return importOnnx(bytes, source);
  }
  if (!(source instanceof Uint8Array)) throw new EdgeOptError('E_ARGUMENT', 'loadOnnx takes a path or the bytes of an .onnx file');
  return importOnnx(source, '<onnx bytes>');
}

function defaultOpset(m: ModelProto, source: string): number {
  const entry = m.opset_import.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const version = entry ? toNumber(entry.version) : NaN;
  if (!(version >= OPSETS.min && version <= OPSETS.max)) {
    throw new EdgeOptError(
      'E_FORMAT',
      `${source}: ONNX opset ${entry ? version : '(none)'} is not supported (opsets ${OPSETS.min}..${OPSETS.max} of the default domain are)`,
    );
  }
  return version;
}

function checkNode(node: NodeProto, source: string): void {
  const where = `${source}: node '${node.name}' (${node.op_type})`;
  if (node.attribute.some((a) => a.type === AttrType.GRAPH || a.type === AttrType.GRAPHS || a.g || a.graphs.length)) {
    throw new EdgeOptError('E_UNSUPPORTED_OP', `${where} has a subgraph; control flow (If, Loop, Scan) is not supported`);
  }
  if (node.domain && node.domain !== 'ai.onnx') {
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `${where} is in domain '${node.domain}'; only default-domain ops are supported: ${SUPPORTED_OPS.join(', ')}`,
    );
  }
  if (!Object.hasOwn(HANDLERS, node.op_type)) {
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `${where}: op '${node.op_type}' is not supported; supported ops: ${SUPPORTED_OPS.join(', ')}`,
    );
  }
  if (!node.output.length) throw new EdgeOptError('E_FORMAT', `${where} has no outputs`);
}

/** The one graph input that is not an initializer, with its shape (null: symbolic); uint8 inputs are raw images (Cast to float). */
function graphInput(g: GraphProto, initializers: Set<string>, source: string): GraphInput {
  const inputs = g.input.filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `${source}: the graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); edgeopt imports single-input models`,
    );
  }
  const [input] = inputs;
  const tensor = input.type?.tensor_type;
  if (!tensor) throw new EdgeOptError('E_FORMAT', `${source}: input '${input.name}' is not a tensor`);
  if (tensor.elem_type !== DataType.FLOAT && tensor.elem_type !== DataType.UINT8)
    throw new EdgeOptError(
      'E_DTYPE',
      `${source}: input '${input.name}' is ${typeName(tensor.elem_type)}; float32 and uint8 inputs are supported`,
    );
  const dims = tensor.shape?.dim ?? [];
  if (!dims.length) throw new EdgeOptError('E_SHAPE', `${source}: input '${input.name}' has no shape; it needs [batch, features...]`);
  const shape = dims.map((d) =>
    d.dim_value !== null && d.dim_value !== undefined && toNumber(d.dim_value) > 0 ? toNumber(d.dim_value) : null,
  );
  if (shape.slice(1).some((d) => d === null || !Number.isSafeInteger(d))) {
    throw new EdgeOptError(
      'E_SHAPE',
      `${source}: input '${input.name}' has shape [${shape.map((d) => d ?? '?')}]; only the first (batch) dimension may be symbolic`,
    );
  }
  return { name: input.name, shape, ...(tensor.elem_type === DataType.UINT8 ? { dtype: 'uint8' as const } : {}) };
}

export function importOnnx(bytes: Uint8Array, source: string): Graph {
  const m = decodeModelProto(bytes, source);
  const ir = toNumber(m.ir_version);
  if (!(ir >= IR_VERSIONS.min && ir <= IR_VERSIONS.max)) {
    throw new EdgeOptError('E_FORMAT', `${source}: ONNX IR version ${ir} is not supported (${IR_VERSIONS.min}..${IR_VERSIONS.max})`);
  }
  const opset = defaultOpset(m, source);
  const g = m.graph;
  if (!g) throw new EdgeOptError('E_FORMAT', `${source}: the model has no graph`);
  if (g.sparse_initializer.length)
    throw new EdgeOptError('E_FORMAT', `${source}: sparse initializers are not supported; store weights densely`);
  const name = path.basename(source).replace(/\.onnx$/, '') || g.name || 'onnx';
  const ctx = new ImportContext(source, opset);

  const initializers = new Set<string>();
  for (const t of g.initializer) {
    if (!t.name || initializers.has(t.name))
      throw new EdgeOptError('E_FORMAT', `${source}: initializer '${t.name}' is unnamed or duplicated`);
    initializers.add(t.name);
    ctx.values.set(t.name, { kind: 'const', t: decodeTensor(t, `${source}: initializer '${t.name}'`) });
  }
  const input = graphInput(g, initializers, source);
  ctx.values.set(input.name, { kind: 'act', name: input.name, shape: input.shape });
  if (input.dtype === 'uint8') ctx.uint8Input = input.name;
  if (g.output.length !== 1)
    throw new EdgeOptError('E_UNSUPPORTED_OP', `${source}: the graph has ${g.output.length} outputs; edgeopt imports single-output models`);

  for (const node of g.node) {
    for (const i of node.input) if (i) ctx.uses.set(i, (ctx.uses.get(i) ?? 0) + 1);
    for (const o of node.output) ctx.reserve(o);
  }
  ctx.uses.set(g.output[0].name, (ctx.uses.get(g.output[0].name) ?? 0) + 1);
  ctx.reserve(input.name);

  g.node.forEach((node, i) => {
    checkNode(node, source);
    ctx.index = i;
    HANDLERS[node.op_type](ctx, node);
  });

  const out = ctx.values.get(g.output[0].name);
  if (!out || out.kind !== 'act')
    throw new EdgeOptError('E_FORMAT', `${source}: output '${g.output[0].name}' is ${out ? 'a constant' : 'never produced'}`);
  const metadata: Record<string, string> = {};
  for (const p of m.metadata_props) if (p.key && !(p.key in Object.prototype)) metadata[p.key] = p.value;
  metadata.source = `onnx: ${[m.producer_name, m.producer_version].filter(Boolean).join(' ') || 'unknown producer'}, IR ${ir}, opset ${opset}`;
  return validateGraph({ name, inputs: [input], outputs: [out.name], tensors: ctx.tensors, nodes: ctx.nodes, metadata });
}
