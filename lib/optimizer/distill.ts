/**
 * Knowledge distillation (Hinton et al. 2015): train a small student on
 * alpha·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 - alpha)·CE(s, y). The
 * teacher runs once over the data through the inference engine (so an int8
 * or pruned teacher works too); its logits are then looked up per batch.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { loadModel, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { distillationLoss } from '../train/loss';
import { train, type LossFn, type TrainOptions, type TrainResult } from '../train/trainer';
import { evaluateModel } from './evaluate';
import type { Pass } from './pass';

export interface DistillOptions extends Omit<TrainOptions, 'loss'> {
  teacher: ModelSource;
  /** The student to train (e.g. mlp([784, 32, 10], { seed })). */
  student: Graph;
  data: Dataset;
  /** Softening temperature T, default 4. */
  temperature?: number;
  /** Weight of the soft (teacher) term, default 0.9; 0 is plain training on labels. */
  alpha?: number;
}

/** Teacher logits per row; a teacher that ends in Softmax gives log-probabilities (same softened targets). */
function teacherLogits(teacher: Graph, data: Dataset): Float32Array {
  const { logits } = evaluateModel(teacher, data);
  const endsInSoftmax = teacher.nodes[teacher.nodes.length - 1]?.op === 'Softmax';
  return endsInSoftmax ? logits.map((p) => Math.log(Math.max(p, 1e-30))) : logits;
}

/** The distillation loss against `teacher`'s logits on the rows of `data` (run once, looked up per batch). */
export function distillationLossFn(teacher: Graph, data: Dataset, temperature: number, alpha: number): LossFn {
  if (!(temperature > 0)) throw new EdgeOptError('E_ARGUMENT', `distill: temperature must be positive, got ${temperature}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new EdgeOptError('E_ARGUMENT', `distill: alpha must be in [0, 1], got ${alpha}`);
  const t = teacherLogits(teacher, data);
  const classes = t.length / data.shape[0];
  return (logits, batch) => {
    if (logits.length !== batch.rows * classes)
      throw new EdgeOptError('E_SHAPE', `distill: the student has ${logits.length / batch.rows} outputs, the teacher ${classes}`);
    const tb = new Float32Array(batch.rows * classes);
    batch.indices.forEach((row, r) => tb.set(t.subarray(row * classes, (row + 1) * classes), r * classes));
    return distillationLoss(logits, tb, batch.labels, batch.rows, temperature, alpha);
  };
}

export function distill(options: DistillOptions): TrainResult {
  const { teacher, student, data, temperature = 4, alpha = 0.9, ...rest } = options;
  if (!data?.labels) throw new EdgeOptError('E_ARGUMENT', 'distill: data needs labels');
  return train(student, data, { ...rest, loss: distillationLossFn(loadModel(teacher), data, temperature, alpha) });
}

/** An optimizer pass: the pipeline's current model is the teacher; the pass returns the trained student. */
export function distillation(options: Omit<DistillOptions, 'teacher'>): Pass {
  return (graph) => distill({ ...options, teacher: graph }).model;
}
