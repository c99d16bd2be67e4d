/**
 * Integer requantization to int8 (TFLite's scheme), the twin of
 * native/core/requantize.h: the same double arithmetic for the multiplier and
 * exact 64-bit integer arithmetic (BigInt) for the high multiply.
 */
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

export interface QuantizedMultiplier {
  m0: number;
  shift: number;
}

/** std::frexp: real = q * 2^e with q in [0.5, 1). */
function frexp(real: number): [number, number] {
  let e = Math.ceil(Math.log2(real));
  let q = real / 2 ** e;
  while (q >= 1) {
    q /= 2;
    e++;
  }
  while (q < 0.5) {
    q *= 2;
    e--;
  }
  return [q, e];
}

export function quantizeMultiplier(real: number): QuantizedMultiplier {
  if (!(real > 0)) return { m0: 0, shift: 0 };
  const [q, initialShift] = frexp(real);
  let shift = initialShift;
  let m = Math.round(q * 2147483648); // q > 0: Math.round is std::round
  if (m === 2147483648) {
    m /= 2;
    shift++;
  }
  if (shift < -31) return { m0: 0, shift: 0 };
  return { m0: m, shift };
}

const saturate = (v: number) => (v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);

function roundingDoublingHighMul(a: number, b: number): number {
  if (a === b && a === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number((ab + nudge) / (1n << 31n)); // BigInt division truncates toward zero, like C++
}

function roundingDivideByPot(x: number, exponent: number): number {
  const mask = 2 ** exponent - 1;
  const remainder = x & mask; // two's complement bits, as in C++
  const threshold = Math.floor(mask / 2) + (x < 0 ? 1 : 0);
  return Math.floor(x / 2 ** exponent) + (remainder > threshold ? 1 : 0);
}

export function multiplyByQuantizedMultiplier(x: number, qm: QuantizedMultiplier): number {
  const left = qm.shift > 0 ? qm.shift : 0;
  const right = qm.shift > 0 ? 0 : -qm.shift;
  return roundingDivideByPot(roundingDoublingHighMul(saturate(x * 2 ** left), qm.m0), right);
}

/** round(bias / (sIn * sW)) half away from zero, saturated to int32. */
export function quantizeBias(bias: number, inputScale: number, weightScale: number): number {
  const v = bias / (inputScale * weightScale);
  return saturate(Math.sign(v) * Math.round(Math.abs(v)));
}
