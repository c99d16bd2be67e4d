/** IEEE half-precision conversion (Node 20 has no Float16Array), round to nearest even. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalfBits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
  if (exp >= 0x1f) return sign | 0x7c00; // overflow
  let shift = 13;
  let base = exp << 10;
  if (exp <= 0) {
    if (exp < -10) return sign; // underflow to zero
    mant |= 0x800000; // subnormal: make the implicit bit explicit
    shift = 14 - exp;
    base = 0;
  }
  let half = base | (mant >>> shift);
  const rem = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  if (rem > mid || (rem === mid && half & 1)) half++; // a carry into the exponent is still correct
  return sign | half;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The float32 value nearest to v that a half can hold exactly. */
export function roundToHalf(v: number): number {
  return fromHalfBits(toHalfBits(v));
}

export function isHalfExact(values: Float32Array): boolean {
  return values.every((v) => Object.is(roundToHalf(v), v));
}
