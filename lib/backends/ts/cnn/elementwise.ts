/**
 * Element-wise and per-axis kernels (program.ts BinaryOp, SoftmaxOp,
 * ReduceMeanOp, LrnOp), the same float32 operations in the same order as the
 * native tables: binary ops, softmax and reduce-mean are bit-identical; LRN's
 * pow may differ from the C library's by one float32 ulp.
 */
import type { Activation, BinaryOp } from '../../../engine/program';
import * as numerics from '../numerics';
import * as activation from './activation';

// Local bindings: hot loops must not go through the module object on every call.
const { f32 } = numerics;
const { activate, expF32 } = activation;

/**
 * y = act(a <fn> b) over output `shape` (per image, row-major), each operand
 * addressed with its element strides (0 where it broadcasts). y may be a or b
 * when that operand has the output's own strides.
 */
export function binary(
  fn: BinaryOp['fn'],
  shape: readonly number[],
  aStrides: readonly number[],
  bStrides: readonly number[],
  a: Float32Array,
  b: Float32Array,
  y: Float32Array,
  act: Activation,
): Float32Array {
  const rank = shape.length;
  const last = rank - 1;
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return y;
  if (rank === 0) {
    y[0] = activate(apply(fn, a[0], b[0]), act);
    return y;
  }
  const idx = new Array<number>(rank).fill(0);
  const inner = shape[last];
  const as = aStrides[last];
  const bs = bStrides[last];
  let ao = 0;
  let bo = 0;
  for (let i = 0; i < total; i += inner) {
    for (let j = 0; j < inner; j++) y[i + j] = activate(apply(fn, a[ao + j * as], b[bo + j * bs]), act);
    // Next row: carry through the outer dims.
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      ao += aStrides[d];
      bo += bStrides[d];
      if (idx[d] < shape[d]) break;
      ao -= shape[d] * aStrides[d];
      bo -= shape[d] * bStrides[d];
      idx[d] = 0;
    }
  }
  return y;
}

function apply(fn: BinaryOp['fn'], a: number, b: number): number {
  switch (fn) {
    case 'add':
      return f32(a + b);
    case 'sub':
      return f32(a - b);
    case 'mul':
      return f32(a * b);
    case 'div':
      return f32(a / b);
  }
}

/**
 * Softmax over the middle dim of x viewed as [outer][axis][inner]: m = max (x > m ? x : m
 * from -Infinity), e = exp_f32(x - m), s = sum of e in axis order from +0, y = e / s. y may be x.
 */
export function softmax(x: Float32Array, y: Float32Array, outer: number, axis: number, inner: number): Float32Array {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * axis * inner + i;
      let m = -Infinity;
      for (let k = 0; k < axis; k++) {
        const v = x[base + k * inner];
        if (v > m) m = v;
      }
      let sum = 0;
      for (let k = 0; k < axis; k++) {
        const e = expF32(f32(x[base + k * inner] - m));
        y[base + k * inner] = e;
        sum = f32(sum + e);
      }
      for (let k = 0; k < axis; k++) y[base + k * inner] = f32(y[base + k * inner] / sum);
    }
  }
  return y;
}

/** Mean over the middle dim of [outer][axis][inner] into [outer][inner]: sum in axis order from +0, / float32(axis). */
export function reduceMean(x: Float32Array, y: Float32Array, outer: number, axis: number, inner: number): Float32Array {
  const count = f32(axis);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = 0;
      for (let k = 0; k < axis; k++) sum = f32(sum + x[(o * axis + k) * inner + i]);
      y[o * inner + i] = f32(sum / count);
    }
  }
  return y;
}

/**
 * LRN across the channels of `pixels` NHWC pixels of c channels (ONNX):
 * y = x / pow(bias + (alpha / size) * s, beta), s the sum of squares over
 * channels [c - floor((size-1)/2), c + ceil((size-1)/2)] in order from +0.
 */
export function lrn(
  x: Float32Array,
  y: Float32Array,
  pixels: number,
  c: number,
  size: number,
  alpha: number,
  beta: number,
  bias: number,
): Float32Array {
  const scale = f32(f32(alpha) / size);
  const b = f32(bias);
  const e = f32(beta);
  const before = Math.floor((size - 1) / 2);
  const after = Math.floor(size / 2);
  for (let p = 0; p < pixels; p++) {
    const o = p * c;
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let i = Math.max(0, ch - before); i <= Math.min(c - 1, ch + after); i++) sum = f32(sum + f32(x[o + i] * x[o + i]));
      const d = f32(b + f32(scale * sum));
      y[o + ch] = f32(x[o + ch] / f32(Math.pow(d, e)));
    }
  }
  return y;
}
