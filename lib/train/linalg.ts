/**
 * The small dense helpers backprop needs around kernels().gemmF32, which only
 * computes Y = X · Wᵀ (both operands row-major, reduction along rows).
 */
import { kernels } from '../backends';

/** [rows, cols] -> [cols, rows]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = a[o + c];
  }
  return t;
}

/** Y[m][n] = Σ_k X[m][k] · W[n][k]. */
export function matmulABt(x: Float32Array, m: number, k: number, w: Float32Array, n: number): Float32Array {
  return kernels().gemmF32(x, m, k, w, n);
}

/** Y[m][n] = Σ_k A[m][k] · B[k][n] (B row-major [k, n]). */
export function matmulAB(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Float32Array {
  return kernels().gemmF32(a, m, k, transpose(b, k, n), n);
}

/** Y[m][n] = Σ_r A[r][m] · B[r][n]: the weight gradient dYᵀ · X. */
export function matmulAtB(a: Float32Array, rows: number, m: number, b: Float32Array, n: number): Float32Array {
  return kernels().gemmF32(transpose(a, rows, m), m, rows, transpose(b, rows, n), n);
}

/** Sum over rows of [rows, cols]: the bias gradient. */
export function sumRows(a: Float32Array, rows: number, cols: number): Float32Array {
  const s = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) s[c] += a[o + c];
  }
  return s;
}

/** Euclidean norm over several arrays (float64 accumulation). */
export function l2Norm(arrays: Iterable<Float32Array>): number {
  let s = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}
