/**
 * Dense (with its fused activation) and the data-movement ops: Flatten/Reshape (the same values
 * per image, so a copy), Transpose (a permutation of the per-image dims) and Concat.
 */
import type { Graph, GraphNode } from '../../model/graph';
import { imageAxis, type ValueShape } from '../../model/shapes';
import { matmulABt, transpose } from '../linalg';
import { paramOf, stateless, type TrainOp } from './op';
import { applyUnary, fusedActivation, unaryBackward } from './pointwise';

export function denseOp(g: Graph, node: GraphNode): TrainOp {
  const wt = g.tensors[node.inputs[1]];
  const [units, k] = wt.shape as number[];
  const weight = paramOf(wt.name, wt.shape, wt.data as Float32Array, wt.mask);
  const bt = node.inputs[2] ? g.tensors[node.inputs[2]] : undefined;
  const bias = bt ? paramOf(bt.name, bt.shape, bt.data as Float32Array) : undefined;
  const act = fusedActivation((node.attrs.activation as string | undefined) ?? 'none');
  return {
    node,
    inputs: [node.inputs[0]],
    params: bias ? [weight, bias] : [weight],
    buffers: [],
    forward([x]) {
      const rows = x.length / k;
      const z = matmulABt(x, rows, k, weight.data, units);
      if (bias) for (let r = 0; r < rows; r++) for (let j = 0; j < units; j++) z[r * units + j] += bias.data[j];
      return act ? { y: applyUnary(act, z), saved: z } : { y: z };
    },
    backward(gy, [x], f, _n, grads) {
      const rows = x.length / k;
      const gz = act ? unaryBackward(act, f.saved as Float32Array, gy) : gy;
      const gw = matmulABt(transpose(gz, rows, units), units, rows, transpose(x, rows, k), k);
      for (let i = 0; i < gw.length; i++) grads[0][i] += gw[i];
      if (bias) for (let r = 0; r < rows; r++) for (let j = 0; j < units; j++) grads[1][j] += gz[r * units + j];
      return [matmulABt(gz, rows, units, transpose(weight.data, units, k), k)];
    },
  };
}

/** Flatten, Reshape, Identity: per-image values unchanged. */
export function viewOp(node: GraphNode): TrainOp {
  return {
    ...stateless(node),
    forward: ([x]) => ({ y: x.slice() }),
    backward: (gy) => [gy.slice()],
  };
}

/** Output index -> input index within one image, for a permutation of per-image dims. */
function permutationMap(dims: number[], perm: number[]): Int32Array {
  const rank = dims.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) [inStrides[i], s] = [s, s * dims[i]];
  const outDims = perm.map((p) => dims[p]);
  const total = dims.reduce((a, b) => a * b, 1);
  const map = new Int32Array(total);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < total; o++) {
    let off = 0;
    for (let d = 0; d < rank; d++) off += idx[d] * inStrides[perm[d]];
    map[o] = off;
    for (let d = rank - 1; d >= 0 && ++idx[d] === outDims[d]; d--) idx[d] = 0;
  }
  return map;
}

export function transposeOp(node: GraphNode, x: ValueShape): TrainOp {
  const rank = x.dims.length + (x.folded ? 0 : 1);
  const perm = (node.attrs.perm as number[] | undefined) ?? [0, ...Array.from({ length: rank - 1 }, (_, i) => rank - 1 - i)];
  const off = x.folded ? 0 : 1;
  const local = perm.slice(off).map((p) => p - off);
  const map = permutationMap(x.dims, x.folded ? perm : local);
  const per = map.length;
  return {
    ...stateless(node),
    forward([xv], n) {
      const y = new Float32Array(xv.length);
      for (let b = 0; b < n; b++) for (let i = 0; i < per; i++) y[b * per + i] = xv[b * per + map[i]];
      return { y };
    },
    backward(gy, _x, _f, n) {
      const dx = new Float32Array(gy.length);
      for (let b = 0; b < n; b++) for (let i = 0; i < per; i++) dx[b * per + map[i]] = gy[b * per + i];
      return [dx];
    },
  };
}

export function concatOp(g: Graph, node: GraphNode, shapes: Map<string, ValueShape>): TrainOp {
  const ins = node.inputs.map((name) => shapes.get(name)!);
  const axis = imageAxis(g, node, ins[0], node.attrs.axis as number);
  const outer = ins[0].dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const chunk = ins.map((s) => s.dims.slice(axis).reduce((a, b) => a * b, 1)); // values per outer index
  const total = chunk.reduce((a, b) => a + b, 0);
  // Walks every (image, outer index, input) block: its offset in the input and in the output.
  const blocks = (n: number, visit: (i: number, src: number, dst: number, len: number) => void) => {
    for (let b = 0; b < n; b++)
      for (let o = 0; o < outer; o++) {
        let dst = (b * outer + o) * total;
        chunk.forEach((len, i) => {
          visit(i, (b * outer + o) * len, dst, len);
          dst += len;
        });
      }
  };
  return {
    node,
    inputs: [...node.inputs],
    params: [],
    buffers: [],
    forward(xs, n) {
      const y = new Float32Array(n * outer * total);
      blocks(n, (i, src, dst, len) => y.set(xs[i].subarray(src, src + len), dst));
      return { y };
    },
    backward(gy, xs, _f, n) {
      const dxs = xs.map((x) => new Float32Array(x.length));
      blocks(n, (i, src, dst, len) => dxs[i].set(gy.subarray(dst, dst + len), src));
      return dxs;
    },
  };
}
