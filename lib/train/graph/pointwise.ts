/**
 * Element-wise ops: activations (forward value and derivative from the input), broadcast
 * binary ops between activations and constants (numpy rules, per-image index maps built once),
 * and Dropout (inverted, seeded; identity outside training).
 */
import { EdgeOptError } from '../../errors';
import type { Graph, GraphNode } from '../../model/graph';
import type { ValueShape } from '../../model/shapes';
import { stateless, type Forward, type TrainOp } from './op';

interface Unary {
  f: (x: number) => number;
  /** dy/dx at input x. */
  df: (x: number) => number;
  /** Set for clamps, which run as inline loops. */
  clip?: [number, number];
  /** HardSwish, inline too (MobileNetV3-style models are full of it). */
  hardSwish?: true;
}

function clipOf(lo: number, hi: number): Unary {
  return { f: (x) => (x < lo ? lo : x > hi ? hi : x), df: (x) => (x > lo && x < hi ? 1 : 0), clip: [lo, hi] };
}

function unaryOf(node: GraphNode): Unary {
  const a = node.attrs;
  switch (node.op) {
    case 'Relu':
      return clipOf(0, Infinity);
    case 'Clip':
      return clipOf((a.min as number | undefined) ?? -Infinity, (a.max as number | undefined) ?? Infinity);
    case 'LeakyRelu': {
      const alpha = (a.alpha as number | undefined) ?? 0.01;
      return { f: (x) => (x >= 0 ? x : alpha * x), df: (x) => (x >= 0 ? 1 : alpha) };
    }
    case 'HardSigmoid': {
      const alpha = (a.alpha as number | undefined) ?? 0.2;
      const beta = (a.beta as number | undefined) ?? 0.5;
      return {
        f: (x) => Math.max(0, Math.min(1, alpha * x + beta)),
        df: (x) => (alpha * x + beta > 0 && alpha * x + beta < 1 ? alpha : 0),
      };
    }
    case 'HardSwish':
      return {
        f: (x) => (x <= -3 ? 0 : x >= 3 ? x : (x * (x + 3)) / 6),
        df: (x) => (x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6),
        hardSwish: true,
      };
    case 'Sigmoid':
      return {
        f: (x) => 1 / (1 + Math.exp(-x)),
        df: (x) => {
          const s = 1 / (1 + Math.exp(-x));
          return s * (1 - s);
        },
      };
    case 'Tanh':
      return { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2 };
    case 'Identity':
      return { f: (x) => x, df: () => 1 };
    default:
      throw new EdgeOptError('E_UNSUPPORTED_OP', `train: no activation '${node.op}'`);
  }
}

export const UNARY_OPS = new Set(['Relu', 'Clip', 'LeakyRelu', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh', 'Identity']);

/** The fused `activation` attr of Dense as a unary op. */
export function fusedActivation(name: string): Unary | null {
  if (name === 'none') return null;
  if (name === 'relu6') return clipOf(0, 6);
  const op = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh' }[name];
  if (!op) throw new EdgeOptError('E_UNSUPPORTED_OP', `train: no fused activation '${name}'`);
  return unaryOf({ name, op: op as GraphNode['op'], inputs: [], outputs: [], attrs: {} });
}

export function applyUnary(u: Unary, x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  if (u.clip) {
    const [lo, hi] = u.clip; // the common case (ReLU, ReLU6) without a call per value
    for (let i = 0; i < x.length; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
  } else if (u.hardSwish) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      y[i] = v <= -3 ? 0 : v >= 3 ? v : (v * (v + 3)) / 6;
    }
  } else for (let i = 0; i < x.length; i++) y[i] = u.f(x[i]);
  return y;
}

export function unaryBackward(u: Unary, x: Float32Array, gy: Float32Array): Float32Array {
  const dx = new Float32Array(x.length);
  if (u.clip) {
    const [lo, hi] = u.clip;
    for (let i = 0; i < x.length; i++) dx[i] = x[i] > lo && x[i] < hi ? gy[i] : 0;
  } else if (u.hardSwish) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      dx[i] = v <= -3 ? 0 : v >= 3 ? gy[i] : (gy[i] * (2 * v + 3)) / 6;
    }
  } else for (let i = 0; i < x.length; i++) dx[i] = gy[i] * u.df(x[i]);
  return dx;
}

export function unaryOp(node: GraphNode): TrainOp {
  const u = unaryOf(node);
  return {
    ...stateless(node),
    forward: ([x]) => ({ y: applyUnary(u, x) }),
    backward: (gy, [x]) => [unaryBackward(u, x, gy)],
  };
}

/** Inverted dropout: kept values scaled by 1/(1 - ratio) in training, identity otherwise. */
export function dropoutOp(node: GraphNode): TrainOp {
  const ratio = (node.attrs.ratio as number | undefined) ?? 0.5;
  const scale = 1 / (1 - ratio);
  return {
    ...stateless(node),
    forward([x], _n, ctx) {
      if (!ctx.training || ratio === 0) return { y: x.slice() };
      const keep = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) keep[i] = ctx.random() >= ratio ? scale : 0;
      return { y: x.map((v, i) => v * keep[i]), saved: keep };
    },
    backward(gy, _x, f) {
      const keep = f.saved as Float32Array | undefined;
      return [keep ? gy.map((g, i) => g * keep[i]) : gy.slice()];
    },
  };
}

type BinaryFn = (a: number, b: number) => number;
const BINARY: Record<string, { f: BinaryFn; da: BinaryFn; db: BinaryFn }> = {
  Add: { f: (a, b) => a + b, da: () => 1, db: () => 1 },
  Sub: { f: (a, b) => a - b, da: () => 1, db: () => -1 },
  Mul: { f: (a, b) => a * b, da: (_a, b) => b, db: (a) => a },
  Div: { f: (a, b) => a / b, da: (_a, b) => 1 / b, db: (a, b) => -a / (b * b) },
};

/** For each per-image output index, the operand's index (broadcast dims read index 0). */
function indexMap(outDims: number[], dims: number[]): Int32Array {
  const rank = outDims.length;
  const padded = [...new Array<number>(rank - dims.length).fill(1), ...dims];
  const strides = new Array<number>(rank).fill(0);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    strides[i] = padded[i] === 1 ? 0 : s;
    s *= padded[i];
  }
  const total = outDims.reduce((x, y) => x * y, 1);
  const map = new Int32Array(total);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < total; o++) {
    let off = 0;
    for (let d = 0; d < rank; d++) off += idx[d] * strides[d];
    map[o] = off;
    for (let d = rank - 1; d >= 0 && ++idx[d] === outDims[d]; d--) idx[d] = 0;
  }
  return map;
}

/** An operand: an activation (per-image dims, a batch stride) or a constant (shared by every image). */
interface Operand {
  act: boolean;
  data?: Float32Array;
  size: number;
  map: Int32Array;
}

export function binaryOp(g: Graph, node: GraphNode, shapes: Map<string, ValueShape>): TrainOp {
  const fns = BINARY[node.op];
  const out = shapes.get(node.outputs[0])!;
  if (out.folded) throw new EdgeOptError('E_UNSUPPORTED_OP', `train: node '${node.name}' (${node.op}) on folded rows is not supported`);
  const operands: Operand[] = node.inputs.map((name) => {
    const s = shapes.get(name);
    if (s) return { act: true, size: s.dims.reduce((x, y) => x * y, 1), map: indexMap(out.dims, s.dims) };
    const t = g.tensors[name];
    // A constant's leading dim aligns with the batch when it has the output's ONNX rank.
    const dims = (t.shape as number[]).length > out.dims.length ? (t.shape as number[]).slice(1) : (t.shape as number[]);
    return { act: false, data: t.data as Float32Array, size: 0, map: indexMap(out.dims, dims) };
  });
  const per = out.dims.reduce((x, y) => x * y, 1);
  const [A, B] = operands;
  const value = (o: Operand, xs: Float32Array[], slot: number, b: number, i: number) =>
    o.act ? xs[slot][b * o.size + o.map[i]] : o.data![o.map[i]];
  const slots = [0, A.act ? 1 : 0];
  return {
    node,
    inputs: node.inputs.filter((name) => shapes.has(name)),
    params: [],
    buffers: [],
    forward(xs, n) {
      const y = new Float32Array(n * per);
      for (let b = 0; b < n; b++)
        for (let i = 0; i < per; i++) y[b * per + i] = fns.f(value(A, xs, slots[0], b, i), value(B, xs, slots[1], b, i));
      return { y };
    },
    backward(gy, xs, _f: Forward, n) {
      const grads = operands.filter((o) => o.act).map((o) => new Float32Array(n * o.size));
      const gA = A.act ? grads[0] : null;
      const gB = B.act ? grads[A.act ? 1 : 0] : null;
      for (let b = 0; b < n; b++)
        for (let i = 0; i < per; i++) {
          const [a, c, g] = [value(A, xs, slots[0], b, i), value(B, xs, slots[1], b, i), gy[b * per + i]];
          if (gA) gA[b * A.size + A.map[i]] += g * fns.da(a, c);
          if (gB) gB[b * B.size + B.map[i]] += g * fns.db(a, c);
        }
      return grads;
    },
  };
}
