/**
 * Physical layouts during lowering. Every tensor has logical per-image dims
 * (NCHW semantics) and a physical order `perm`: physical dim i holds logical
 * dim perm[i] (identity = plain row-major; [1, 2, 0] of [C, H, W] = NHWC).
 * A Transpose only relabels perm; a Reshape is a view when each group of
 * logical dims it merges or splits sits together, in order, in memory; a
 * consumer that needs another order gets one physical transpose, cached.
 */

export const product = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);
export const identity = (n: number) => Array.from({ length: n }, (_, i) => i);
export const NHWC = [1, 2, 0];

export function physicalShape(dims: number[], perm: number[]): number[] {
  return perm.map((p) => dims[p]);
}

/** Two orders of the same dims hold the same memory when they agree once size-1 dims are dropped. */
export function sameMemoryOrder(dims: number[], a: number[], b: number[]): boolean {
  const big = (p: number[]) => p.filter((i) => dims[i] !== 1);
  const [x, y] = [big(a), big(b)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The physical transpose taking a tensor stored in order `from` to order `to`: out dim i = in dim perm[i]. */
export function transposePerm(from: number[], to: number[]): number[] {
  return to.map((l) => from.indexOf(l));
}

/**
 * The physical order of `outDims` when a reshape of `inDims` (stored in order `perm`) is a
 * pure view, or null when the data would have to move. Size-1 dims aside, the reshape
 * merges or splits runs of consecutive dims (equal products); each run of input dims must
 * sit adjacent in memory, in logical order, and becomes its output dims in place.
 */
export function reshapeView(inDims: number[], perm: number[], outDims: number[]): number[] | null {
  const ins = identity(inDims.length).filter((l) => inDims[l] !== 1);
  const outs = identity(outDims.length).filter((l) => outDims[l] !== 1);
  const bigPerm = perm.filter((l) => inDims[l] !== 1);
  const pos = (l: number) => bigPerm.indexOf(l);
  const groups: Array<{ at: number; out: number[] }> = [];
  let i = 0;
  let j = 0;
  while (i < ins.length || j < outs.length) {
    const gi = [ins[i++]];
    const gj = [outs[j++]];
    if (gi[0] === undefined || gj[0] === undefined) return null;
    let pi = inDims[gi[0]];
    let pj = outDims[gj[0]];
    while (pi !== pj) {
      if (pi < pj && i < ins.length) pi *= inDims[gi[gi.push(ins[i++]) - 1]];
      else if (pj < pi && j < outs.length) pj *= outDims[gj[gj.push(outs[j++]) - 1]];
      else return null;
    }
    const at = gi.map(pos);
    if (at.some((p, k) => k > 0 && p !== at[k - 1] + 1)) return null;
    groups.push({ at: at[0], out: gj });
  }
  const ones = identity(outDims.length).filter((l) => outDims[l] === 1);
  return [...groups.sort((a, b) => a.at - b.at).flatMap((g) => g.out), ...ones];
}

/** Element strides of each logical dim of a tensor stored in order `perm`. */
export function logicalStrides(dims: number[], perm: number[]): number[] {
  const phys = physicalShape(dims, perm);
  const s = new Array<number>(dims.length).fill(0);
  let stride = 1;
  for (let i = phys.length - 1; i >= 0; i--) {
    s[perm[i]] = stride;
    stride *= phys[i];
  }
  return s;
}

/**
 * For a tensor of logical dims stored in order `perm`: the logical row-major index of
 * the element at each physical position (how a Dense reading it whole must reorder K).
 */
export function physicalToLogical(dims: number[], perm: number[]): Int32Array {
  const total = product(dims);
  const out = new Int32Array(total);
  const lstride = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) lstride[i] = lstride[i + 1] * dims[i + 1];
  const phys = physicalShape(dims, perm);
  const idx = new Array<number>(phys.length).fill(0);
  for (let p = 0; p < total; p++) {
    let l = 0;
    for (let i = 0; i < phys.length; i++) l += idx[i] * lstride[perm[i]];
    out[p] = l;
    for (let i = phys.length - 1; i >= 0; i--) {
      if (++idx[i] < phys[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
