/**
 * Pooling over NHWC images (program.ts PoolOp, GlobalPoolOp), bit-identical to
 * every native table: max keeps `x > m ? x : m` from -Infinity over the
 * in-range taps; average adds the in-range taps in (ky, kx) order from +0 and
 * divides once. With countIncludePad the divisor counts the taps inside
 * [-padTop, inH + padBottom) x [-padLeft, inW + padRight) (windows may reach
 * past them, ceil_mode); otherwise the in-range taps.
 */
import type { PoolOp } from '../../../engine/program';
import * as numerics from '../numerics';
import type { WindowField } from './conv';

// Local bindings: hot loops must not go through the module object on every call.
const { f32 } = numerics;

export type PoolShape = Pick<PoolOp, 'inH' | 'inW' | 'c' | 'outH' | 'outW' | WindowField | 'countIncludePad'>;

/** Taps [first, last] of a window starting at `start` inside [lo, hi). */
export function taps(start: number, k: number, dilation: number, lo: number, hi: number): [number, number] {
  const first = start >= lo ? 0 : Math.min(k, Math.ceil((lo - start) / dilation));
  const last = Math.min(k - 1, Math.floor((hi - 1 - start) / dilation));
  return [first, last];
}

/** Max or average pooling of `batch` images: x [batch][inH][inW][c] -> y [batch][outH][outW][c]. */
export function pool2d(kind: 'maxpool' | 'avgpool', s: PoolShape, x: Float32Array, y: Float32Array, batch = 1): Float32Array {
  const c = s.c;
  const max = kind === 'maxpool';
  for (let n = 0; n < batch; n++) {
    const xImage = n * s.inH * s.inW * c;
    for (let oy = 0; oy < s.outH; oy++) {
      const sy = oy * s.strideH - s.padTop;
      const [fy, ly] = taps(sy, s.kh, s.dilationH, 0, s.inH);
      const [py0, py1] = taps(sy, s.kh, s.dilationH, -s.padTop, s.inH + s.padBottom);
      for (let ox = 0; ox < s.outW; ox++) {
        const sx = ox * s.strideW - s.padLeft;
        const [fx, lx] = taps(sx, s.kw, s.dilationW, 0, s.inW);
        const [px0, px1] = taps(sx, s.kw, s.dilationW, -s.padLeft, s.inW + s.padRight);
        const yo = ((n * s.outH + oy) * s.outW + ox) * c;
        y.fill(max ? -Infinity : 0, yo, yo + c);
        for (let ky = fy; ky <= ly; ky++) {
          for (let kx = fx; kx <= lx; kx++) {
            const xo = xImage + ((sy + ky * s.dilationH) * s.inW + sx + kx * s.dilationW) * c;
            if (max) {
              for (let ch = 0; ch < c; ch++) if (x[xo + ch] > y[yo + ch]) y[yo + ch] = x[xo + ch];
            } else {
              for (let ch = 0; ch < c; ch++) y[yo + ch] = f32(y[yo + ch] + x[xo + ch]);
            }
          }
        }
        if (!max) {
          const count = s.countIncludePad ? Math.max(0, py1 - py0 + 1) * Math.max(0, px1 - px0 + 1) : (ly - fy + 1) * (lx - fx + 1);
          for (let ch = 0; ch < c; ch++) y[yo + ch] = f32(y[yo + ch] / count);
        }
      }
    }
  }
  return y;
}

/** Global max/average pooling of `batch` images [pixels][c] -> [c]; the mean divides by float32(pixels). */
export function globalPool(
  kind: 'globalmaxpool' | 'globalavgpool',
  x: Float32Array,
  y: Float32Array,
  pixels: number,
  c: number,
  batch = 1,
): Float32Array {
  const max = kind === 'globalmaxpool';
  const divisor = f32(pixels);
  for (let n = 0; n < batch; n++) {
    const yo = n * c;
    y.fill(max ? -Infinity : 0, yo, yo + c);
    for (let p = 0; p < pixels; p++) {
      const xo = (n * pixels + p) * c;
      if (max) {
        for (let ch = 0; ch < c; ch++) if (x[xo + ch] > y[yo + ch]) y[yo + ch] = x[xo + ch];
      } else {
        for (let ch = 0; ch < c; ch++) y[yo + ch] = f32(y[yo + ch] + x[xo + ch]);
      }
    }
    if (!max) for (let ch = 0; ch < c; ch++) y[yo + ch] = f32(y[yo + ch] / divisor);
  }
  return y;
}
