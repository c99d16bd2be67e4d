/**
 * Data movement (program.ts ConcatOp, SplitOp, PadOp, TransposeOp) for any
 * typed array (float32 now, int8 in part 2): exact copies.
 */

type Elements = Float32Array | Int8Array | Uint8Array | Int32Array;

/** Inputs viewed as [outer][sizes[i]] side by side into y [outer][sum sizes]. */
export function concat<T extends Elements>(inputs: readonly T[], y: T, outer: number, sizes: readonly number[]): T {
  const total = sizes.reduce((s, v) => s + v, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    for (let i = 0; i < inputs.length; i++) {
      y.set(inputs[i].subarray(o * sizes[i], (o + 1) * sizes[i]), at);
      at += sizes[i];
    }
  }
  return y;
}

/** x viewed as [outer][sum sizes] into outputs [outer][sizes[i]]. */
export function split<T extends Elements>(x: T, outputs: readonly T[], outer: number, sizes: readonly number[]): void {
  const total = sizes.reduce((s, v) => s + v, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    for (let i = 0; i < outputs.length; i++) {
      outputs[i].set(x.subarray(at, at + sizes[i]), o * sizes[i]);
      at += sizes[i];
    }
  }
}

/** Constant padding of x (shape inShape) by begin/end per dim (negative values crop). */
export function pad<T extends Elements>(
  x: T,
  y: T,
  inShape: readonly number[],
  begin: readonly number[],
  end: readonly number[],
  value: number,
): T {
  const rank = inShape.length;
  const out = inShape.map((d, i) => d + begin[i] + end[i]);
  const outInner = new Array<number>(rank).fill(1);
  const inInner = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) {
    outInner[d] = outInner[d + 1] * out[d + 1];
    inInner[d] = inInner[d + 1] * inShape[d + 1];
  }
  // Output slab of dim d at offset yo; xo is the input slab, or -1 in the padding.
  const walk = (d: number, xo: number, yo: number): void => {
    for (let o = 0; o < out[d]; o++) {
      const i = o - begin[d];
      const inside = xo >= 0 && i >= 0 && i < inShape[d];
      if (d === rank - 1) y[yo + o] = inside ? x[xo + i] : value;
      else walk(d + 1, inside ? xo + i * inInner[d] : -1, yo + o * outInner[d]);
    }
  };
  walk(0, 0, 0);
  return y;
}

/** y = x with dims permuted: y's dim i is x's dim perm[i]. */
export function transpose<T extends Elements>(x: T, y: T, inShape: readonly number[], perm: readonly number[]): T {
  const rank = inShape.length;
  const inStride = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * inShape[d + 1];
  const out = perm.map((p) => inShape[p]);
  const step = perm.map((p) => inStride[p]);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < y.length; i++) {
    y[i] = x[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += step[d];
      if (idx[d] < out[d]) break;
      src -= out[d] * step[d];
      idx[d] = 0;
    }
  }
  return y;
}
