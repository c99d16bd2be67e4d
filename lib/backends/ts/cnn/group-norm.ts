/**
 * GroupNormalization over NHWC images (program.ts GroupNormOp). There is no native kernel:
 * the statistics are summed in float64 (two passes, mean then squared deviations) and each
 * output is rounded to float32 once before its activation, as the training op computes it
 * (lib/train/graph/group-norm.ts), so a trained model evaluates as it trained.
 */
import type { GroupNormOp } from '../../../engine/program';
import { activate } from './activation';

export type GroupNormShape = Pick<GroupNormOp, 'h' | 'w' | 'c' | 'groups' | 'epsilon' | 'act'>;

export function groupNorm(
  s: GroupNormShape,
  x: Float32Array,
  scale: Float32Array,
  bias: Float32Array,
  y: Float32Array,
  batch: number,
): Float32Array {
  const { c, groups } = s;
  const pixels = s.h * s.w;
  const cpg = c / groups;
  const count = pixels * cpg;
  for (let b = 0; b < batch; b++) {
    const image = b * pixels * c;
    for (let k = 0; k < groups; k++) {
      const first = image + k * cpg;
      let sum = 0;
      for (let p = 0; p < pixels; p++) for (let i = first + p * c, e = i + cpg; i < e; i++) sum += x[i];
      const mean = sum / count;
      let squares = 0;
      for (let p = 0; p < pixels; p++) for (let i = first + p * c, e = i + cpg; i < e; i++) squares += (x[i] - mean) * (x[i] - mean);
      const inv = 1 / Math.sqrt(squares / count + s.epsilon);
      for (let p = 0; p < pixels; p++)
        for (let j = 0; j < cpg; j++) {
          const i = first + p * c + j;
          const v = Math.fround(scale[k * cpg + j] * ((x[i] - mean) * inv) + bias[k * cpg + j]);
          y[i] = activate(v, s.act);
        }
    }
  }
  return y;
}
