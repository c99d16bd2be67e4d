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
import type { CsrS8 } from '../backends/ts/sparse';
import { multiplyByQuantizedMultiplier, quantizeBias, quantizeMultiplier, type QuantizedMultiplier } from '../backends/ts/requantize';
import type { QDenseOp, TensorQuant } from './program';

// Local bindings: hot loops must not go through the module object on every call.
const { f32 } = numerics;

/** Largest K of an int8 layer whose int32 accumulators cannot overflow (255 * 128 * K < 2^31, with margin). */
export const MAX_INT8_K = 32768;

/** A static int8 output with its precomputed integer requantization. */
export interface StaticOutput extends TensorQuant {
  multipliers: QuantizedMultiplier[];
  biasQ: Int32Array;
}

/** An int8 Dense ready to run: the Program's qdense op with its constants resolved. */
export interface QDenseLayer {
  n: number;
  k: number;
  weight: Int8Array;
  scales: Float32Array;
  zeroPoint: number;
  groupSize: number;
  bias: Float32Array | null;
  relu: boolean;
  input?: TensorQuant;
  output?: StaticOutput;
  /** The TS backend's sparse packing of `weight`, when the sparse policy chose it. */
  csr?: CsrS8;
}

/** The layer of a Program qdense op (`data(t)` gives a constant tensor's data). */
export function qdenseLayer(op: QDenseOp, data: (t: number) => unknown): QDenseLayer {
  const scales = data(op.scales) as Float32Array;
  const bias = op.bias !== undefined ? (data(op.bias) as Float32Array) : null;
  const ws = (j: number) => scales[scales.length > 1 ? j : 0];
  const output =
    op.output && op.input
      ? {
          ...op.output,
          multipliers: Array.from({ length: op.n }, (_, j) => quantizeMultiplier((op.input!.scale * ws(j)) / op.output!.scale)),
          biasQ: Int32Array.from({ length: op.n }, (_, j) => (bias ? quantizeBias(bias[j], op.input!.scale, ws(j)) : 0)),
        }
      : undefined;
  return {
    n: op.n,
    k: op.k,
    weight: data(op.weight) as Int8Array,
    scales,
    zeroPoint: op.zeroPoint,
    groupSize: op.groupSize,
    bias,
    relu: op.act.kind === 'relu',
    ...(op.input ? { input: op.input } : {}),
    ...(output ? { output } : {}),
  };
}

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

export function runQDense(step: QDenseLayer, x: Float32Array, rows: number): Float32Array {
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
