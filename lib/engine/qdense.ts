/**
 * The TS execution of an int8 layer (QDense step): dynamic per-row (or static
 * calibrated) activation quantization, int32 GEMM, weight zero-point correction for asymmetric
 * weights, and per-channel or per-group dequantization — the same operations
 * in the same order as native/core/plan.cc, so results are bit-identical.
 */
import { biasActF32, tsKernels } from '../backends/ts/kernels';
import * as numerics from '../backends/ts/numerics';
import { gemmCsrU8S8 } from '../backends/ts/sparse';
import { quantizeStaticRows } from '../backends/ts/static-quant';
import type { StaticOutput, Step } from './steps';
import { multiplyByQuantizedMultiplier } from '../backends/ts/requantize';

// Local bindings: hot loops must not go through the module object on every call.
const { f32 } = numerics;

type QDenseStep = Extract<Step, { kind: 'qdense' }>;

/** acc[r][j] -= zeroPoint * sum_k (q[r][k] - zp[r]), for q of shape [rows][k]. */
function subtractWeightZeroPoint(acc: Int32Array, n: number, q: Uint8Array, k: number, zp: Int32Array, zeroPoint: number): void {
  for (let r = 0; r < zp.length; r++) {
    let rowSum = 0;
    for (let i = 0; i < k; i++) rowSum += q[r * k + i];
    const correction = Math.imul(zeroPoint, rowSum - k * zp[r]);
    for (let j = 0; j < n; j++) acc[r * n + j] = (acc[r * n + j] - correction) | 0;
  }
}

/** Columns [from, from + len) of a row-major [rows][k] matrix, as its own contiguous matrix. */
function columns<T extends Uint8Array | Int8Array>(src: T, rows: number, k: number, from: number, len: number): T {
  const out = new (src.constructor as new (n: number) => T)(rows * len);
  for (let r = 0; r < rows; r++) out.set(src.subarray(r * k + from, r * k + from + len), r * len);
  return out;
}

/** y = (q - zp) * scale with q the integer-requantized int8 output (native/core/plan.cc requantize_rows). */
function requantizeRows(out: StaticOutput, acc: Int32Array, rows: number, n: number, relu: boolean): Float32Array {
  const lo = relu ? Math.max(out.zeroPoint, -128) : -128;
  const y = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      const i = r * n + j;
      const sum = Math.min(2147483647, Math.max(-2147483648, acc[i] + out.biasQ[j]));
      const q = Math.min(127, Math.max(lo, out.zeroPoint + multiplyByQuantizedMultiplier(sum, out.multipliers[j])));
      y[i] = f32((q - out.zeroPoint) * out.scale);
    }
  }
  return y;
}

export function runQDense(step: QDenseStep, x: Float32Array, rows: number): Float32Array {
  const { n, k, weight, scales, zeroPoint, groupSize } = step;
  const a = step.input ? quantizeStaticRows(x, rows, k, step.input) : tsKernels.quantizeRowsU8(x, rows, k);
  if (!groupSize) {
    const acc = step.csr ? gemmCsrU8S8(a.q, a.zeroPoint, rows, step.csr) : tsKernels.gemmU8S8(a.q, a.zeroPoint, rows, k, weight, n);
    if (zeroPoint) subtractWeightZeroPoint(acc, n, a.q, k, a.zeroPoint, zeroPoint);
    if (step.output) return requantizeRows(step.output, acc, rows, n, step.relu);
    return tsKernels.epilogueS32(acc, rows, n, a.scale, scales, step.bias, step.relu);
  }
  const groups = Math.ceil(k / groupSize);
  const y = new Float32Array(rows * n);
  for (let g = 0; g < groups; g++) {
    const from = g * groupSize;
    const len = Math.min(groupSize, k - from);
    const qg = columns(a.q, rows, k, from, len);
    const acc = tsKernels.gemmU8S8(qg, a.zeroPoint, rows, len, columns(weight, n, k, from, len), n);
    if (zeroPoint) subtractWeightZeroPoint(acc, n, qg, len, a.zeroPoint, zeroPoint);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        const s = f32(a.scale[r] * scales[j * groups + g]);
        y[r * n + j] = f32(y[r * n + j] + f32(f32(acc[r * n + j]) * s));
      }
    }
  }
  return biasActF32(y, rows, n, step.bias, step.relu);
}
