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
  if (icg === 1 && ocg === 1) return depthwise(s, x, weight, bias, act, y, batch, finite);
  const iys = new Int32Array(s.kh);
  const ixs = new Int32Array(s.kw);
  for (let n = 0; n < batch; n++) {
    const xImage = n * s.inH * s.inW * s.inC;
    for (let oy = 0; oy < s.outH; oy++) {
      for (let ky = 0; ky < s.kh; ky++) iys[ky] = oy * s.strideH - s.padTop + ky * s.dilationH;
      for (let ox = 0; ox < s.outW; ox++) {
        for (let kx = 0; kx < s.kw; kx++) ixs[kx] = ox * s.strideW - s.padLeft + kx * s.dilationW;
        const yPixel = ((n * s.outH + oy) * s.outW + ox) * s.outC;
        let oc = 0;
        // Four output channels of one group at a time: four independent chains of
        // rounded adds, each in its own (ky, kx, ci) order, where one chain would wait
        // on every rounding. The rest one at a time.
        for (; oc < s.outC; oc += 4) {
          if (oc + 4 > (Math.floor(oc / ocg) + 1) * ocg) break;
          const cBase = Math.floor(oc / ocg) * icg;
          let a0 = 0;
          let a1 = 0;
          let a2 = 0;
          let a3 = 0;
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = iys[ky];
            const rowInside = iy >= 0 && iy < s.inH;
            for (let kx = 0; kx < s.kw; kx++) {
              const ix = ixs[kx];
              const w = oc * k + (ky * s.kw + kx) * icg;
              if (rowInside && ix >= 0 && ix < s.inW) {
                const xp = xImage + (iy * s.inW + ix) * s.inC + cBase;
                for (let ci = 0; ci < icg; ci++) {
                  const v = x[xp + ci];
                  a0 = f32(a0 + f32(v * weight[w + ci]));
                  a1 = f32(a1 + f32(v * weight[w + k + ci]));
                  a2 = f32(a2 + f32(v * weight[w + 2 * k + ci]));
                  a3 = f32(a3 + f32(v * weight[w + 3 * k + ci]));
                }
              } else if (!finite) {
                for (let ci = 0; ci < icg; ci++) {
                  a0 = f32(a0 + 0 * weight[w + ci]);
                  a1 = f32(a1 + 0 * weight[w + k + ci]);
                  a2 = f32(a2 + 0 * weight[w + 2 * k + ci]);
                  a3 = f32(a3 + 0 * weight[w + 3 * k + ci]);
                }
              }
            }
          }
          y[yPixel + oc] = activate(f32(a0 + (bias ? bias[oc] : 0)), act);
          y[yPixel + oc + 1] = activate(f32(a1 + (bias ? bias[oc + 1] : 0)), act);
          y[yPixel + oc + 2] = activate(f32(a2 + (bias ? bias[oc + 2] : 0)), act);
          y[yPixel + oc + 3] = activate(f32(a3 + (bias ? bias[oc + 3] : 0)), act);
        }
        for (; oc < s.outC; oc++) {
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

/**
 * conv2d with one input and one output channel per group: each output's taps in the same
 * (ky, kx) order, but a whole pixel's channels per tap, so the inner loop runs over
 * contiguous memory instead of a short tap loop per channel.
 */
function depthwise(
  s: ConvShape,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | undefined,
  act: Activation,
  y: Float32Array,
  batch: number,
  finite: boolean,
): Float32Array {
  const c = s.outC;
  const taps = s.kh * s.kw;
  const wt = new Float32Array(taps * c); // [tap][c]
  for (let ch = 0; ch < c; ch++) for (let t = 0; t < taps; t++) wt[t * c + ch] = weight[ch * taps + t];
  const acc = new Float64Array(c);
  for (let n = 0; n < batch; n++) {
    const xImage = n * s.inH * s.inW * c;
    for (let oy = 0; oy < s.outH; oy++) {
      for (let ox = 0; ox < s.outW; ox++) {
        acc.fill(0);
        for (let ky = 0; ky < s.kh; ky++) {
          const iy = oy * s.strideH - s.padTop + ky * s.dilationH;
          for (let kx = 0; kx < s.kw; kx++) {
            const ix = ox * s.strideW - s.padLeft + kx * s.dilationW;
            const w = (ky * s.kw + kx) * c;
            if (iy >= 0 && iy < s.inH && ix >= 0 && ix < s.inW) {
              const xp = xImage + (iy * s.inW + ix) * c;
              for (let ch = 0; ch < c; ch++) acc[ch] = f32(acc[ch] + f32(x[xp + ch] * wt[w + ch]));
            } else if (!finite) {
              for (let ch = 0; ch < c; ch++) acc[ch] = f32(acc[ch] + 0 * wt[w + ch]);
            }
          }
        }
        const yPixel = ((n * s.outH + oy) * s.outW + ox) * c;
        for (let ch = 0; ch < c; ch++) y[yPixel + ch] = activate(f32(acc[ch] + (bias ? bias[ch] : 0)), act);
      }
    }
  }
  return y;
}
