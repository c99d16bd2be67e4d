/**
 * The TS twin of native/core/sparse.h's CSR kernel: int8 weights [n][k] kept as
 * row pointers, column indices and values of the non-zeros, packed once per
 * layer. C[r][j] = sum over kept (i, w) of a[r][i] * w - zp[r] * colSum[j]:
 * the same int32 accumulators as gemmU8S8 on the dense (pruned) weights.
 */
export interface CsrS8 {
  n: number;
  k: number;
  rowPtr: Int32Array;
  idx: Int32Array;
  val: Int32Array;
  colSums: Int32Array;
  density: number;
}

export function packCsrS8(w: Int8Array, n: number, k: number): CsrS8 {
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  const rowPtr = new Int32Array(n + 1);
  const idx = new Int32Array(nnz);
  const val = new Int32Array(nnz);
  const colSums = new Int32Array(n);
  let e = 0;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0, o = j * k; i < k; i++) {
      const v = w[o + i];
      if (v === 0) continue;
      idx[e] = i;
      val[e++] = v;
      s += v;
    }
    colSums[j] = s;
    rowPtr[j + 1] = e;
  }
  return { n, k, rowPtr, idx, val, colSums, density: w.length ? nnz / w.length : 1 };
}

export function gemmCsrU8S8(a: Uint8Array, zeroPoint: Int32Array, m: number, w: CsrS8): Int32Array {
  const { n, k, rowPtr, idx, val, colSums } = w;
  const c = new Int32Array(m * n);
  for (let r = 0; r < m; r++) {
    const ao = r * k;
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let e = rowPtr[j], end = rowPtr[j + 1]; e < end; e++) acc = (acc + a[ao + idx[e]] * val[e]) | 0;
      c[r * n + j] = (acc - Math.imul(zeroPoint[r], colSums[j])) | 0;
    }
  }
  return c;
}

/**
 * CSR is used on the TS backend when at most this fraction of the weights is kept:
 * an estimate (an indirect load costing about three dense multiply-adds), not yet
 * measured; results are identical either way.
 */
export const TS_CSR_MAX_DENSITY = 0.3;
