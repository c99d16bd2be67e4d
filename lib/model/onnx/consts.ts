/** Arithmetic on constant tensors during import: transpose, broadcast, dequantize. */
import type { ConstTensor } from './tensor';

type Numeric = Float32Array | Float64Array | Int8Array | Uint8Array;

function strides(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Transposes row-major data of shape `dims` by `perm` (output dim i = input dim perm[i]). */
export function transposeData<T extends Numeric>(data: T, dims: number[], perm: number[]): T {
  const outDims = perm.map((p) => dims[p]);
  const inStrides = strides(dims);
  const outStrides = strides(outDims);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let i = 0, rem = o; i < perm.length; i++) {
      const idx = Math.floor(rem / outStrides[i]);
      rem -= idx * outStrides[i];
      src += idx * inStrides[perm[i]];
    }
    out[o] = data[src];
  }
  return out;
}

export function transposeConst(t: ConstTensor, perm: number[]): ConstTensor {
  return { dims: perm.map((p) => t.dims[p]), dataType: t.dataType, data: transposeData(t.data, t.dims, perm) };
}

/**
 * Numpy-broadcasts constant `t` to `target` dims (right-aligned, size-1 dims
 * stretch). Returns null when it does not broadcast.
 */
export function broadcastTo(t: ConstTensor, target: number[]): Float32Array | null {
  if (t.dims.length > target.length) {
    // Leading size-1 dims beyond the target's rank (e.g. a [1, N] bias on an [N] row) are harmless.
    const extra = t.dims.length - target.length;
    if (t.dims.slice(0, extra).some((d) => d !== 1)) return null;
    return broadcastTo({ ...t, dims: t.dims.slice(extra) }, target);
  }
  const dims = [...new Array<number>(target.length - t.dims.length).fill(1), ...t.dims];
  if (dims.some((d, i) => d !== 1 && d !== target[i])) return null;
  const inStrides = strides(dims).map((s, i) => (dims[i] === 1 ? 0 : s));
  const outStrides = strides(target);
  const total = target.reduce((a, d) => a * d, 1);
  const out = new Float32Array(total);
  for (let o = 0; o < total; o++) {
    let src = 0;
    for (let i = 0, rem = o; i < target.length; i++) {
      const idx = Math.floor(rem / outStrides[i]);
      rem -= idx * outStrides[i];
      src += idx * inStrides[i];
    }
    out[o] = t.data[src];
  }
  return out;
}

/** Repeats an [n, k] matrix `times` times along the diagonal: [times*n, times*k] (a batched MatMul over the row). */
export function blockDiagonal<T extends Float32Array | Int8Array>(w: T, n: number, k: number, times: number): T {
  if (times === 1) return w;
  const out = new (w.constructor as new (len: number) => T)(times * n * times * k);
  const rowLen = times * k;
  for (let b = 0; b < times; b++) {
    for (let r = 0; r < n; r++) out.set(w.subarray(r * k, (r + 1) * k), (b * n + r) * rowLen + b * k);
  }
  return out;
}
