/**
 * The fused activations and exp_f32 of native/core/activation.h, operation for
 * operation: every intermediate is rounded to float32 (Math.fround; for +, -, *
 * and / of float32 values, the double result rounded once equals float32
 * arithmetic), so results are bit-identical to every native table.
 */
import type { Activation } from '../../../engine/program';
import * as numerics from '../numerics';

// Local bindings: hot loops must not go through the module object on every call.
const { f32, roundEven } = numerics;

// exp_f32: x = n*ln2 + r, |r| <= ln2/2, e^r = 1 + r + r^2 * P(r), times 2^n.
const LOG2E = f32(1.44269502);
const LN2_HI = f32(0.693359375);
const LN2_LO = f32(-2.1219444e-4);
const EXP_HI = f32(88.3762589);
const EXP_LO = f32(-87.3365479);
const P0 = f32(0.4999999403953552);
const P1 = f32(0.1666652113199234);
const P2 = f32(0.04166838899254799);
const P3 = f32(0.008368708193302155);
const P4 = f32(0.0013814601115882397);

export function expF32(x: number): number {
  if (x !== x) return x;
  if (x > EXP_HI) return Infinity;
  if (x < EXP_LO) return 0;
  const n = roundEven(f32(x * LOG2E));
  let r = f32(x - f32(n * LN2_HI));
  r = f32(r - f32(n * LN2_LO));
  let p = P4;
  p = f32(f32(p * r) + P3);
  p = f32(f32(p * r) + P2);
  p = f32(f32(p * r) + P1);
  p = f32(f32(p * r) + P0);
  p = f32(f32(f32(p * r) * r) + r);
  p = f32(p + 1);
  return f32(p * 2 ** n);
}

// tanh: an odd polynomial below |x| = 0.25, else (1 - e) / (1 + e) with e = exp_f32(-2|x|).
const TANH_SMALL = 0.25;
const T1 = f32(-0.333333343);
const T2 = f32(0.13333334);
const T3 = f32(-0.0539682545);
const T4 = f32(0.0218694881);

export function tanhF32(x: number): number {
  const a = Math.abs(x);
  if (a < TANH_SMALL) {
    const z = f32(x * x);
    let p = T4;
    p = f32(f32(p * z) + T3);
    p = f32(f32(p * z) + T2);
    p = f32(f32(p * z) + T1);
    return f32(x + f32(f32(x * z) * p));
  }
  const e = expF32(f32(a * -2));
  const t = f32(f32(1 - e) / f32(1 + e));
  return x < 0 ? -t : t;
}

export function sigmoidF32(x: number): number {
  return f32(1 / f32(1 + expF32(-x)));
}

const SIXTH = f32(1 / 6);

/** The activation of one float32 value (program.ts `Activation`; native activate()). */
export function activate(v: number, act: Activation): number {
  switch (act.kind) {
    case 'none':
      return v;
    case 'relu':
      return v < 0 ? 0 : v;
    case 'leakyrelu':
      return v < 0 ? f32(f32(act.alpha) * v) : v;
    case 'clip':
      return clampF32(v, f32(act.min), f32(act.max));
    case 'hardsigmoid':
      return clampF32(f32(f32(f32(act.alpha) * v) + f32(act.beta)), 0, 1);
    case 'hardswish':
      return f32(v * clampF32(f32(f32(v * SIXTH) + 0.5), 0, 1));
    case 'sigmoid':
      return sigmoidF32(v);
    case 'tanh':
      return tanhF32(v);
  }
}

/** clamp_f32: lo > v ? lo : v, then hi < t ? hi : t (std::clamp when lo <= hi; NaN stays NaN). */
export function clampF32(v: number, lo: number, hi: number): number {
  const t = lo > v ? lo : v;
  return hi < t ? hi : t;
}

/** y[i] = act(x[i]); y may be x. */
export function activation(x: Float32Array, y: Float32Array, act: Activation): Float32Array {
  if (act.kind === 'relu') {
    for (let i = 0; i < x.length; i++) y[i] = x[i] < 0 ? 0 : x[i];
  } else {
    for (let i = 0; i < x.length; i++) y[i] = activate(x[i], act);
  }
  return y;
}
