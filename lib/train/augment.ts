/**
 * Light image augmentation for training batches: every image is shifted by a seeded random offset of
 * up to `shift` pixels in each direction (zeros enter at the border), as a RandomAffine(translate) does.
 */
import { EdgeOptError } from '../errors';

export interface Augmentation {
  /** Largest shift in pixels, 0..8. */
  shift: number;
}

export function checkAugmentation(a: Augmentation, dims: readonly number[] | undefined): void {
  if (!(Number.isInteger(a.shift) && a.shift >= 0 && a.shift <= 8))
    throw new EdgeOptError('E_ARGUMENT', `train: augment.shift must be an integer in 0..8, got ${String(a.shift)}`);
  if (!dims || dims.length !== 3)
    throw new EdgeOptError('E_ARGUMENT', `train: augment needs a model with image input [C, H, W], got [${dims ?? ''}]`);
}

/** Shifts each of the `rows` images [C, H, W] of `x` in place. */
export function shiftImages(x: Float32Array, rows: number, dims: readonly number[], shift: number, random: () => number): void {
  const [c, h, w] = dims;
  const plane = h * w;
  const tmp = new Float32Array(plane);
  for (let r = 0; r < rows; r++) {
    const dy = Math.floor(random() * (2 * shift + 1)) - shift;
    const dx = Math.floor(random() * (2 * shift + 1)) - shift;
    if (!dy && !dx) continue;
    for (let ch = 0; ch < c; ch++) {
      const base = (r * c + ch) * plane;
      tmp.fill(0);
      for (let y = Math.max(0, dy); y < Math.min(h, h + dy); y++)
        for (let xx = Math.max(0, dx); xx < Math.min(w, w + dx); xx++) tmp[y * w + xx] = x[base + (y - dy) * w + (xx - dx)];
      x.set(tmp, base);
    }
  }
}
