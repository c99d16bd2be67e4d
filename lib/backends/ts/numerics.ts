/**
 * Float32 arithmetic helpers that reproduce the C++ core operation for
 * operation: every intermediate is rounded to float32 (Math.fround), rounding
 * is half to even (std::nearbyint), min/max/clamp follow std:: semantics.
 */
export const f32 = Math.fround;

/** Round half to even, like std::nearbyint in the default rounding mode. */
export function roundEven(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** std::clamp(v, lo, hi). */
export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : hi < v ? hi : v;
}

/** std::max(v, 0.0f): ReLU. */
export function relu(v: number): number {
  return v < 0 ? 0 : v;
}
