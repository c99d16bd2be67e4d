/**
 * The training loop: shuffled mini-batches (seeded), forward, loss, backward,
 * optimizer step, masks re-applied. One generator drives both the blocking
 * `train` and the event-loop-friendly `trainAsync` (which yields between
 * batches so servers and timers keep running).
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';
import { meanSquaredError, oneHot, softmaxCrossEntropy, type LossResult } from './loss';
import { Network } from './network';
import { adam, sgd, type Optimizer } from './optim';
import { seededRandom, shuffledIndices } from './random';
import { checkSchedule, scheduledLr, type LrSchedule } from './schedule';
import { checkAugmentation, shiftImages, type Augmentation } from './augment';

/** The rows of one mini-batch: their positions in the dataset and their labels. */
export interface Batch {
  rows: number;
  indices: Uint32Array;
  labels: Int32Array;
}

export type LossFn = (logits: Float32Array, batch: Batch) => LossResult;

export interface StepInfo {
  epoch: number;
  /** 0-based step over the whole run. */
  step: number;
  /** Total steps of the run. */
  steps: number;
  loss: number;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  /** Running training accuracy over the epoch (argmax of the logits). */
  accuracy: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize?: number;
  /** Default 0.01 for SGD, 0.001 for Adam. */
  lr?: number;
  optimizer?: 'sgd' | 'adam' | Optimizer;
  /** SGD momentum, default 0.9. */
  momentum?: number;
  weightDecay?: number;
  /** Learning-rate schedule over the run (default: constant). */
  schedule?: LrSchedule;
  /** Seeded random shifts of image inputs (models whose input is [C, H, W]). */
  augment?: Augmentation;
  /** Seeds the batch order. Same seed, data and backend: same weights, bit for bit. */
  seed?: number;
  loss?: 'cross-entropy' | 'mse' | LossFn;
  /** FedProx: adds (mu/2)·‖w - anchor‖² to the loss (anchor in `Network.params` order). */
  proximal?: { mu: number; anchor: Float32Array[] };
  /**
   * SCAFFOLD (Karimireddy et al. 2020), in `Network.params` order: `offset` (c - c_i) is added to every
   * step's gradients, and `meanGradient` (zeroed by the caller) receives the mean loss gradient over the
   * run, the client's next c_i (the paper's option II for plain SGD, and optimizer-independent).
   */
  controlVariate?: { offset: Float32Array[]; meanGradient: Float32Array[] };
  /** Called before every step with the network (schedules may edit masks or lr here). */
  beforeStep?: (info: Omit<StepInfo, 'loss'>, net: Network, optimizer: Optimizer) => void;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (stats: EpochStats) => void;
}

export interface TrainResult {
  model: Graph;
  history: EpochStats[];
}

function makeOptimizer(o: TrainOptions): Optimizer {
  const opt = o.optimizer ?? 'sgd';
  if (typeof opt === 'object') return opt;
  if (opt === 'adam') return adam({ lr: o.lr ?? 1e-3, weightDecay: o.weightDecay });
  if (opt === 'sgd') return sgd({ lr: o.lr ?? 0.01, momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay });
  throw new EdgeOptError('E_ARGUMENT', `train: optimizer must be 'sgd', 'adam' or an Optimizer, got '${String(opt)}'`);
}

function makeLoss(o: TrainOptions, data: Dataset, classes: number): LossFn {
  const loss = o.loss ?? 'cross-entropy';
  if (typeof loss === 'function') return loss;
  if (loss === 'cross-entropy') return (logits, b) => softmaxCrossEntropy(logits, b.labels, b.rows);
  if (loss === 'mse') return (logits, b) => meanSquaredError(logits, oneHot(b.labels, b.rows, classes));
  throw new EdgeOptError('E_ARGUMENT', `train: loss must be 'cross-entropy', 'mse' or a function, got '${String(loss)}'`);
}

function checkData(data: Dataset, net: Network): { n: number; rowSize: number; labels: Int32Array } {
  const n = data.shape?.[0];
  if (!(n > 0)) throw new EdgeOptError('E_ARGUMENT', 'train: the dataset has no rows');
  const rowSize = data.data.length / n;
  if (rowSize !== net.inFeatures)
    throw new EdgeOptError('E_SHAPE', `train: rows have ${rowSize} values, the model takes ${net.inFeatures}`);
  if (!data.labels || data.labels.length !== n) throw new EdgeOptError('E_ARGUMENT', `train: the dataset needs ${n} labels`);
  return { n, rowSize, labels: data.labels };
}

/** Yields after every step; returns the per-epoch statistics. */
export function* trainSteps(net: Network, data: Dataset, options: TrainOptions): Generator<void, EpochStats[]> {
  const { epochs } = options;
  const batchSize = options.batchSize ?? 32;
  if (!(Number.isInteger(epochs) && epochs >= 0))
    throw new EdgeOptError('E_ARGUMENT', `train: epochs must be a non-negative integer, got ${epochs}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new EdgeOptError('E_ARGUMENT', `train: batchSize must be a positive integer, got ${batchSize}`);
  const { n, rowSize, labels } = checkData(data, net);
  const optimizer = makeOptimizer(options);
  if (options.schedule) checkSchedule(options.schedule);
  if (options.augment) checkAugmentation(options.augment, net.inputDims);
  const baseLr = optimizer.lr;
  const lossFn = makeLoss(options, data, net.outFeatures);
  const random = seededRandom(options.seed ?? 0);
  const augmentRandom = seededRandom((options.seed ?? 0) ^ 0x9e3779b9);
  const perEpoch = Math.ceil(n / batchSize);
  const steps = perEpoch * epochs;
  const history: EpochStats[] = [];
  const classes = net.outFeatures;
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const order = shuffledIndices(n, random);
    let lossSum = 0;
    let correct = 0;
    for (let from = 0; from < n; from += batchSize) {
      if (options.schedule) optimizer.lr = scheduledLr(options.schedule, baseLr, step, steps, epoch);
      options.beforeStep?.({ epoch, step, steps }, net, optimizer);
      const indices = order.subarray(from, Math.min(n, from + batchSize));
      const rows = indices.length;
      const x = new Float32Array(rows * rowSize);
      const y = new Int32Array(rows);
      indices.forEach((idx, r) => {
        x.set(data.data.subarray(idx * rowSize, (idx + 1) * rowSize), r * rowSize);
        y[r] = labels[idx];
      });
      if (options.augment?.shift) shiftImages(x, rows, net.inputDims!, options.augment.shift, augmentRandom);
      const { logits, cache } = net.forward(x, rows);
      const { loss, grad } = lossFn(logits, { rows, indices, labels: y });
      if (!Number.isFinite(loss))
        throw new EdgeOptError('E_VALUE', `train: the loss became ${loss} at epoch ${epoch}, step ${step} (lower the learning rate)`);
      const grads = net.backward(cache, grad);
      if (options.controlVariate) correctDrift(grads, options.controlVariate, steps);
      if (options.proximal) addProximal(net, grads, options.proximal);
      optimizer.step(net.params, grads);
      net.applyMasks();
      lossSum += loss * rows;
      for (let r = 0; r < rows; r++) if (argmax(logits, r * classes, classes) === y[r]) correct++;
      options.onStep?.({ epoch, step, steps, loss });
      step++;
      yield;
    }
    const stats = { epoch, loss: lossSum / n, accuracy: correct / n };
    history.push(stats);
    options.onEpoch?.(stats);
  }
  return history;
}

function addProximal(net: Network, grads: Float32Array[], prox: { mu: number; anchor: Float32Array[] }): void {
  net.params.forEach((p, k) => {
    const a = prox.anchor[k];
    const g = grads[k];
    for (let i = 0; i < g.length; i++) g[i] += prox.mu * (p.data[i] - a[i]);
  });
}

/** Accumulates the loss gradients into the run's mean, then adds the offset. */
function correctDrift(grads: Float32Array[], cv: { offset: Float32Array[]; meanGradient: Float32Array[] }, steps: number): void {
  grads.forEach((g, k) => {
    const o = cv.offset[k];
    const m = cv.meanGradient[k];
    for (let i = 0; i < g.length; i++) {
      m[i] += g[i] / steps;
      g[i] += o[i];
    }
  });
}

function argmax(x: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (x[offset + j] > x[offset + best]) best = j;
  return best;
}

/** Trains a copy of `model` (blocking); the input graph is not modified. */
export function train(model: Graph, data: Dataset, options: TrainOptions): TrainResult {
  const net = Network.fromGraph(model);
  const it = trainSteps(net, data, options);
  let r = it.next();
  while (!r.done) r = it.next();
  return { model: net.toGraph(), history: r.value };
}

/** Like `train`, but yields to the event loop between batches. */
export async function trainAsync(model: Graph, data: Dataset, options: TrainOptions & { signal?: AbortSignal }): Promise<TrainResult> {
  const net = Network.fromGraph(model);
  const history = await runSteps(trainSteps(net, data, options), options.signal);
  return { model: net.toGraph(), history };
}

/** Drives a step generator, yielding to the event loop between steps; stops with E_STATE when aborted. */
export async function runSteps<T>(it: Generator<void, T>, signal?: AbortSignal): Promise<T> {
  for (;;) {
    if (signal?.aborted) throw new EdgeOptError('E_STATE', 'training was aborted');
    const r = it.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
