/**
 * Lowering: Graph (ONNX-like ops, NCHW semantics) -> Program (program.ts).
 * In order: BatchNormalization folds into the Conv/Dense before it; each
 * activation folds into the epilogue of the Conv/Dense/binary op that produces
 * its input when nothing else reads that; images are stored NHWC (converted
 * once where an input enters, a view when C or H*W is 1), any other tensor in
 * whatever order its producer left it (a Transpose only relabels the order);
 * axes, pads and broadcasts become physical; Reshape/Flatten/Identity/Dropout
 * become views where the order allows (a Flatten of an NHWC image feeding a
 * Dense permutes the Dense's K order instead of moving data); the arena
 * planner (arena.ts) gives every activation an offset.
 */
import { EdgeOptError } from '../errors';
import type { ActivationQuant, Graph, GraphNode, Tensor } from '../model/graph';
import { ACTIVATION_OPS } from '../model/op-schema';
import { batchNormOf, foldAffine } from '../model/rewrite';
import { imageAxis, inferShapes, onnxRank, type ValueShape, windowAttrs, windowGeometry, type WindowGeometry } from '../model/shapes';
import { applyArena } from './arena';
import {
  identity,
  logicalStrides,
  NHWC,
  physicalShape,
  physicalToLogical,
  product,
  reshapeView,
  sameMemoryOrder,
  transposePerm,
} from './layout';
import { int8Node, lowerInt8 } from './lower-int8';
import type { Activation, Program, ProgramOp, ProgramTensor } from './program';

/** A graph value during lowering: logical per-image dims, physical order, and where it lives. */
export interface Value extends ValueShape {
  perm: number[];
  /** Held as int8 on this grid (static quantization); absent: float32. */
  quant?: ActivationQuant;
  /** Program tensor (-1 while a reshape is pending). */
  tensor: number;
  /** A reshape that is not a view of `source`: materialized on demand (a Dense may read the source instead). */
  pending?: Value;
  /** Copies of this value in other physical orders, by perm. */
  converted?: Map<string, Value>;
}

export class Lowering {
  readonly tensors: ProgramTensor[] = [];
  readonly ops: ProgramOp[] = [];
  readonly values = new Map<string, Value>();
  private readonly consts = new Map<string, number>();

  constructor(readonly g: Graph) {}

  fail(node: GraphNode, why: string, code: 'E_UNSUPPORTED_OP' | 'E_SHAPE' = 'E_UNSUPPORTED_OP'): never {
    throw new EdgeOptError(code, `model '${this.g.name}': node '${node.name}' (${node.op}) ${why}`);
  }

  /** A new activation tensor of these logical dims in order `perm` (int8 on grid `quant` when given). */
  activation(name: string, dims: number[], folded: boolean, perm: number[], alias?: number, quant?: ActivationQuant): Value {
    const shape = physicalShape(dims, perm);
    const image = !folded && dims.length === 3 && perm.join() === NHWC.join();
    this.tensors.push({
      name,
      dtype: quant ? 'int8' : 'float32',
      shape,
      layout: image ? 'nhwc' : 'plain',
      bytes: (quant ? 1 : 4) * product(shape),
      ...(alias !== undefined ? { alias: this.tensors[alias].alias ?? alias } : {}),
      ...(quant ? { quant: { scale: quant.scale, zeroPoint: quant.zeroPoint } } : {}),
    });
    return { dims, folded, perm, tensor: this.tensors.length - 1, ...(quant ? { quant } : {}) };
  }

  /** A constant of any element type (int8 weights, int32 biases and multipliers, lookup tables). */
  typedConstant(name: string, data: Int8Array | Int32Array, shape: number[]): number {
    this.tensors.push({ name, dtype: data instanceof Int8Array ? 'int8' : 'int32', shape, layout: 'plain', data });
    return this.tensors.length - 1;
  }

  /** `v` as float32: itself, or dequantized once (cached). */
  asFloat(v0: Value, name: string): Value {
    const quant = v0.quant;
    if (!quant) return v0; // a pending float reshape stays pending (a Dense may read its source)
    const cached = v0.converted?.get('f32');
    if (cached) return cached;
    let out: Value;
    if (v0.pending) {
      // The source is dequantized and the reshape stays pending: a Dense reads the float source in
      // its own order, and a reshape that must be materialized moves float32, as native transposes do.
      out = { dims: v0.dims, folded: v0.folded, perm: v0.perm, tensor: -1, pending: this.asFloat(v0.pending, name) };
    } else {
      out = this.activation(`${name}/dequantized`, v0.dims, v0.folded, v0.perm);
      const count = product(this.tensors[v0.tensor].shape);
      this.ops.push({ op: 'dequantize', node: name, x: v0.tensor, y: out.tensor, count, scale: quant.scale, zeroPoint: quant.zeroPoint });
    }
    (v0.converted ??= new Map()).set('f32', out);
    return out;
  }

  /** `v` as int8 on grid `q`: itself, or quantized once per grid (an int8 value on another grid goes through float). */
  asInt8(v0: Value, q: ActivationQuant, name: string): Value {
    const v = this.real(v0, name);
    if (v.quant && v.quant.scale === q.scale && v.quant.zeroPoint === q.zeroPoint) return v;
    const key = `q${q.scale}:${q.zeroPoint}`;
    const cached = v.converted?.get(key);
    if (cached) return cached;
    const x = this.asFloat(v, name);
    const out = this.activation(`${name}/quantized`, v.dims, v.folded, v.perm, undefined, q);
    const count = product(this.tensors[x.tensor].shape);
    this.ops.push({ op: 'quantize', node: name, x: x.tensor, y: out.tensor, count, scale: q.scale, zeroPoint: q.zeroPoint });
    (v.converted ??= new Map()).set(key, out);
    return out;
  }

  /** A constant (a graph initializer or data made here), added once per name. */
  constant(name: string, data: Float32Array, shape: number[]): number {
    const known = this.consts.get(name);
    if (known !== undefined) return known;
    this.tensors.push({ name, dtype: 'float32', shape, layout: 'plain', data });
    this.consts.set(name, this.tensors.length - 1);
    return this.tensors.length - 1;
  }

  initializer(name: string): number {
    const t = this.g.tensors[name];
    if (!(t.data instanceof Float32Array))
      throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${this.g.name}': tensor '${name}' must be float32`);
    return this.constant(name, t.data, t.shape as number[]);
  }

  /** A view of `v` under the same dims in another order that holds the same memory, or a new shape. */
  view(v: Value, name: string, dims: number[], folded: boolean, perm: number[]): Value {
    return this.activation(name, dims, folded, perm, v.tensor, v.quant);
  }

  /** `v` materialized (a pending reshape becomes a transpose + view). */
  real(v: Value, name: string): Value {
    if (!v.pending) return v;
    const plain = this.inOrder(v.pending, identity(v.pending.dims.length), `${name}/plain`);
    const r = this.view(plain, name, v.dims, v.folded, identity(v.dims.length));
    Object.assign(v, { tensor: r.tensor, perm: r.perm, pending: undefined });
    return v;
  }

  /** `v` stored in order `perm`: itself, a view (only size-1 dims move), or a transpose (cached). */
  inOrder(v0: Value, perm: number[], name: string): Value {
    const v = this.real(v0, name);
    if (v.perm.join() === perm.join()) return v;
    const key = perm.join();
    const cached = v.converted?.get(key);
    if (cached) return cached;
    let out: Value;
    if (sameMemoryOrder(v.dims, v.perm, perm)) out = this.view(v, `${name}/view`, v.dims, v.folded, perm);
    else {
      out = this.activation(`${name}/${perm.join('')}`, v.dims, v.folded, perm, undefined, v.quant);
      this.ops.push({
        op: 'transpose',
        node: name,
        x: v.tensor,
        y: out.tensor,
        inShape: this.tensors[v.tensor].shape,
        perm: transposePerm(v.perm, perm),
      });
    }
    (v.converted ??= new Map()).set(key, out);
    return out;
  }

  /** Input i as it is held (int8 or float32): for views, which keep the element type. */
  stored(node: GraphNode, i: number): Value {
    const v = this.values.get(node.inputs[i]);
    if (!v) this.fail(node, `input ${i} ('${node.inputs[i]}') must be an activation`);
    return v!;
  }

  /** Input i as float32 (an int8 input is dequantized once). */
  input(node: GraphNode, i: number): Value {
    return this.asFloat(this.stored(node, i), `${node.name}/in${i}`);
  }

  /** Input i as an NHWC image, float32, or int8 on grid `q`. */
  image(node: GraphNode, i = 0, q?: ActivationQuant): Value {
    const v = this.stored(node, i);
    if (v.folded || v.dims.length !== 3) this.fail(node, 'needs an NCHW image input', 'E_SHAPE');
    const nhwc = this.inOrder(v, NHWC, node.name);
    return q ? this.asInt8(nhwc, q, node.name) : this.asFloat(nhwc, node.name);
  }
}

/** The activation an activation node computes, or undefined for other ops. */
export function activationOf(node: GraphNode): Activation | undefined {
  const a = node.attrs;
  switch (node.op) {
    case 'Relu':
      return { kind: 'relu' };
    case 'LeakyRelu':
      return { kind: 'leakyrelu', alpha: (a.alpha as number | undefined) ?? 0.01 };
    case 'Clip': {
      const min = (a.min as number | undefined) ?? -Infinity;
      const max = (a.max as number | undefined) ?? Infinity;
      return min === 0 && max === Infinity ? { kind: 'relu' } : { kind: 'clip', min, max };
    }
    case 'HardSigmoid':
      return { kind: 'hardsigmoid', alpha: (a.alpha as number | undefined) ?? 0.2, beta: (a.beta as number | undefined) ?? 0.5 };
    case 'HardSwish':
      return { kind: 'hardswish' };
    case 'Sigmoid':
      return { kind: 'sigmoid' };
    case 'Tanh':
      return { kind: 'tanh' };
    default:
      return undefined;
  }
}

/** A Dense node's fused `activation` attribute. */
function denseActivation(node: GraphNode): Activation {
  switch (node.attrs.activation ?? 'none') {
    case 'relu':
      return { kind: 'relu' };
    case 'relu6':
      return { kind: 'clip', min: 0, max: 6 };
    case 'sigmoid':
      return { kind: 'sigmoid' };
    case 'tanh':
      return { kind: 'tanh' };
    default:
      return { kind: 'none' };
  }
}

/**
 * BatchNormalization after a Conv or a 2-D Dense (with nothing else reading the
 * Conv/Dense output) is folded into its weights, as at ONNX import.
 */
function foldBatchNorms(
  g: Graph,
  readers: Map<string, number>,
  outputs: Set<string>,
  fusedNodes: Record<string, string>,
): { nodes: GraphNode[]; tensors: Record<string, Tensor> } {
  const tensors = { ...g.tensors };
  const nodes: GraphNode[] = [];
  for (const node of g.nodes) {
    const prev = nodes[nodes.length - 1];
    const foldable =
      node.op === 'BatchNormalization' &&
      prev &&
      (prev.op === 'Conv' || (prev.op === 'Dense' && (prev.attrs.activation ?? 'none') === 'none')) &&
      prev.outputs[0] === node.inputs[0] &&
      readers.get(prev.outputs[0]) === 1 &&
      !outputs.has(prev.outputs[0]);
    if (!foldable) {
      nodes.push(node);
      continue;
    }
    const { mul, add } = batchNormOf(g, node);
    if (prev.op === 'Dense' && (tensors[prev.inputs[1]].shape[0] as number) !== mul.length) {
      nodes.push(node);
      continue;
    }
    const { weight, bias } = foldAffine(tensors, prev, mul, add);
    const wName = `${prev.name}.weight/bn`;
    const bName = `${prev.name}.bias/bn`;
    tensors[wName] = { ...weight, name: wName };
    tensors[bName] = { ...bias, name: bName };
    nodes[nodes.length - 1] = { ...prev, inputs: [prev.inputs[0], wName, bName], outputs: [node.outputs[0]] };
    fusedNodes[node.name] = prev.name;
  }
  return { nodes, tensors };
}

/** The graph with every BatchNormalization that follows a Conv (or a 2-D Dense) folded into its weights, as lowering does. */
export function foldConvBatchNorms(graph: Graph): Graph {
  const readers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const folded = foldBatchNorms(graph, readers, new Set(graph.outputs), {});
  return { ...graph, nodes: folded.nodes, tensors: folded.tensors };
}

/** Lowers a validated graph to a Program with its arena planned. */
export function lowerGraph(graph: Graph): Program {
  const shapes = inferShapes(graph);
  const readers = new Map<string, number>();
  const outputs = new Set(graph.outputs);
  for (const n of graph.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const fusedNodes: Record<string, string> = {};
  const folded = foldBatchNorms(graph, readers, outputs, fusedNodes);
  const g: Graph = { ...graph, nodes: folded.nodes, tensors: folded.tensors };
  const L = new Lowering(g);
  for (const input of g.inputs) {
    const s = shapes.get(input.name)!;
    L.values.set(input.name, L.activation(input.name, s.dims, false, identity(s.dims.length)));
  }
  const programInputs = g.inputs.map((i) => ({ name: i.name, tensor: L.values.get(i.name)!.tensor, shape: shapes.get(i.name)!.dims }));
  // The activation node each node's output could fuse (its only reader, not a model output).
  const producerOf = new Map<string, GraphNode>();
  for (const n of g.nodes) for (const o of n.outputs) producerOf.set(o, n);
  const firstReader = new Map<string, GraphNode>();
  for (const n of g.nodes) for (const i of n.inputs) if (!firstReader.has(i)) firstReader.set(i, n);
  const fusedInto = new Set<GraphNode>();
  const fusable = (node: GraphNode, accept?: (act: Activation, next: GraphNode) => boolean): GraphNode | undefined => {
    const out = node.outputs[0];
    if (readers.get(out) !== 1 || outputs.has(out)) return undefined;
    const next = firstReader.get(out);
    return next && ACTIVATION_OPS.includes(next.op) && (!accept || accept(activationOf(next)!, next)) ? next : undefined;
  };
  /** The node's epilogue activation (fusing the next node when it can and `accept` agrees) and the graph tensor its result is. */
  const epilogue: Epilogue = (node, base = { kind: 'none' }, accept) => {
    const next = base.kind === 'none' ? fusable(node, accept) : undefined;
    if (!next) return { act: base, out: node.outputs[0] };
    fusedInto.add(next);
    fusedNodes[next.name] = node.name;
    return { act: activationOf(next)!, out: next.outputs[0] };
  };
  const shapeOf = (name: string) => shapes.get(name)!;

  for (const node of g.nodes) {
    if (fusedInto.has(node)) continue;
    lowerNode(L, node, shapeOf, epilogue);
  }
  const programOutputs = g.outputs.map((name) => ({ name, ...edgeOutput(L, name, shapeOf(name)) }));
  claimOutputs(L, programOutputs);
  return {
    name: g.name,
    ...applyArena({ tensors: L.tensors, ops: L.ops, inputs: programInputs, outputs: programOutputs }),
    fusedNodes,
  } as Program;
}

/** An output in logical order; its tensor (or view root) must be the caller's buffer alone. */
function edgeOutput(L: Lowering, name: string, s: ValueShape): { tensor: number; shape: number[]; folded?: boolean } {
  // Dequantize before reordering: transposes move float32 (an int8 output in NHWC is converted first).
  const v = L.inOrder(L.asFloat(L.values.get(name)!, `${name}/out`), identity(s.dims.length), `${name}/out`);
  return { tensor: v.tensor, shape: s.dims, ...(s.folded ? { folded: true } : {}) };
}

/** Outputs whose root is an input, another output's root, or not written by an op here get their own copy. */
function claimOutputs(L: Lowering, outs: Array<{ name: string; tensor: number }>): void {
  const written = new Set<number>();
  for (const op of L.ops) {
    if ('y' in op) written.add(op.y);
    if (op.op === 'split') op.outputs.forEach((t) => written.add(t));
  }
  const taken = new Set<number>();
  for (const o of outs) {
    const root = L.tensors[o.tensor].alias ?? o.tensor;
    if (written.has(root) && !taken.has(root)) {
      taken.add(root);
      continue;
    }
    const t = L.tensors[o.tensor];
    const copy = L.activation(`${o.name}/copy`, t.shape, false, identity(t.shape.length));
    L.ops.push({ op: 'transpose', node: o.name, x: o.tensor, y: copy.tensor, inShape: t.shape, perm: identity(t.shape.length) });
    L.tensors[copy.tensor].name = o.name;
    L.tensors[copy.tensor].layout = t.layout;
    o.tensor = copy.tensor;
    taken.add(copy.tensor);
  }
}

export type Epilogue = (
  node: GraphNode,
  base?: Activation,
  accept?: (act: Activation, next: GraphNode) => boolean,
) => { act: Activation; out: string };

function lowerNode(L: Lowering, node: GraphNode, shapeOf: (name: string) => ValueShape, epilogue: Epilogue): void {
  const g = L.g;
  const a = node.attrs;
  const out = (name: string, perm: number[], quant?: ActivationQuant) => {
    const s = shapeOf(name);
    const v = L.activation(name, s.dims, s.folded, perm, undefined, quant);
    L.values.set(name, v);
    return v;
  };
  if (int8Node(L, node)) return lowerInt8(L, node, epilogue, out);
  switch (node.op) {
    case 'Conv':
      return lowerConv(L, node, epilogue, out);
    case 'MaxPool':
    case 'AveragePool': {
      const x = L.image(node);
      const [c, inH, inW] = x.dims;
      const [kh, kw] = a.kernelShape as number[];
      const y = out(node.outputs[0], NHWC);
      L.ops.push({
        op: node.op === 'MaxPool' ? 'maxpool' : 'avgpool',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        c,
        ...windowFields(node, inH, inW, kh, kw),
        countIncludePad: a.countIncludePad === true,
      });
      return;
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool': {
      const x = L.image(node);
      const [c, h, w] = x.dims;
      const y = out(node.outputs[0], NHWC);
      L.ops.push({
        op: node.op === 'GlobalAveragePool' ? 'globalavgpool' : 'globalmaxpool',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        h,
        w,
        c,
      });
      return;
    }
    case 'LRN': {
      const x = L.image(node);
      const [c, h, w] = x.dims;
      const y = out(node.outputs[0], NHWC);
      L.ops.push({
        op: 'lrn',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        h,
        w,
        c,
        size: a.size as number,
        alpha: (a.alpha as number | undefined) ?? 1e-4,
        beta: (a.beta as number | undefined) ?? 0.75,
        bias: (a.bias as number | undefined) ?? 1,
      });
      return;
    }
    case 'BatchNormalization':
      return lowerBatchNorm(L, node, epilogue, out);
    case 'GroupNormalization': {
      const x = L.image(node);
      const [c, h, w] = x.dims;
      const { act, out: name } = epilogue(node);
      const y = out(name, NHWC);
      L.ops.push({
        op: 'groupnorm',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        weight: L.initializer(node.inputs[1]),
        bias: L.initializer(node.inputs[2]),
        h,
        w,
        c,
        groups: a.numGroups as number,
        epsilon: (a.epsilon as number | undefined) ?? 1e-5,
        act,
      });
      return;
    }
    case 'Dense':
    case 'QDense':
      return lowerDense(L, node, epilogue, out, shapeOf);
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return lowerBinary(L, node, node.op.toLowerCase() as 'add', epilogue, out, shapeOf);
    case 'Relu':
    case 'LeakyRelu':
    case 'Clip':
    case 'HardSigmoid':
    case 'HardSwish':
    case 'Sigmoid':
    case 'Tanh': {
      const x = L.real(L.input(node, 0), node.name);
      const y = out(node.outputs[0], x.perm);
      L.ops.push({ op: 'unary', node: node.name, x: x.tensor, y: y.tensor, act: activationOf(node)! });
      return;
    }
    case 'Softmax': {
      const x = L.real(L.input(node, 0), node.name);
      const axis = imageAxis(g, node, x, (a.axis as number | undefined) ?? -1);
      const y = out(node.outputs[0], x.perm);
      const [outer, size, inner] = aroundAxis(L.tensors[x.tensor].shape, x.perm.indexOf(axis));
      L.ops.push({ op: 'softmax', node: node.name, x: x.tensor, y: y.tensor, outer, axis: size, inner });
      return;
    }
    case 'Concat': {
      const first = L.real(L.input(node, 0), node.name);
      const xs = node.inputs.map((_, i) => L.inOrder(L.input(node, i), first.perm, `${node.name}/in${i}`));
      const axis = imageAxis(g, node, first, a.axis as number);
      const y = out(node.outputs[0], first.perm);
      const p = first.perm.indexOf(axis);
      const outer = product(L.tensors[y.tensor].shape.slice(0, p));
      L.ops.push({
        op: 'concat',
        node: node.name,
        inputs: xs.map((x) => x.tensor),
        y: y.tensor,
        outer,
        sizes: xs.map((x) => product(L.tensors[x.tensor].shape.slice(p))),
      });
      return;
    }
    case 'Split': {
      const x = L.real(L.input(node, 0), node.name);
      const axis = imageAxis(g, node, x, (a.axis as number | undefined) ?? 0);
      const p = x.perm.indexOf(axis);
      const ys = node.outputs.map((o) => out(o, x.perm));
      L.ops.push({
        op: 'split',
        node: node.name,
        x: x.tensor,
        outputs: ys.map((y) => y.tensor),
        outer: product(L.tensors[x.tensor].shape.slice(0, p)),
        sizes: ys.map((y) => product(L.tensors[y.tensor].shape.slice(p))),
      });
      return;
    }
    case 'Pad': {
      const x = L.real(L.input(node, 0), node.name);
      const pads = a.pads as number[];
      const rank = onnxRank(x);
      const off = x.folded ? 0 : 1;
      const begin = x.perm.map((l) => pads[l + off]);
      const end = x.perm.map((l) => pads[l + off + rank]);
      const y = out(node.outputs[0], x.perm);
      L.ops.push({
        op: 'pad',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        inShape: L.tensors[x.tensor].shape,
        begin,
        end,
        value: (a.value as number | undefined) ?? 0,
      });
      return;
    }
    case 'Transpose': {
      // Only the order changes: the same memory, relabeled.
      const x = L.real(L.stored(node, 0), node.name);
      const rank = onnxRank(x);
      const onnxPerm = (a.perm as number[] | undefined) ?? [0, ...identity(rank - 1).map((i) => rank - 1 - i)];
      const q = x.folded ? onnxPerm : onnxPerm.slice(1).map((p) => p - 1);
      const inv = new Array<number>(q.length);
      q.forEach((src, j) => (inv[src] = j));
      const s = shapeOf(node.outputs[0]);
      L.values.set(node.outputs[0], { dims: s.dims, folded: s.folded, perm: x.perm.map((l) => inv[l]), tensor: x.tensor, quant: x.quant });
      return;
    }
    case 'ReduceMean':
      return lowerReduceMean(L, node, shapeOf, out);
    case 'Flatten':
    case 'Reshape': {
      const x = L.stored(node, 0);
      const s = shapeOf(node.outputs[0]);
      const src = x.pending ?? x;
      const perm = src.tensor >= 0 ? reshapeView(src.dims, src.perm, s.dims) : null;
      if (perm && !x.pending) L.values.set(node.outputs[0], L.view(x, node.outputs[0], s.dims, s.folded, perm));
      else if (perm && x.pending) L.values.set(node.outputs[0], L.view(src, node.outputs[0], s.dims, s.folded, perm));
      else
        L.values.set(node.outputs[0], {
          dims: s.dims,
          folded: s.folded,
          perm: identity(s.dims.length),
          tensor: -1,
          pending: src,
          quant: src.quant,
        });
      return;
    }
    case 'Identity':
    case 'Dropout':
      L.values.set(node.outputs[0], L.stored(node, 0));
      return;
  }
}

/** [outer, dim, inner] of a physical shape around position p. */
function aroundAxis(shape: number[], p: number): [number, number, number] {
  return [product(shape.slice(0, p)), shape[p], product(shape.slice(p + 1))];
}

export type Out = (name: string, perm: number[], quant?: ActivationQuant) => Value;

/** The window fields ConvOp and PoolOp share (program.ts), from a node's window attributes. */
export function windowFields(n: GraphNode, inH: number, inW: number, kh: number, kw: number) {
  const w = windowAttrs(n, kh, kw);
  const geo = windowGeometry(inH, inW, w) as WindowGeometry;
  return {
    inH,
    inW,
    outH: geo.outH,
    outW: geo.outW,
    kh,
    kw,
    strideH: w.strides[0],
    strideW: w.strides[1],
    dilationH: w.dilations[0],
    dilationW: w.dilations[1],
    padTop: geo.padTop,
    padLeft: geo.padLeft,
    padBottom: geo.padBottom,
    padRight: geo.padRight,
  };
}

function lowerConv(L: Lowering, node: GraphNode, epilogue: Epilogue, out: Out): void {
  const x = L.image(node);
  const [inC, inH, inW] = x.dims;
  const wt = L.g.tensors[node.inputs[1]];
  if (!(wt.data instanceof Float32Array))
    L.fail(node, `has ${wt.dtype} weights and no static int8 activation grids (quantize it with activations: 'static')`);
  const [outC, cpg, kh, kw] = wt.shape as number[];
  const ohwi = toOhwi(wt.data as Float32Array, wt.shape as number[]);
  const { act, out: name } = epilogue(node);
  const y = out(name, NHWC);
  L.ops.push({
    op: 'conv',
    node: node.name,
    x: x.tensor,
    y: y.tensor,
    weight: L.constant(`${wt.name}/ohwi`, ohwi, [outC, kh, kw, cpg]),
    ...(node.inputs[2] ? { bias: L.initializer(node.inputs[2]) } : {}),
    inC,
    outC,
    ...windowFields(node, inH, inW, kh, kw),
    groups: (node.attrs.group as number | undefined) ?? 1,
    act,
  });
}

/** OIHW -> OHWI: an im2col patch row of NHWC input is (ky, kx, c) ordered. */
export function toOhwi<T extends Float32Array | Int8Array>(src: T, [outC, cpg, kh, kw]: number[]): T {
  const ohwi = new (src.constructor as new (n: number) => T)(src.length);
  for (let o = 0; o < outC; o++)
    for (let c = 0; c < cpg; c++) for (let i = 0; i < kh * kw; i++) ohwi[(o * kh * kw + i) * cpg + c] = src[(o * cpg + c) * kh * kw + i];
  return ohwi;
}

/** A standalone BatchNormalization: a 1x1 depthwise conv on images, a per-channel multiply-add otherwise. */
function lowerBatchNorm(L: Lowering, node: GraphNode, epilogue: Epilogue, out: Out): void {
  const { mul, add } = batchNormOf(L.g, node);
  const v = L.input(node, 0);
  const c = mul.length;
  const { act, out: name } = epilogue(node);
  if (!v.folded && v.dims.length === 3) {
    const x = L.image(node);
    const [, h, w] = x.dims;
    const y = out(name, NHWC);
    L.ops.push({
      op: 'conv',
      node: node.name,
      x: x.tensor,
      y: y.tensor,
      weight: L.constant(`${node.name}.scale/affine`, mul, [c, 1, 1, 1]),
      bias: L.constant(`${node.name}.shift/affine`, add, [c]),
      inC: c,
      outC: c,
      ...windowFields({ ...node, attrs: {} }, h, w, 1, 1),
      groups: c,
      act,
    });
    return;
  }
  // [N, C, ...]: scale then shift along the channel axis (logical dim 0).
  const x = L.real(v, node.name);
  const strides = (perm: number[]) => physicalShape(x.dims, perm).map((_, i) => (x.perm[i] === 0 ? 1 : 0));
  const shape = L.tensors[x.tensor].shape;
  const mid = L.activation(`${node.name}/scaled`, x.dims, x.folded, x.perm);
  const xs = logicalStrides(x.dims, x.perm);
  const own = x.perm.map((l) => xs[l]);
  L.ops.push({
    op: 'binary',
    node: node.name,
    fn: 'mul',
    a: x.tensor,
    b: L.constant(`${node.name}.scale/affine`, mul, [c]),
    y: mid.tensor,
    shape,
    aStrides: own,
    bStrides: strides(x.perm),
    act: { kind: 'none' },
  });
  const y = out(name, x.perm);
  L.ops.push({
    op: 'binary',
    node: node.name,
    fn: 'add',
    a: mid.tensor,
    b: L.constant(`${node.name}.shift/affine`, add, [c]),
    y: y.tensor,
    shape,
    aStrides: own,
    bStrides: strides(x.perm),
    act,
  });
}

function lowerDense(L: Lowering, node: GraphNode, epilogue: Epilogue, out: Out, shapeOf: (name: string) => ValueShape): void {
  const wt = L.g.tensors[node.inputs[1]];
  const [n, k] = wt.shape as number[];
  const v = L.input(node, 0);
  const ys = shapeOf(node.outputs[0]);
  const wholeRow = product(v.dims) === k; // one row per image: any memory order works, K is permuted to match
  const quant = node.op === 'QDense' ? wt.quant! : undefined;
  let x: Value;
  let kOrder: Int32Array | undefined;
  if (wholeRow && !quant?.groupSize) {
    const src = v.pending ?? v;
    x = src;
    const order = physicalToLogical(src.dims, src.perm);
    if (order.some((l, p) => l !== p)) kOrder = order;
  } else {
    x = L.inOrder(v, identity(v.dims.length), node.name);
  }
  const m = wholeRow ? 1 : product(v.dims) / k;
  const permute = <T extends Float32Array | Int8Array>(w: T): T => {
    if (!kOrder) return w;
    const o = new (w.constructor as new (len: number) => T)(w.length);
    for (let r = 0; r < n; r++) for (let p = 0; p < k; p++) o[r * k + p] = w[r * k + kOrder[p]];
    return o;
  };
  const base = denseActivation(node);
  // QDense fuses relu only (its integer epilogue clamps); anything else runs as a unary op after it.
  const fused = base.kind === 'none' || !quant || base.kind === 'relu' ? epilogue(node, base) : { act: base, out: node.outputs[0] };
  const split = !!quant && fused.act.kind !== 'none' && fused.act.kind !== 'relu';
  const perm = identity(ys.dims.length);
  const y = split ? L.activation(`${fused.out}/linear`, ys.dims, ys.folded, perm) : out(fused.out, perm);
  const wName = kOrder ? `${wt.name}/k-order` : wt.name;
  const bias = node.inputs[2] ? { bias: L.initializer(node.inputs[2]) } : {};
  if (!quant) {
    const weight = L.constant(wName, permute(wt.data as Float32Array), [n, k]);
    L.ops.push({ op: 'dense', node: node.name, x: x.tensor, y: y.tensor, weight, ...bias, m, n, k, act: fused.act });
    return;
  }
  L.tensors.push({ name: wName, dtype: 'int8', shape: [n, k], layout: 'plain', data: permute(wt.data as Int8Array) });
  const weight = L.tensors.length - 1;
  const scales = L.constant(`${wt.name}::scale`, quant.scale, [quant.scale.length]);
  const at = node.attrs;
  const input =
    at.activationQuant === 'static' ? { scale: Math.fround(at.inputScale as number), zeroPoint: at.inputZeroPoint as number } : undefined;
  const output =
    at.outputScale !== undefined ? { scale: Math.fround(at.outputScale as number), zeroPoint: at.outputZeroPoint as number } : undefined;
  L.ops.push({
    op: 'qdense',
    node: node.name,
    x: x.tensor,
    y: y.tensor,
    weight,
    scales,
    ...bias,
    m,
    n,
    k,
    zeroPoint: quant.zeroPoint ?? 0,
    groupSize: quant.groupSize ?? 0,
    ...(input ? { input } : {}),
    ...(output ? { output } : {}),
    act: split ? { kind: 'none' } : fused.act,
  });
  if (split) L.ops.push({ op: 'unary', node: node.name, x: y.tensor, y: out(fused.out, perm).tensor, act: fused.act });
}

function lowerBinary(
  L: Lowering,
  node: GraphNode,
  fn: 'add' | 'sub' | 'mul' | 'div',
  epilogue: Epilogue,
  out: Out,
  shapeOf: (name: string) => ValueShape,
): void {
  const s = shapeOf(node.outputs[0]);
  const acts = node.inputs.map((name) => L.values.get(name));
  const full = acts.find((v) => v && v.dims.length === s.dims.length && v.dims.every((d, i) => d === s.dims[i]));
  const perm = full ? L.real(full, node.name).perm : s.dims.length === 3 && !s.folded ? NHWC : identity(s.dims.length);
  const { act, out: name } = epilogue(node);
  const y = out(name, perm);
  const shape = L.tensors[y.tensor].shape;
  const operand = (i: number): { tensor: number; strides: number[] } => {
    if (acts[i]) {
      const r = L.real(L.input(node, i), `${node.name}/in${i}`); // an int8 operand (a float Add after an int8 Conv) is dequantized
      const ls = logicalStrides(r.dims, r.perm);
      const off = s.dims.length - r.dims.length; // equal ranks for activations
      return { tensor: r.tensor, strides: perm.map((l) => (r.dims[l - off] === 1 && s.dims[l] !== 1 ? 0 : ls[l - off])) };
    }
    const t = L.g.tensors[node.inputs[i]];
    const cd = t.shape as number[];
    // Right-align the constant with the ONNX shape; per-image logical dim l is ONNX dim l + 1 (unfolded) or l (folded).
    const rank = onnxRank(s);
    const cs = logicalStrides(cd, identity(cd.length));
    const strides = perm.map((l) => {
      const onnxDim = s.folded ? l : l + 1;
      const ci = cd.length - (rank - onnxDim);
      if (ci < 0 || (s.folded && l === 0)) return 0;
      return cd[ci] === 1 ? 0 : cs[ci];
    });
    return { tensor: L.initializer(node.inputs[i]), strides };
  };
  const [A, B] = [operand(0), operand(1)];
  L.ops.push({
    op: 'binary',
    node: node.name,
    fn,
    a: A.tensor,
    b: B.tensor,
    y: y.tensor,
    shape,
    aStrides: A.strides,
    bStrides: B.strides,
    act,
  });
}

function lowerReduceMean(L: Lowering, node: GraphNode, shapeOf: (name: string) => ValueShape, out: Out): void {
  let x = L.real(L.input(node, 0), node.name);
  const rank = onnxRank(x);
  const axes = ((node.attrs.axes as number[] | undefined) ?? identity(rank).slice(1)).map((ax) =>
    imageAxis(L.g, node, x, ax, 'axes entry'),
  );
  const keep = node.attrs.keepdims !== false;
  // The reduced dims must sit together in memory: if not, move them innermost.
  const at = x.perm.map((l, p) => (axes.includes(l) && x.dims[l] !== 1 ? p : -1)).filter((p) => p >= 0);
  if (at.some((p, i) => i > 0 && p !== at[i - 1] + 1)) {
    x = L.inOrder(x, [...x.perm.filter((l) => !axes.includes(l)), ...x.perm.filter((l) => axes.includes(l))], node.name);
  }
  const big = x.perm.map((l, p) => (axes.includes(l) ? p : -1)).filter((p) => p >= 0);
  const shape = L.tensors[x.tensor].shape;
  const lo = Math.min(...big);
  const hi = Math.max(...big);
  const outer = product(shape.slice(0, lo));
  const reduce = product(shape.slice(lo, hi + 1));
  const inner = product(shape.slice(hi + 1));
  const s = shapeOf(node.outputs[0]);
  // Output order: the kept dims in x's order (reduced ones, kept as 1, where they were).
  const renumber = (l: number) => (keep ? l : l - axes.filter((ax) => ax < l).length);
  const perm = keep ? x.perm : x.perm.filter((l) => !axes.includes(l)).map(renumber);
  const y = out(node.outputs[0], perm.length === s.dims.length ? perm : identity(s.dims.length));
  L.ops.push({ op: 'reducemean', node: node.name, x: x.tensor, y: y.tensor, outer, reduce, inner });
}
