/**
 * ONNX -> Graph. Decodes the ModelProto with protobufjs, checks the model-level
 * contract (IR 3..13, default-domain opset 7..23, float inputs whose only
 * symbolic dim is the batch, no subgraphs, sparse or external tensors), then
 * imports the nodes in order with the handlers in ops.ts. Handlers read each
 * op's attributes as its opset defines them (Clip's bounds became inputs at 11,
 * Pad's at 11, Split's sizes at 13, ReduceMean's axes at 18, ...).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../../errors';
import { type Graph, type GraphInput, validateGraph } from '../graph';
import { ImportContext } from './context';
import { HANDLERS, SUPPORTED_OPS } from './ops';
import { AttrType, DataType, decodeModelProto, type GraphProto, type ModelProto, type NodeProto, toNumber } from './proto';
import { decodeTensor, typeName } from './tensor';

export const IR_VERSIONS = { min: 3, max: 13 } as const;
export const OPSETS = { min: 7, max: 23 } as const;

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

/** The graph inputs that are not initializers, with their shapes (null: symbolic). */
function graphInputs(g: GraphProto, initializers: Set<string>, source: string): GraphInput[] {
  const inputs = g.input.filter((i) => !initializers.has(i.name));
  if (!inputs.length) throw new EdgeOptError('E_FORMAT', `${source}: the graph has no inputs`);
  if (new Set(inputs.map((i) => i.name)).size !== inputs.length) throw new EdgeOptError('E_FORMAT', `${source}: duplicated input names`);
  return inputs.map((input) => graphInput(input, source));
}

/** A graph input with its shape (null: symbolic); uint8 inputs are raw images (their Cast to float is the identity). */
function graphInput(input: GraphProto['input'][number], source: string): GraphInput {
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
  const inputs = graphInputs(g, initializers, source);
  for (const input of inputs) {
    const shape = { dims: input.shape.slice(1) as number[], folded: false };
    ctx.values.set(input.name, { kind: 'act', name: input.name, shape });
    ctx.shapes.set(input.name, shape);
    ctx.reserve(input.name);
  }
  if (!g.output.length) throw new EdgeOptError('E_FORMAT', `${source}: the graph has no outputs`);

  for (const node of g.node) {
    for (const i of node.input) if (i) ctx.uses.set(i, (ctx.uses.get(i) ?? 0) + 1);
    for (const o of node.output) ctx.reserve(o);
  }
  for (const o of g.output) ctx.uses.set(o.name, (ctx.uses.get(o.name) ?? 0) + 1);

  g.node.forEach((node, i) => {
    checkNode(node, source);
    ctx.index = i;
    HANDLERS[node.op_type](ctx, node);
  });

  const outputNames = g.output.map((o) => o.name);
  if (new Set(outputNames).size !== outputNames.length) throw new EdgeOptError('E_FORMAT', `${source}: duplicated output names`);
  const outputs = outputNames.map((o) => graphOutput(ctx, o, outputNames, inputs, source));
  const metadata: Record<string, string> = {};
  for (const p of m.metadata_props) if (p.key && !(p.key in Object.prototype)) metadata[p.key] = p.value;
  metadata.source = `onnx: ${[m.producer_name, m.producer_version].filter(Boolean).join(' ') || 'unknown producer'}, IR ${ir}, opset ${opset}`;
  return validateGraph({ name, inputs, outputs, tensors: ctx.tensors, nodes: ctx.nodes, metadata });
}

/**
 * The IR tensor of an ONNX graph output, under the output's ONNX name: an
 * aliased value (Identity, Dropout, a no-op Reshape) is renamed where its
 * producer allows, else copied by an IR Identity.
 */
function graphOutput(ctx: ImportContext, name: string, outputs: string[], inputs: Array<{ name: string }>, source: string): string {
  const out = ctx.values.get(name);
  if (!out || out.kind !== 'act')
    throw new EdgeOptError('E_FORMAT', `${source}: output '${name}' is ${out ? 'a constant or an unfinished pattern' : 'never produced'}`);
  if (out.name === name) return name;
  const producer = ctx.nodes.find((n) => n.outputs.includes(out.name));
  const sharedWithOutput = outputs.some(
    (o) => o !== name && (o === out.name || (ctx.values.get(o) as { name?: string })?.name === out.name),
  );
  if (producer && !inputs.some((i) => i.name === out.name) && !sharedWithOutput && !ctx.shapes.has(name)) {
    for (const n of ctx.nodes) {
      n.inputs = n.inputs.map((i) => (i === out.name ? name : i));
      n.outputs = n.outputs.map((o) => (o === out.name ? name : o));
    }
    ctx.shapes.set(name, ctx.shapes.get(out.name)!);
    for (const v of ctx.values.values()) if (v.kind === 'act' && v.name === out.name) v.name = name;
    return name;
  }
  ctx.emit({ name: ctx.uniqueName(`${name}/identity`), op: 'Identity', inputs: [out.name], outputs: [name], attrs: {} });
  return name;
}
