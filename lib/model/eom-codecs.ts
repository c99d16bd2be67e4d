/**
 * Compact encodings used inside .eom files: bit-packed pruning masks, low-bit
 * integer packing, sparse (kept-values-only) weights and half-precision scales.
 */
import type { TensorData } from './graph';
import { fromHalfBits, toHalfBits } from '../util/float16';

/** Masks: one bit per weight, least significant bit first. */
export function packBits(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

export function unpackBits(bits: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (bits[i >> 3] >> (i & 7)) & 1;
  return out;
}

/** Low-bit weights: floor(8 / bits) two's-complement values per byte, LSB first. */
export function packInts(values: Int8Array, bits: number): Uint8Array {
  const per = Math.floor(8 / bits);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(Math.ceil(values.length / per));
  for (let i = 0; i < values.length; i++) out[Math.floor(i / per)] |= (values[i] & mask) << (bits * (i % per));
  return out;
}

export function packedLength(count: number, bits: number): number {
  return Math.ceil(count / Math.floor(8 / bits));
}

export function unpackInts(packed: Uint8Array, bits: number, count: number): Int8Array {
  const per = Math.floor(8 / bits);
  const mask = (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  const out = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    const u = (packed[Math.floor(i / per)] >> (bits * (i % per))) & mask;
    out[i] = u >= sign ? u - (1 << bits) : u;
  }
  return out;
}

/** The values a keep-mask keeps, in order: pruned weights cost nothing but their mask bit. */
export function keptValues<T extends TensorData>(values: T, keep: Uint8Array): T {
  const out = new (values.constructor as new (n: number) => T)(countKept(keep));
  let j = 0;
  for (let i = 0; i < keep.length; i++) if (keep[i]) out[j++] = values[i];
  return out;
}

export function countKept(keep: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < keep.length; i++) n += keep[i];
  return n;
}

/** Inverse of keptValues: zeros where the mask prunes. */
export function scatterKept<T extends TensorData>(kept: T, keep: Uint8Array): T {
  const out = new (kept.constructor as new (n: number) => T)(keep.length);
  let j = 0;
  for (let i = 0; i < keep.length; i++) if (keep[i]) out[i] = kept[j++];
  return out;
}

export function toHalfArray(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, toHalfBits);
}

export function fromHalfArray(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, fromHalfBits);
}

/**
 * Byte planes: the k-th byte of every `width`-byte element together (byte k of element i moves to
 * k * n + i). Float32 exponents and the high bytes of small int32 values then sit in long runs the
 * compressor codes in a few bits; the mantissa bytes stay what they are.
 */
export function toBytePlanes(bytes: Uint8Array, width: number): Uint8Array {
  const n = bytes.length / width;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < width; k++) out[k * n + i] = bytes[i * width + k];
  return out;
}

/** Inverse of toBytePlanes, written into `out` (same length as `planes`). */
export function fromBytePlanes(planes: Uint8Array, width: number, out: Uint8Array): void {
  const n = planes.length / width;
  for (let i = 0; i < n; i++) for (let k = 0; k < width; k++) out[i * width + k] = planes[k * n + i];
}
