/**
 * Losses over a batch of logits [rows, classes]: each returns the mean loss
 * and dLoss/dLogits (PyTorch's 'mean' / 'batchmean' reductions).
 */
import { EdgeOptError } from '../errors';

export interface LossResult {
  loss: number;
  grad: Float32Array;
}

/** Row-wise softmax of logits / temperature, computed stably (max subtracted). */
export function softmaxRows(logits: Float32Array, rows: number, temperature = 1): Float32Array {
  const c = logits.length / rows;
  const p = new Float32Array(logits.length);
  for (let r = 0; r < rows; r++) {
    const o = r * c;
    let mx = -Infinity;
    for (let j = 0; j < c; j++) mx = Math.max(mx, logits[o + j] / temperature);
    let sum = 0;
    for (let j = 0; j < c; j++) sum += p[o + j] = Math.exp(logits[o + j] / temperature - mx);
    for (let j = 0; j < c; j++) p[o + j] /= sum;
  }
  return p;
}

function checkLabel(label: number, classes: number): void {
  if (!(Number.isInteger(label) && label >= 0 && label < classes)) {
    throw new EdgeOptError('E_VALUE', `loss: label ${label} is outside 0..${classes - 1}`);
  }
}

/** Mean softmax cross-entropy against integer labels. */
export function softmaxCrossEntropy(logits: Float32Array, labels: ArrayLike<number>, rows: number): LossResult {
  const c = logits.length / rows;
  const grad = softmaxRows(logits, rows);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const y = labels[r];
    checkLabel(y, c);
    loss -= Math.log(Math.max(grad[r * c + y], 1e-30));
    grad[r * c + y] -= 1;
  }
  for (let i = 0; i < grad.length; i++) grad[i] /= rows;
  return { loss: loss / rows, grad };
}

/**
 * Mean softmax cross-entropy over the classes in `present` only (FedRS's restricted softmax with
 * alpha 0): the other classes' logits take no part and get no gradient. A federated client that
 * holds a few classes trains its own classes apart without pushing every other class's output down,
 * which is what makes label-skewed client models disagree. With every class present it is
 * softmaxCrossEntropy.
 */
export function restrictedCrossEntropy(
  logits: Float32Array,
  labels: ArrayLike<number>,
  rows: number,
  present: ArrayLike<boolean | undefined>,
): LossResult {
  const c = logits.length / rows;
  for (let r = 0; r < rows; r++) {
    checkLabel(labels[r], c);
    if (!present[labels[r]]) throw new EdgeOptError('E_VALUE', `loss: label ${labels[r]} is not among the present classes`);
  }
  // An absent class's logit as -Infinity: probability 0, so no loss term and no gradient.
  return softmaxCrossEntropy(
    Float32Array.from(logits, (z, i) => (present[i % c] ? z : -Infinity)),
    labels,
    rows,
  );
}

/** Mean squared error over every element (targets [rows, classes]). */
export function meanSquaredError(outputs: Float32Array, targets: Float32Array): LossResult {
  if (targets.length !== outputs.length) throw new EdgeOptError('E_SHAPE', `mse: ${targets.length} targets for ${outputs.length} outputs`);
  const n = outputs.length;
  const grad = new Float32Array(n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const d = outputs[i] - targets[i];
    loss += d * d;
    grad[i] = (2 * d) / n;
  }
  return { loss: loss / n, grad };
}

/** One-hot rows for labels (MSE against classes). */
export function oneHot(labels: ArrayLike<number>, rows: number, classes: number): Float32Array {
  const t = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    checkLabel(labels[r], classes);
    t[r * classes + labels[r]] = 1;
  }
  return t;
}

/**
 * Hinton et al.'s distillation loss:
 * alpha·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 - alpha)·CE(s, y), batch-mean.
 * The T² keeps the soft term's gradient scale independent of T.
 */
export function distillationLoss(
  student: Float32Array,
  teacher: Float32Array,
  labels: ArrayLike<number>,
  rows: number,
  temperature: number,
  alpha: number,
): LossResult {
  const ps = softmaxRows(student, rows, temperature);
  const pt = softmaxRows(teacher, rows, temperature);
  let kl = 0;
  for (let i = 0; i < ps.length; i++) if (pt[i] > 0) kl += pt[i] * (Math.log(pt[i]) - Math.log(Math.max(ps[i], 1e-30)));
  const hard = alpha < 1 ? softmaxCrossEntropy(student, labels, rows) : { loss: 0, grad: new Float32Array(student.length) };
  const grad = new Float32Array(student.length);
  // d/ds [T²·KL] = T·(ps - pt), divided by rows for the batch mean.
  const soft = (alpha * temperature) / rows;
  for (let i = 0; i < grad.length; i++) grad[i] = soft * (ps[i] - pt[i]) + (1 - alpha) * hard.grad[i];
  return { loss: (alpha * temperature * temperature * kl) / rows + (1 - alpha) * hard.loss, grad };
}
