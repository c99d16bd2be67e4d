/**
 * The .eom container: a safetensors file. Layout: 8-byte little-endian header
 * length, a JSON header ({ name: { dtype, shape, data_offsets } } plus
 * "__metadata__": string map), then the raw little-endian tensor bytes.
 * The graph (nodes, inputs, quantization parameters) lives in
 * __metadata__.edgeopt_graph as JSON; every array is a tensor entry, so any
 * safetensors reader can list and read them. Pruning masks are bit-packed
 * (`<tensor>::mask`, one bit per weight, LSB first); 2..4-bit weights are packed
 * floor(8 / bits) per byte (a U8 entry; the graph records `packedBits`). Loading never executes anything
 * and validates every offset and size before allocating. Both JSON texts (the header and the graph in it)
 * are scanned before they are parsed (util/json-guard.ts): bounded depth and value count, no repeated key.
 */
import { EdgeOptError } from '../errors';
import type { DType, Graph, GraphNode, QuantParams, Tensor, TensorData } from './graph';
import { arrayFor, elementCount, isObject, validateGraph, validShape } from './graph';
import {
  countKept,
  fromBytePlanes,
  fromHalfArray,
  keptValues,
  packBits,
  packedLength,
  packInts,
  scatterKept,
  toBytePlanes,
  toHalfArray,
  unpackBits,
  unpackInts,
} from './eom-codecs';
import { biasFromGrid, biasOnGrid, biasStep, gridStep, int8ConvBiases } from './bias-grid';
import { isEnvelope, unwrapEnvelope, wrapEnvelope } from './eom-envelope';
import { isHalfExact } from '../util/float16';
import { parseJsonGuarded, type JsonLimits } from '../util/json-guard';

export const EOM_FORMAT_VERSION = '1';
/**
 * What real models need, with room to spare: an .eom header takes about 300 bytes per fp32
 * tensor and 630 per pruned int8 one (entry, scale, mask and graph metadata), so 4 MiB holds
 * some 6,000 int8 layers; the bundled MLP needs 1.1 KB, a ResNet-50-sized graph about 100 KB.
 * (safetensors itself allows 100 MB, where a crafted header costs seconds and gigabytes.)
 */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
/** Either JSON text (header, graph): a header has depth 3, a graph 5; each needs about 25 values per layer. */
export const EOM_JSON_LIMITS: JsonLimits = { maxDepth: 16, maxValues: 250_000 };

const FROM_ST: Record<string, DType> = { F32: 'float32', I32: 'int32', I8: 'int8', U8: 'uint8', F16: 'float32' };
const ST_SIZE: Record<string, number> = { F32: 4, I32: 4, I8: 1, U8: 1, F16: 2 };

/** How a tensor is described inside the metadata graph; arrays refer to entries by name. */
interface TensorMeta {
  dtype: DType;
  shape: Array<number | null>;
  data?: string;
  mask?: string;
  /** Set when the data entry holds `bits`-bit values packed LSB first (bits <= 4). */
  packedBits?: number;
  /** Set when the data entry holds only the values the mask keeps, in order. */
  sparse?: boolean;
  quant?: Omit<QuantParams, 'scale'> & { scale: string };
  /** Set when the data entry holds the int32 grid values of an int8 Conv's float32 bias (bias-grid.ts). */
  biasGrid?: true;
}

interface GraphMeta {
  name: string;
  inputs: Graph['inputs'];
  outputs: string[];
  nodes: GraphNode[];
  tensors: Record<string, TensorMeta>;
  metadata: Record<string, string>;
  activationQuant?: Graph['activationQuant'];
}

interface Entry {
  name: string;
  dtype: 'F32' | 'F16' | 'I32' | 'I8' | 'U8';
  data: TensorData | Uint16Array;
  shape: number[];
}

const ST_OF: Array<[new (...a: never[]) => TensorData, Entry['dtype']]> = [
  [Float32Array, 'F32'],
  [Int32Array, 'I32'],
  [Int8Array, 'I8'],
  [Uint8Array, 'U8'],
];

function entryOf(name: string, data: TensorData, shape?: number[]): Entry {
  const dtype = ST_OF.find(([c]) => data instanceof c)![1];
  return { name, dtype, data, shape: shape ?? [data.length] };
}

/** The plain bytes a compressed .eom may expand to (what loadModel reads from disk at most). */
export const MAX_PLAIN_EOM_BYTES = 2 ** 31;

export interface EomEncodeOptions {
  /**
   * Write the compressed form: brotli over the file with multi-byte entries as byte planes, so the
   * graph description, scales and biases shrink (int8 weights hardly do). Not a safetensors file
   * then; decodeEom/loadModel read it. A model that would expand past the reader's bound (1024x,
   * e.g. all-zero weights) is written plain. Default false.
   */
  compress?: boolean;
}

/** The int8 Conv biases that sit exactly on their int32 grid, with those values. */
function biasesOnGrid(g: Graph): Map<string, Int32Array> {
  const found = new Map<string, Int32Array>();
  for (const { bias, refs } of int8ConvBiases(g)) {
    const values = biasOnGrid(g.tensors[bias].data as Float32Array, gridStep(g, refs));
    if (values) found.set(bias, values);
  }
  return found;
}

/** Serializes a graph to .eom bytes. */
export function encodeEom(graph: Graph, options: EomEncodeOptions = {}): Buffer {
  validateGraph(graph);
  const entries: Entry[] = [];
  const tensors: Record<string, TensorMeta> = {};
  const onGrid = biasesOnGrid(graph);
  for (const t of Object.values(graph.tensors)) {
    const meta: TensorMeta = { dtype: t.dtype, shape: t.shape };
    const grid = onGrid.get(t.name);
    if (grid) meta.biasGrid = true;
    if (t.data) {
      let values = grid ?? t.data;
      if (t.mask) {
        values = keptValues(values, t.mask);
        meta.sparse = true;
      }
      const bits = t.quant?.bits ?? 8;
      if (values instanceof Int8Array && bits <= 4) {
        values = packInts(values, bits);
        meta.packedBits = bits;
      }
      entries.push(entryOf(t.name, values, meta.sparse || meta.packedBits ? undefined : (t.shape as number[])));
      meta.data = t.name;
    }
    if (t.mask) {
      entries.push(entryOf(`${t.name}::mask`, packBits(t.mask)));
      meta.mask = `${t.name}::mask`;
    }
    if (t.quant) {
      const { scale, ...rest } = t.quant;
      const name = `${t.name}::scale`;
      // Group scales are half-precision by construction; keep them 2 bytes each.
      if (scale.length > 1 && isHalfExact(scale)) entries.push({ name, dtype: 'F16', data: toHalfArray(scale), shape: [scale.length] });
      else entries.push(entryOf(name, scale));
      meta.quant = { ...rest, scale: name };
    }
    tensors[t.name] = meta;
  }
  const meta: GraphMeta = {
    name: graph.name,
    inputs: graph.inputs,
    outputs: graph.outputs,
    nodes: graph.nodes,
    tensors,
    metadata: graph.metadata,
    ...(graph.activationQuant ? { activationQuant: graph.activationQuant } : {}),
  };
  // Widest element first keeps every tensor naturally aligned after an 8-byte-padded header.
  entries.sort((a, b) => b.data.BYTES_PER_ELEMENT - a.data.BYTES_PER_ELEMENT);
  const header: Record<string, unknown> = {
    __metadata__: { format: 'edgeopt', eom_version: EOM_FORMAT_VERSION, edgeopt_graph: JSON.stringify(meta) },
  };
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.byteLength] };
    offset += e.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const assemble = (bytePlanes: boolean): Buffer => {
    const out = Buffer.alloc(8 + headerBytes.length + offset);
    out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
    headerBytes.copy(out, 8);
    let pos = 8 + headerBytes.length;
    for (const e of entries) {
      const raw = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      const width = e.data.BYTES_PER_ELEMENT;
      out.set(bytePlanes && width > 1 ? toBytePlanes(raw, width) : raw, pos);
      pos += e.data.byteLength;
    }
    return out;
  };
  return (options.compress && wrapEnvelope(assemble(true))) || assemble(false);
}

export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 10 && bytes[8] === 0x7b; // '{' right after the length
}

/** A plain (safetensors) or compressed .eom. */
export function looksLikeEom(bytes: Uint8Array): boolean {
  return looksLikeSafetensors(bytes) || isEnvelope(bytes);
}

/** Parses .eom bytes into a graph; `source` names the file in errors. */
export function decodeEom(input: Uint8Array, source = '<bytes>'): Graph {
  const fail = (msg: string): never => {
    throw new EdgeOptError('E_FORMAT', `${source}: ${msg}`);
  };
  let bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let bytePlanes = false;
  if (isEnvelope(bytes)) ({ plain: bytes, bytePlanes } = unwrapEnvelope(bytes, MAX_PLAIN_EOM_BYTES, fail));
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, a safetensors file starts with an 8-byte header length`);
  const headerLen64 = bytes.readBigUInt64LE(0);
  if (headerLen64 > BigInt(bytes.length - 8)) fail(`header length ${headerLen64} runs past the end of the file (${bytes.length} bytes)`);
  const headerLen = Number(headerLen64);
  if (headerLen > MAX_HEADER_BYTES) fail(`header of ${headerLen} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  let header: Record<string, unknown>;
  try {
    header = parseJsonGuarded(bytes.toString('utf8', 8, 8 + headerLen), EOM_JSON_LIMITS, (m) => fail(`header: ${m}`)) as Record<
      string,
      unknown
    >;
  } catch (err) {
    if (err instanceof EdgeOptError) throw err;
    return fail(`header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  // 1. Validate every entry against the bytes present, then copy it out.
  const ranges: Array<[number, number, string]> = [];
  const specs: Array<{ name: string; dtype: DType; half: boolean; shape: number[]; begin: number; end: number }> = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = FROM_ST[String(v?.dtype)];
    if (!dtype) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(v?.dtype)} (F32, I32, I8, U8)`);
    const shape = v.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor '${name}' has an invalid shape`);
    const offs = v.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      fail(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) fail(`tensor '${name}' spans bytes ${begin}..${end} but the data section has ${dataLen}`);
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    const want = count * ST_SIZE[String(v.dtype)];
    if (!Number.isSafeInteger(want) || want !== end - begin) {
      fail(`tensor '${name}' declares shape [${shape}] (${want} bytes) but its byte range holds ${end - begin}`);
    }
    ranges.push([begin, end, name]);
    specs.push({ name, dtype, half: v.dtype === 'F16', shape: shape as number[], begin, end });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) fail(`tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  }
  const arrays = new Map<string, TensorData>();
  for (const s of specs) {
    const count = elementCount(s.shape);
    const raw = s.half ? new Uint16Array(count) : arrayFor(s.dtype, count);
    const stored = bytes.subarray(dataStart + s.begin, dataStart + s.end);
    if (bytePlanes && raw.BYTES_PER_ELEMENT > 1) fromBytePlanes(stored, raw.BYTES_PER_ELEMENT, new Uint8Array(raw.buffer));
    else new Uint8Array(raw.buffer).set(stored);
    arrays.set(s.name, raw instanceof Uint16Array ? fromHalfArray(raw) : raw);
  }

  // 2. Rebuild the graph from the metadata.
  const md = header.__metadata__ as Record<string, unknown> | undefined;
  if (!md || typeof md.edgeopt_graph !== 'string')
    fail('no __metadata__.edgeopt_graph: this safetensors file holds tensors but no edgeopt graph');
  if (md!.eom_version !== EOM_FORMAT_VERSION)
    fail(`.eom version ${String(md!.eom_version)} is not supported (this build reads ${EOM_FORMAT_VERSION})`);
  let meta: GraphMeta;
  try {
    meta = parseJsonGuarded(md!.edgeopt_graph as string, EOM_JSON_LIMITS, (m) => fail(`edgeopt_graph metadata: ${m}`)) as GraphMeta;
  } catch (err) {
    if (err instanceof EdgeOptError) throw err;
    return fail(`edgeopt_graph metadata is not JSON (${(err as Error).message})`);
  }
  if (
    !isObject(meta) ||
    !Array.isArray(meta.nodes) ||
    !Array.isArray(meta.inputs) ||
    !Array.isArray(meta.outputs) ||
    !isObject(meta.tensors)
  ) {
    fail('edgeopt_graph metadata lacks nodes, inputs, outputs or tensors');
  }
  if (meta.metadata !== undefined && (!isObject(meta.metadata) || Object.values(meta.metadata).some((v) => typeof v !== 'string')))
    fail('edgeopt_graph metadata: metadata must map names to strings');
  const entry = (ref: string | undefined, owner: string, want: DType): TensorData => {
    const a = ref === undefined ? undefined : arrays.get(ref);
    if (!a) return fail(`tensor '${owner}' refers to a missing entry '${ref}'`);
    const ctor = arrayFor(want, 0).constructor;
    if (a.constructor !== ctor) fail(`entry '${ref}' of '${owner}' must be ${want}`);
    return a;
  };
  // Data entries may be sparse (kept values only) and/or bit-packed; undo both.
  const tensorData = (t: TensorMeta, name: string, mask: Uint8Array | undefined): TensorData => {
    const count = elementCount(t.shape);
    if (t.sparse && !mask) fail(`tensor '${name}' is stored sparse but has no mask`);
    const stored = t.sparse ? countKept(mask!) : count;
    if (t.packedBits === undefined) {
      const values = entry(t.data, name, t.dtype);
      if (values.length !== stored) fail(`tensor '${name}' has ${values.length} stored values, expected ${stored}`);
      return t.sparse ? scatterKept(values, mask!) : values;
    }
    const bits = t.packedBits;
    if (t.dtype !== 'int8' || !(bits >= 2 && bits <= 4)) fail(`tensor '${name}' has invalid packedBits`);
    const packed = entry(t.data, name, 'uint8') as Uint8Array;
    if (packed.length !== packedLength(stored, bits))
      fail(`tensor '${name}': ${packed.length} packed bytes for ${stored} ${bits}-bit values`);
    const values = unpackInts(packed, bits, stored);
    return t.sparse ? scatterKept(values, mask!) : values;
  };
  const tensors: Record<string, Tensor> = {};
  const onGrid: Array<[Tensor, TensorMeta]> = [];
  for (const [name, t] of Object.entries(meta.tensors)) {
    if (!isObject(t) || !['float32', 'int32', 'int8', 'uint8'].includes(t.dtype)) fail(`tensor '${name}' has an unknown dtype`);
    if (!validShape(t.shape)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(t.shape)}`);
    const tensor: Tensor = { name, dtype: t.dtype, shape: t.shape };
    if (t.mask !== undefined) {
      const count = elementCount(t.shape);
      const bits = entry(t.mask, name, 'uint8') as Uint8Array;
      if (!Number.isSafeInteger(count) || bits.length !== Math.ceil(count / 8))
        fail(`mask of '${name}' has ${bits.length} bytes for ${count} values`);
      tensor.mask = unpackBits(bits, count);
    }
    if (t.biasGrid !== undefined) onGrid.push([tensor, t]);
    else if (t.data !== undefined) tensor.data = tensorData(t, name, tensor.mask);
    if (t.quant) {
      tensor.quant = { ...t.quant, scale: entry(t.quant.scale, name, 'float32') as Float32Array };
    }
    tensors[name] = tensor;
  }
  // Biases stored as int32 grid values: back to the float32 they stand for, once the weight scales are read.
  for (const [tensor, t] of onGrid) {
    // The grid is the one Conv that reads the bias: its input's int8 grid times its weight scales.
    const readers = meta.nodes.filter((n) => isObject(n) && Array.isArray(n.inputs) && n.inputs.includes(tensor.name));
    const conv = readers.length === 1 && readers[0].op === 'Conv' && readers[0].inputs[2] === tensor.name ? readers[0] : undefined;
    const [input, weight] = conv?.inputs ?? [];
    const grid = typeof input === 'string' ? meta.activationQuant?.[input] : undefined;
    const scales = typeof weight === 'string' ? tensors[weight]?.quant?.scale : undefined;
    const count = elementCount(t.shape);
    if (t.dtype !== 'float32' || t.mask !== undefined || t.sparse || t.packedBits !== undefined || t.quant)
      fail(`tensor '${tensor.name}': only a plain float32 bias can be stored on its int32 grid`);
    if (!isObject(grid) || !(typeof grid.scale === 'number' && grid.scale > 0 && Number.isFinite(grid.scale)))
      fail(`bias '${tensor.name}' is stored on an int32 grid but is not the bias of one Conv with an int8 input grid`);
    if (!scales || (scales.length !== 1 && scales.length !== count))
      fail(`bias '${tensor.name}': its Conv's weight '${String(weight)}' has no scales for its ${count} channels`);
    const values = entry(t.data, tensor.name, 'int32') as Int32Array;
    if (values.length !== count) fail(`bias '${tensor.name}' has ${values.length} stored values, expected ${count}`);
    tensor.data = biasFromGrid(values, biasStep(grid!.scale, scales!));
  }
  const graph: Graph = {
    name: String(meta.name ?? 'model'),
    inputs: meta.inputs,
    outputs: meta.outputs,
    tensors,
    nodes: meta.nodes.map((n, i) => {
      if (!isObject(n)) return fail(`node ${i} is not an object`);
      return { name: String(n.name), op: n.op, inputs: n.inputs, outputs: n.outputs, attrs: n.attrs ?? {} };
    }),
    metadata: meta.metadata && typeof meta.metadata === 'object' ? meta.metadata : {},
    ...(meta.activationQuant && typeof meta.activationQuant === 'object' ? { activationQuant: meta.activationQuant } : {}),
  };
  for (const n of graph.nodes) {
    if (!Array.isArray(n.inputs) || !Array.isArray(n.outputs)) fail(`node '${n.name}' lacks inputs or outputs`);
  }
  try {
    return validateGraph(graph);
  } catch (err) {
    if (err instanceof EdgeOptError) throw new EdgeOptError(err.code, `${source}: ${err.message}`);
    throw err;
  }
}
