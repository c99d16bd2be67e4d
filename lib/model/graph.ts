/**
 * The Graph IR: named tensors (shape, dtype, data for initializers,
 * quantization parameters, pruning masks) and nodes in topological order.
 * Passes treat graphs as values: they return new graphs and never mutate input.
 */
import { EdgeOptError } from '../errors';
import { checkNodeSchema, type OpType } from './op-schema';
import { inferShapes } from './shapes';

export { OP_TYPES, type OpType } from './op-schema';

export type DType = 'float32' | 'int8' | 'uint8' | 'int32';
export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array;

export interface QuantParams {
  /** Weight bit width, 2..8 (values are held one per int8 in memory, bit-packed in .eom files). */
  bits: number;
  /**
   * symmetric: W = q * scale, q in [-(2^(bits-1) - 1), 2^(bits-1) - 1].
   * asymmetric: W = (q - zeroPoint) * scale, q in [-2^(bits-1), 2^(bits-1) - 1] (the unsigned
   * min/max grid shifted by 2^(bits-1) so it fits int8).
   */
  scheme: 'symmetric' | 'asymmetric';
  /** One scale per output channel, one for the tensor, or (groupSize) one per [channel][group]. */
  scale: Float32Array;
  zeroPoint?: number;
  /** Scales per group of this many weights along K (the last group may be shorter). */
  groupSize?: number;
  axis?: 0;
}

/** Scales a quantized [n, k] weight needs: 1, n, or n * ceil(k / groupSize). */
export function groupCount(k: number, groupSize?: number): number {
  return groupSize ? Math.ceil(k / groupSize) : 1;
}

export interface Tensor {
  name: string;
  dtype: DType;
  /** Dimensions; null is a dynamic (batch) dimension. */
  shape: Array<number | null>;
  /** Present for initializers (weights, biases). */
  data?: TensorData;
  quant?: QuantParams;
  /** Pruning mask (1 keep, 0 pruned), same length as data; zeros stay zeros. */
  mask?: Uint8Array;
}

/** Dense/QDense `activation` attr (fused at ONNX import; any other activation is its own node). */
export type Activation = 'none' | 'relu' | 'sigmoid' | 'tanh' | 'relu6';
export const ACTIVATIONS: readonly Activation[] = ['none', 'relu', 'sigmoid', 'tanh', 'relu6'];

export type AttrValue = string | number | boolean | number[];

/**
 * Ops follow ONNX (NCHW images, batch first, numpy broadcasting); op-schema.ts lists them with
 * their attributes (camelCase ONNX names: kernelShape, autoPad, ceilMode, countIncludePad, group).
 * Every input but the batch dimension has a fixed size; shapes.ts infers the rest. Differences:
 * Conv/pool pads are [top, left, bottom, right] as ONNX; Reshape's `shape` and Split's `split`
 * are attributes (constant), Clip's `min`/`max` too (absent = unbounded).
 *
 * Dense:   inputs [x, weight float32 [out, in], bias? [out]], attrs { activation }: y = x W^T + b
 *          over the last axis (an input whose whole row has `in` values is read as one row)
 * QDense:  inputs [x, weight int8 [out, in] with quant, bias? float32 [out]],
 *          attrs { activation, activationQuant: 'dynamic' } (per-row uint8 per call), or the
 *          static form NPUs need (calibrated, TFLite int8, lib/optimizer/calibrate.ts):
 *          attrs { activationQuant: 'static', inputScale: float32 > 0, inputZeroPoint: int in -128..127 };
 *          q = clamp(round_half_even(x / inputScale) + inputZeroPoint, -128, 127),
 *          acc = sum (q - inputZeroPoint) * w (int32), y = float(acc) * (inputScale * wScale[n]) + bias[n].
 *          Every backend (TS, native, the reference NPU plugin) gives bit-identical results.
 */
export interface GraphNode {
  name: string;
  op: OpType;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/**
 * A model input's element type. 'uint8': raw bytes (camera pixels) that the first layer scales
 * itself (lib/optimizer/input-scaling.ts folded a /255 or mean/std normalization into it); the
 * engine computes on them as float32 values 0..255.
 */
export type InputType = 'float32' | 'uint8';
export const INPUT_TYPES: readonly InputType[] = ['float32', 'uint8'];

export interface GraphInput {
  name: string;
  shape: Array<number | null>;
  /** Absent: float32. */
  dtype?: InputType;
}

/** The static int8 grid of an activation tensor (TFLite's per-tensor scheme): real = (q - zeroPoint) * scale, q in -128..127. */
export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
}

export interface Graph {
  name: string;
  inputs: GraphInput[];
  outputs: string[];
  tensors: Record<string, Tensor>;
  nodes: GraphNode[];
  /**
   * Static int8 activations (lib/optimizer/quantize-cnn.ts): the grid of each activation tensor
   * (graph inputs and node outputs) that is held as int8. A node whose inputs and outputs all have
   * a grid (and whose weights are int8) runs in int8; lowering puts quantize/dequantize ops where
   * int8 and float32 nodes meet.
   */
  activationQuant?: Record<string, ActivationQuant>;
  /** Free-form string metadata (provenance, optimization history). */
  metadata: Record<string, string>;
}

/** A non-null object that is not an array. */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** An array of dimensions: non-negative integers, or null for the dynamic batch. */
export function validShape(shape: unknown): shape is Array<number | null> {
  return Array.isArray(shape) && shape.every((d) => d === null || (Number.isInteger(d) && d >= 0));
}

export function isGraph(x: unknown): x is Graph {
  const g = x as Graph;
  return !!g && typeof g === 'object' && Array.isArray(g.nodes) && Array.isArray(g.inputs) && typeof g.tensors === 'object';
}

/** A shallow copy: new containers, shared tensor data (passes replace, never edit, data). */
export function cloneGraph(g: Graph): Graph {
  return {
    name: g.name,
    inputs: g.inputs.map((i) => ({ ...i, shape: [...i.shape] })),
    outputs: [...g.outputs],
    tensors: Object.fromEntries(Object.entries(g.tensors).map(([k, t]) => [k, { ...t, shape: [...t.shape] }])),
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    metadata: { ...g.metadata },
    ...(g.activationQuant ? { activationQuant: { ...g.activationQuant } } : {}),
  };
}

export function elementCount(shape: ReadonlyArray<number | null>): number {
  return shape.reduce<number>((a, d) => a * (d ?? 1), 1);
}

const DTYPE_ARRAYS: Record<DType, new (n: number) => TensorData> = {
  float32: Float32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
};

export function dtypeOf(data: TensorData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  return 'int32';
}

export function arrayFor(dtype: DType, n: number): TensorData {
  return new DTYPE_ARRAYS[dtype](n);
}

/** The weight tensor of a Dense/QDense node, checked. */
export function denseWeight(g: Graph, node: GraphNode): Tensor & { data: TensorData } {
  const w = g.tensors[node.inputs[1]];
  if (!w?.data || w.shape.length !== 2) {
    throw new EdgeOptError('E_FORMAT', `node '${node.name}' (${node.op}) needs a 2-D weight initializer, got '${node.inputs[1]}'`);
  }
  return w as Tensor & { data: TensorData };
}

/** The bias of a Dense/QDense node, if any. */
export function denseBias(g: Graph, node: GraphNode): Float32Array | null {
  const name = node.inputs[2];
  if (!name) return null;
  const b = g.tensors[name];
  if (!(b?.data instanceof Float32Array)) throw new EdgeOptError('E_FORMAT', `node '${node.name}': bias '${name}' must be float32 data`);
  return b.data;
}

/**
 * The containers every pass relies on, as plain data from a file or a caller may
 * lack them: tensors an object of objects, inputs named and shaped, outputs names,
 * nodes with names, string arrays of inputs and outputs, and attrs.
 */
function validateStructure(g: Graph, fail: (msg: string) => never): void {
  if (!isObject(g.tensors)) fail(`tensors must be an object, got ${g.tensors === null ? 'null' : typeof g.tensors}`);
  for (const [name, t] of Object.entries(g.tensors)) if (!isObject(t)) fail(`tensor '${name}' is not an object`);
  if (!Array.isArray(g.inputs)) fail('inputs must be an array');
  g.inputs.forEach((input, i) => {
    if (!isObject(input) || typeof input.name !== 'string') fail(`input ${i} needs a name`);
    if (!validShape(input.shape))
      fail(`input '${input.name}' needs a shape of dimensions (null for the batch), got ${JSON.stringify(input.shape)}`);
  });
  if (!Array.isArray(g.outputs) || !g.outputs.every((o) => typeof o === 'string')) fail('outputs must be an array of tensor names');
  if (!Array.isArray(g.nodes)) fail('nodes must be an array');
  const names = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'string');
  g.nodes.forEach((n, i) => {
    if (!isObject(n) || typeof n.name !== 'string') fail(`node ${i} needs a name`);
    if (!names(n.inputs) || !names(n.outputs)) fail(`node '${n.name}' needs arrays of input and output names`);
    if (!isObject(n.attrs)) fail(`node '${n.name}' needs an attrs object`);
  });
}

/**
 * Checks references, topological order, initializer sizes, every node's op and
 * attributes (op-schema.ts) and infers every shape (shapes.ts); throws E_FORMAT,
 * E_SHAPE or E_UNSUPPORTED_OP naming the node and attribute at fault.
 */
export function validateGraph(g: Graph): Graph {
  const fail = (msg: string): never => {
    throw new EdgeOptError('E_FORMAT', `model '${g.name}': ${msg}`);
  };
  validateStructure(g, fail);
  if (!g.inputs.length) fail('has no inputs');
  for (const i of g.inputs) {
    if (i.dtype !== undefined && !INPUT_TYPES.includes(i.dtype))
      fail(`input '${i.name}' has dtype '${String(i.dtype)}' (${INPUT_TYPES.join(' or ')})`);
  }
  if (!g.outputs.length) fail('has no outputs');
  for (const [name, t] of Object.entries(g.tensors)) {
    if (t.name !== name) fail(`tensor key '${name}' differs from its name '${t.name}'`);
    if (!(t.dtype in DTYPE_ARRAYS)) fail(`tensor '${name}' has unknown dtype '${t.dtype}'`);
    if (!validShape(t.shape)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(t.shape)}`);
    if (t.data) {
      if (dtypeOf(t.data) !== t.dtype) fail(`tensor '${name}' is ${t.dtype} but holds ${dtypeOf(t.data)} data`);
      if (t.data.length !== elementCount(t.shape)) fail(`tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    }
    if (t.mask && (!t.data || t.mask.length !== t.data.length)) fail(`tensor '${name}' has a mask of the wrong size`);
    if (t.quant) {
      const [rows, cols] = [t.shape[0] ?? 0, t.shape[1] ?? 0];
      const { bits, groupSize, zeroPoint, scheme } = t.quant;
      if (!(Number.isInteger(bits) && bits >= 2 && bits <= 8)) fail(`tensor '${name}' has quant.bits ${bits} (2..8)`);
      if (scheme !== 'symmetric' && scheme !== 'asymmetric') fail(`tensor '${name}' has unknown quant scheme '${String(scheme)}'`);
      if (groupSize !== undefined && !(Number.isInteger(groupSize) && groupSize > 0)) fail(`tensor '${name}' has an invalid groupSize`);
      if (zeroPoint !== undefined && !(Number.isInteger(zeroPoint) && Math.abs(zeroPoint) <= 255))
        fail(`tensor '${name}' has an invalid zeroPoint`);
      const want = groupSize ? rows * groupCount(cols, groupSize) : undefined;
      const n = t.quant.scale.length;
      if (want !== undefined ? n !== want : n !== 1 && n !== rows)
        fail(`tensor '${name}' has ${n} scales for ${rows} channels${groupSize ? ` in groups of ${groupSize}` : ''}`);
      if (t.quant.scale.some((s) => !(s > 0 && Number.isFinite(s)))) fail(`tensor '${name}' has a non-positive or non-finite scale`);
    }
  }
  const known = new Set(g.inputs.map((i) => i.name));
  for (const name of Object.keys(g.tensors)) if (g.tensors[name].data) known.add(name);
  const produced = new Set<string>();
  for (const node of g.nodes) {
    checkNodeSchema(g.name, node, (name) => !!g.tensors[name]?.data);
    for (const input of node.inputs) if (!known.has(input)) fail(`node '${node.name}' reads '${input}' before it is produced`);
    if (node.op === 'Dense' || node.op === 'QDense') {
      const w = denseWeight(g, node);
      const wantDtype = node.op === 'Dense' ? 'float32' : 'int8';
      if (w.dtype !== wantDtype) fail(`node '${node.name}' (${node.op}) needs a ${wantDtype} weight, '${w.name}' is ${w.dtype}`);
      if (node.op === 'QDense' && !w.quant) fail(`node '${node.name}' (QDense) weight '${w.name}' has no quantization parameters`);
      const bias = denseBias(g, node);
      if (bias && bias.length !== w.shape[0]) fail(`node '${node.name}': bias has ${bias.length} values for ${w.shape[0]} outputs`);
    }
    for (const out of node.outputs) {
      if (produced.has(out) || g.inputs.some((i) => i.name === out) || g.tensors[out]?.data) fail(`tensor '${out}' is produced twice`);
      produced.add(out);
      known.add(out);
    }
  }
  for (const out of g.outputs) if (!known.has(out)) fail(`output '${out}' is never produced`);
  for (const [name, q] of Object.entries(g.activationQuant ?? {})) {
    if (!known.has(name) || g.tensors[name]?.data) fail(`activationQuant names '${name}', which is not an activation tensor`);
    if (!(q && q.scale > 0 && Number.isFinite(q.scale)))
      fail(`activationQuant of '${name}' has scale ${String(q?.scale)} (a finite number > 0)`);
    if (!(Number.isInteger(q.zeroPoint) && q.zeroPoint >= -128 && q.zeroPoint <= 127))
      fail(`activationQuant of '${name}' has zeroPoint ${String(q.zeroPoint)} (an integer in -128..127)`);
  }
  inferShapes(g);
  return g;
}
