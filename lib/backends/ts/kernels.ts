/**
 * The pure-TypeScript twin of the native kernel table: same formulas, same
 * float32 operation order (see native/kernels/scalar.cc and native/core/quantize.cc),
 * so int32 accumulators are identical and float results match the scalar table.
 */
import type { Kernels, RowQuantized, SymmetricQuantized } from '../types';
import * as numerics from './numerics';

// Local bindings: hot loops must not go through the module object on every call.
const { clamp, f32, relu, roundEven } = numerics;

export function gemmU8S8(a: Uint8Array, zeroPoint: Int32Array, m: number, k: number, w: Int8Array, n: number): Int32Array {
  const colSums = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0, o = j * k; i < k; i++) s += w[o + i];
    colSums[j] = s;
  }
  const c = new Int32Array(m * n);
  for (let r = 0; r < m; r++) {
    const ao = r * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k;
      let acc = 0;
      for (let i = 0; i < k; i++) acc = (acc + a[ao + i] * w[wo + i]) | 0;
      c[r * n + j] = (acc - Math.imul(zeroPoint[r], colSums[j])) | 0;
    }
  }
  return c;
}

export function gemmF32(x: Float32Array, m: number, k: number, w: Float32Array, n: number): Float32Array {
  const y = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    const xo = r * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k;
      let acc = 0;
      for (let i = 0; i < k; i++) acc = f32(acc + f32(x[xo + i] * w[wo + i]));
      y[r * n + j] = acc;
    }
  }
  return y;
}

export function epilogueS32(
  c: Int32Array,
  m: number,
  n: number,
  aScale: Float32Array,
  wScale: Float32Array,
  bias: Float32Array | null,
  doRelu: boolean,
): Float32Array {
  const y = new Float32Array(m * n);
  const perChannel = wScale.length !== 1;
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      const s = f32(aScale[r] * wScale[perChannel ? j : 0]);
      let v = f32(f32(c[r * n + j]) * s);
      if (bias) v = f32(v + bias[j]);
      y[r * n + j] = doRelu ? relu(v) : v;
    }
  }
  return y;
}

export function quantizeRowsU8(x: Float32Array, m: number, k: number): RowQuantized {
  const q = new Uint8Array(m * k);
  const scale = new Float32Array(m);
  const zeroPoint = new Int32Array(m);
  for (let r = 0; r < m; r++) {
    const o = r * k;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < k; i++) {
      const v = x[o + i];
      if (v < lo) lo = v;
      if (hi < v) hi = v;
    }
    let s = f32(f32(hi - lo) / 255);
    if (s === 0) s = 1;
    const zp = clamp(roundEven(f32(-lo / s)), 0, 255);
    for (let i = 0; i < k; i++) q[o + i] = clamp(roundEven(f32(x[o + i] / s)) + zp, 0, 255);
    scale[r] = s;
    zeroPoint[r] = zp;
  }
  return { q, scale, zeroPoint };
}

function symmetricScale(w: Float32Array, from: number, to: number, qmax: number): number {
  let mx = 0;
  for (let i = from; i < to; i++) {
    const a = Math.abs(w[i]);
    if (mx < a) mx = a;
  }
  return mx === 0 ? 1 : f32(mx / qmax);
}

export function quantizeSymmetric(w: Float32Array, n: number, k: number, bits: number, perChannel: boolean): SymmetricQuantized {
  const qmax = (1 << (bits - 1)) - 1;
  const q = new Int8Array(n * k);
  const scales = new Float32Array(perChannel ? n : 1);
  const block = (from: number, to: number, scale: number) => {
    for (let i = from; i < to; i++) q[i] = clamp(roundEven(f32(w[i] / scale)), -qmax, qmax);
  };
  if (perChannel) {
    for (let r = 0; r < n; r++) {
      scales[r] = symmetricScale(w, r * k, (r + 1) * k, qmax);
      block(r * k, (r + 1) * k, scales[r]);
    }
  } else {
    scales[0] = symmetricScale(w, 0, n * k, qmax);
    block(0, n * k, scales[0]);
  }
  return { q, scales };
}

export function dequantizeS8(q: Int8Array, n: number, k: number, scales: Float32Array): Float32Array {
  const w = new Float32Array(n * k);
  const perChannel = scales.length === n && n > 1;
  for (let r = 0; r < n; r++) {
    const s = scales[perChannel ? r : 0];
    for (let i = r * k; i < (r + 1) * k; i++) w[i] = f32(q[i] * s);
  }
  return w;
}

export function pruneMask(w: Float32Array, pruneCount: number): { keep: Uint8Array; threshold: number } {
  const keep = new Uint8Array(w.length).fill(1);
  const count = Math.min(pruneCount, w.length);
  if (count === 0) return { keep, threshold: 0 };
  const order = Array.from({ length: w.length }, (_, i) => i);
  order.sort((a, b) => Math.abs(w[a]) - Math.abs(w[b]) || a - b);
  let threshold = 0;
  for (let i = 0; i < count; i++) {
    keep[order[i]] = 0;
    threshold = Math.max(threshold, Math.abs(w[order[i]]));
  }
  return { keep, threshold };
}

export function reluF32(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = relu(x[i]);
  return x;
}

/** Row-wise softmax in place, max-subtracted (the native plan's softmax_rows). */
export function softmaxRows(x: Float32Array, m: number, n: number): Float32Array {
  for (let r = 0; r < m; r++) {
    const o = r * n;
    let mx = -Infinity;
    for (let j = 0; j < n; j++) if (mx < x[o + j]) mx = x[o + j];
    let sum = 0;
    for (let j = 0; j < n; j++) {
      x[o + j] = Math.exp(f32(x[o + j] - mx));
      sum = f32(sum + x[o + j]);
    }
    for (let j = 0; j < n; j++) x[o + j] = f32(x[o + j] / sum);
  }
  return x;
}

/** y += bias per column, then ReLU if asked (fp32 Dense epilogue), in place. */
export function biasActF32(y: Float32Array, m: number, n: number, bias: Float32Array | null, doRelu: boolean): Float32Array {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      const i = r * n + j;
      const v = bias ? f32(y[i] + bias[j]) : y[i];
      y[i] = doRelu ? relu(v) : v;
    }
  }
  return y;
}

export const tsKernels: Kernels = {
  name: 'ts',
  gemmU8S8,
  gemmF32,
  epilogueS32,
  quantizeRowsU8,
  quantizeSymmetric,
  dequantizeS8,
  pruneMask,
  reluF32,
};
