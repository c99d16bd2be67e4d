/**
 * Convolution over NHWC images (program.ts ConvOp), the definition the native
 * scalar table computes: per output, the kh*kw*inC/groups products added in
 * (ky, kx, ci) order from +0 (padding taps are zeros), then + bias (0 when
 * there is none), then the activation. Bit-identical to the native scalar
 * table; SIMD tables are within 2 * K * 2^-24 * sum|x*w| (times the
 * activation's slope) of it.
 */
import type { Activation, ConvOp } from '../../../engine/program';
import * as numerics from '../numerics';
import * as activation from './activation';

// Local bindings: hot loops must not go through the module object on every call.
const { f32 } = numerics;
const { activate } = activation;

/** The window fields ConvOp and PoolOp share. */
export type WindowField = 'kh' | 'kw' | 'strideH' | 'strideW' | 'dilationH' | 'dilationW' | 'padTop' | 'padLeft' | 'padBottom' | 'padRight';

export type ConvShape = Pick<ConvOp, 'inH' | 'inW' | 'inC' | 'outH' | 'outW' | 'outC' | WindowField | 'groups'>;

/**
 * y = act(conv(x, weight) + bias) for `batch` images back to back.
 * x: [batch][inH][inW][inC]; weight: OHWI [outC][kh][kw][inC/groups]; bias: outC or
 * undefined; y: [batch][outH][outW][outC]. Returns y.
 */
export function conv2d(
  s: ConvShape,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | undefined,
  act: Activation,
  y: Float32Array,
  batch = 1,
): Float32Array {
  const icg = s.inC / s.groups;
  const ocg = s.outC / s.groups;
  const k = s.kh * s.kw * icg;
  // A padding tap adds 0 * w: skipping it gives the same sum (the sum is never -0)
  // unless a weight is infinite or NaN (then 0 * w is NaN, as on the native side).
  let finite = true;
  for (let i = 0; i < weight.length && finite; i++) finite = Number.isFinite(weight[i]);
  const iys = new Int32Array(s.kh);
  const ixs = new Int32Array(s.kw);
  for (let n = 0; n < batch; n++) {
    const xImage = n * s.inH * s.inW * s.inC;
    for (let oy = 0; oy < s.outH; oy++) {
      for (let ky = 0; ky < s.kh; ky++) iys[ky] = oy * s.strideH - s.padTop + ky * s.dilationH;
      for (let ox = 0; ox < s.outW; ox++) {
        for (let kx = 0; kx < s.kw; kx++) ixs[kx] = ox * s.strideW - s.padLeft + kx * s.dilationW;
        const yPixel = ((n * s.outH + oy) * s.outW + ox) * s.outC;
        for (let oc = 0; oc < s.outC; oc++) {
          const cBase = Math.floor(oc / ocg) * icg;
          const wBase = oc * k;
          let acc = 0;
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = iys[ky];
            const rowInside = iy >= 0 && iy < s.inH;
            for (let kx = 0; kx < s.kw; kx++) {
              const ix = ixs[kx];
              const w = wBase + (ky * s.kw + kx) * icg;
              if (rowInside && ix >= 0 && ix < s.inW) {
                const xp = xImage + (iy * s.inW + ix) * s.inC + cBase;
                for (let ci = 0; ci < icg; ci++) acc = f32(acc + f32(x[xp + ci] * weight[w + ci]));
              } else if (!finite) {
                for (let ci = 0; ci < icg; ci++) acc = f32(acc + 0 * weight[w + ci]);
              }
            }
          }
          y[yPixel + oc] = activate(f32(acc + (bias ? bias[oc] : 0)), act);
        }
      }
    }
  }
  return y;
}
