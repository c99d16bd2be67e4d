/**
 * The int8 CNN ops of a Program (program.ts QuantizeOp ... QConcatOp) in
 * TypeScript: the definition every native table must match bit for bit.
 * Integer arithmetic only (JS numbers hold every int32 sum exactly); the one
 * 62-bit product of requantization is split so no BigInt is needed.
 */
import type { QBinaryOp, QConcatOp, QConvOp, QGlobalAvgPoolOp, QPoolOp } from '../../../engine/program';
import * as numerics from '../numerics';
import * as pool from './pool';

// Local bindings: hot loops must not go through the module object on every call.
const { clamp, f32, roundEven } = numerics;
const { taps } = pool;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const TWO31 = 2147483648;

const saturate = (v: number) => (v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);

/**
 * TFLite's MultiplyByQuantizedMultiplier(x, m0, shift) for int32 x, m0 in [0, 2^31):
 * the rounding doubling high multiply of (x << max(shift, 0)) by m0, then a rounding
 * right shift by max(-shift, 0). Equal to requantize.ts's BigInt definition.
 */
export function requantize(x: number, m0: number, shift: number): number {
  const a = saturate(shift > 0 ? x * 2 ** shift : x);
  if (a === INT32_MIN && m0 === INT32_MIN) return INT32_MAX;
  // a * m0 = p1 * 2^16 + p0 with both partial products exact in a double.
  const p1 = a * Math.floor(m0 / 65536);
  const p0 = a * (m0 % 65536);
  const q1 = Math.floor(p1 / 32768);
  const negative = a < 0 && m0 > 0; // the sign of a * m0
  const t = (p1 - q1 * 32768) * 65536 + p0 + (negative ? 1 - (1 << 30) : 1 << 30);
  // a * m0 + nudge = q1 * 2^31 + t; the quotient by 2^31 truncates toward zero.
  const high = q1 + (negative ? Math.ceil(t / TWO31) : Math.floor(t / TWO31));
  if (shift >= 0) return high;
  const exponent = -shift;
  const mask = 2 ** exponent - 1;
  const remainder = high & mask;
  const threshold = Math.floor(mask / 2) + (high < 0 ? 1 : 0);
  return Math.floor(high / 2 ** exponent) + (remainder > threshold ? 1 : 0);
}

export function quantizeS8(x: Float32Array, y: Int8Array, scale: number, zeroPoint: number): void {
  for (let i = 0; i < x.length; i++) y[i] = clamp(roundEven(f32(x[i] / scale)) + zeroPoint, -128, 127);
}

export function dequantizeS8(x: Int8Array, y: Float32Array, scale: number, zeroPoint: number): void {
  for (let i = 0; i < x.length; i++) y[i] = f32((x[i] - zeroPoint) * scale);
}

export type QConvArgs = Omit<QConvOp, 'x' | 'y' | 'weight' | 'bias' | 'multipliers' | 'shifts' | 'node' | 'op'>;

/** Int8 convolution of `batch` NHWC images (QConvOp). */
export function qconv2d(
  s: QConvArgs,
  x: Int8Array,
  weight: Int8Array,
  bias: Int32Array,
  multipliers: Int32Array,
  shifts: Int32Array,
  y: Int8Array,
  batch = 1,
): Int8Array {
  const icg = s.inC / s.groups;
  const ocg = s.outC / s.groups;
  const k = s.kh * s.kw * icg;
  const zx = s.inputZeroPoint;
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
          let acc = bias[oc];
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = iys[ky];
            if (iy < 0 || iy >= s.inH) continue;
            for (let kx = 0; kx < s.kw; kx++) {
              const ix = ixs[kx];
              if (ix < 0 || ix >= s.inW) continue;
              const w = wBase + (ky * s.kw + kx) * icg;
              const xp = xImage + (iy * s.inW + ix) * s.inC + cBase;
              for (let ci = 0; ci < icg; ci++) acc += (x[xp + ci] - zx) * weight[w + ci];
            }
          }
          const v = requantize(acc | 0, multipliers[oc], shifts[oc]) + s.outputZeroPoint;
          y[yPixel + oc] = v < s.min ? s.min : v > s.max ? s.max : v;
        }
      }
    }
  }
  return y;
}

export function qlut(x: Int8Array, y: Int8Array, table: Int8Array): void {
  for (let i = 0; i < x.length; i++) y[i] = table[x[i] + 128];
}

export type QBinaryArgs = Omit<QBinaryOp, 'a' | 'b' | 'y' | 'node' | 'op' | 'count'>;

/** Int8 add/mul of two same-shape tensors (QBinaryOp) over all of `a`. */
export function qbinary(s: QBinaryArgs, a: Int8Array, b: Int8Array, y: Int8Array): void {
  const scale = 2 ** s.leftShift;
  for (let i = 0; i < a.length; i++) {
    let acc: number;
    if (s.fn === 'add') {
      const sa = requantize((a[i] - s.aZeroPoint) * scale, s.aMultiplier, s.aShift);
      const sb = requantize((b[i] - s.bZeroPoint) * scale, s.bMultiplier, s.bShift);
      acc = sa + sb;
    } else {
      acc = (a[i] - s.aZeroPoint) * (b[i] - s.bZeroPoint);
    }
    const v = requantize(acc, s.multiplier, s.shift) + s.outputZeroPoint;
    y[i] = v < s.min ? s.min : v > s.max ? s.max : v;
  }
}

export type QPoolArgs = Omit<QPoolOp, 'x' | 'y' | 'node'>;

/** Int8 max/average pooling of `batch` NHWC images (QPoolOp). */
export function qpool2d(s: QPoolArgs, x: Int8Array, y: Int8Array, batch = 1): Int8Array {
  const c = s.c;
  const max = s.op === 'qmaxpool';
  const acc = new Int32Array(c);
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
        acc.fill(max ? -128 : 0);
        for (let ky = fy; ky <= ly; ky++) {
          for (let kx = fx; kx <= lx; kx++) {
            const xo = xImage + ((sy + ky * s.dilationH) * s.inW + sx + kx * s.dilationW) * c;
            if (max) {
              for (let ch = 0; ch < c; ch++) if (x[xo + ch] > acc[ch]) acc[ch] = x[xo + ch];
            } else {
              for (let ch = 0; ch < c; ch++) acc[ch] += x[xo + ch];
            }
          }
        }
        const yo = ((n * s.outH + oy) * s.outW + ox) * c;
        if (max) {
          for (let ch = 0; ch < c; ch++) y[yo + ch] = acc[ch];
          continue;
        }
        const count = s.countIncludePad ? Math.max(0, py1 - py0 + 1) * Math.max(0, px1 - px0 + 1) : (ly - fy + 1) * (lx - fx + 1);
        for (let ch = 0; ch < c; ch++) y[yo + ch] = clamp(roundedDivide(acc[ch], count), -128, 127);
      }
    }
  }
  return y;
}

/** sum / count with halves away from zero, in integers (TFLite's average pool); count 0 gives 0. */
export function roundedDivide(sum: number, count: number): number {
  if (count <= 0) return 0;
  const half = Math.floor(count / 2);
  return Math.trunc((sum >= 0 ? sum + half : sum - half) / count);
}

export type QGlobalAvgPoolArgs = Omit<QGlobalAvgPoolOp, 'x' | 'y' | 'node' | 'op'>;

export function qglobalAvgPool(s: QGlobalAvgPoolArgs, x: Int8Array, y: Int8Array, batch = 1): Int8Array {
  const pixels = s.h * s.w;
  const acc = new Int32Array(s.c);
  for (let n = 0; n < batch; n++) {
    acc.fill(0);
    for (let p = 0; p < pixels; p++) {
      const xo = (n * pixels + p) * s.c;
      for (let ch = 0; ch < s.c; ch++) acc[ch] += x[xo + ch] - s.inputZeroPoint;
    }
    for (let ch = 0; ch < s.c; ch++) y[n * s.c + ch] = clamp(requantize(acc[ch], s.multiplier, s.shift) + s.outputZeroPoint, -128, 127);
  }
  return y;
}

export type QConcatArgs = Omit<QConcatOp, 'inputs' | 'y' | 'node' | 'op'>;

/** Int8 concatenation (QConcatOp) over `outer` rows (batch included). */
export function qconcat(s: QConcatArgs, xs: Int8Array[], y: Int8Array, outer: number): void {
  const total = s.sizes.reduce((a, b) => a + b, 0);
  for (let r = 0; r < outer; r++) {
    let at = r * total;
    xs.forEach((x, i) => {
      const size = s.sizes[i];
      const from = r * size;
      if (!s.rescale[i]) y.set(x.subarray(from, from + size), at);
      else
        for (let j = 0; j < size; j++)
          y[at + j] = clamp(
            requantize(x[from + j] - s.zeroPoints[i], s.inputMultipliers[i], s.inputShifts[i]) + s.outputZeroPoint,
            -128,
            127,
          );
      at += size;
    });
  }
}
