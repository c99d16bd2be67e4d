/**
 * Static (calibrated) int8 activation quantization, TFLite's per-tensor scheme,
 * the twin of native/core/static_quant.h:
 *   q = clamp(round_half_even(x / scale) + zeroPoint, -128, 127)   (float32 math)
 * returned in the dynamic path's uint8 form (q + 128, zero point zeroPoint + 128)
 * so the same GEMM gives the same int32 accumulators as an int8 NPU.
 */
import type { RowQuantized } from '../types';
import * as numerics from './numerics';

// Local bindings: hot loops must not go through the module object on every call.
const { clamp, f32, roundEven } = numerics;

export function quantizeStaticS8(x: number, scale: number, zeroPoint: number): number {
  return clamp(roundEven(f32(x / scale)) + zeroPoint, -128, 127);
}

export function quantizeStaticRows(x: Float32Array, rows: number, k: number, input: { scale: number; zeroPoint: number }): RowQuantized {
  const q = new Uint8Array(rows * k);
  for (let i = 0; i < q.length; i++) q[i] = quantizeStaticS8(x[i], input.scale, input.zeroPoint) + 128;
  return { q, scale: new Float32Array(rows).fill(input.scale), zeroPoint: new Int32Array(rows).fill(input.zeroPoint + 128) };
}
