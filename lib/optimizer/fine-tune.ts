/**
 * Fine-tuning for the prune pass: train the pruned model on labelled data with
 * its masks fixed ('one-shot'), or prune gradually while training on the
 * polynomial schedule ('polynomial', Zhu & Gupta) so the network adapts as
 * weights go; either way pruned weights stay exactly zero.
 *
 * CNNs get more by default, because a few epochs on a folded-BatchNorm model
 * recover too little: BatchNorm re-inserted after every Conv (refit-batch-norm.ts)
 * and the unpruned model as a distillation teacher, Adam with a cosine schedule.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';
import { Network } from '../train/network';
import { trainSteps } from '../train/trainer';
import { polynomialSparsity } from './schedule';
import type { LrSchedule } from '../train/schedule';
import type { Augmentation } from '../train/augment';
import { distillationLossFn } from './distill';
import { keptChannelsOf } from './prune-filters';
import { foldRefitBatchNorms, insertRefitBatchNorms } from './refit-batch-norm';

export interface FineTuneOptions {
  data: Dataset;
  epochs: number;
  /** Learning rate, default 0.01 (SGD) or 0.001 (Adam). */
  lr?: number;
  /** Default 'sgd' (momentum 0.9) for Dense chains, 'adam' for CNNs. */
  optimizer?: 'sgd' | 'adam';
  weightDecay?: number;
  /** Learning-rate schedule over the fine-tuning run (default: constant for Dense chains, cosine for CNNs). */
  lrSchedule?: LrSchedule;
  /** Seeded random shifts of image inputs. */
  augment?: Augmentation;
  batchSize?: number;
  seed?: number;
  /** Default 'polynomial' where the prune mode allows (unstructured, global), else 'one-shot'. */
  schedule?: 'polynomial' | 'one-shot';
  /** Fraction of the training steps over which sparsity ramps up (polynomial), default 0.5. */
  rampFraction?: number;
  /** Mask updates during the ramp (polynomial), default 20. */
  pruneEvents?: number;
  /**
   * Models with Conv layers: a BatchNormalization after every Conv during fine-tuning, its
   * statistics refitted to the pruned model and its scale and shift to the unpruned one, folded
   * back at the end (default true for CNNs; ignored for Dense chains).
   */
  refitBatchNorm?: boolean;
  /**
   * Distil from the unpruned model while fine-tuning (distill.ts's loss); false: labels only.
   * Default for CNNs { temperature: 4, alpha: 0.5 }; for Dense chains false.
   */
  distill?: false | { temperature?: number; alpha?: number };
}

/** What a CNN gets when the caller leaves an option out. */
const CNN_DEFAULTS = { optimizer: 'adam', lrSchedule: { kind: 'cosine' }, distill: { temperature: 4, alpha: 0.5 } } as const;

/** `pruneTo(graph, s)` prunes to sparsity s (masks ANDed with earlier ones). */
export function fineTunePruned(
  graph: Graph,
  pruneTo: (g: Graph, sparsity: number) => Graph,
  sparsity: number,
  o: FineTuneOptions,
  gradualOk: boolean,
): Graph {
  if (!o?.data?.labels) throw new EdgeOptError('E_ARGUMENT', 'prune: fineTune.data must be a labelled Dataset');
  const schedule = o.schedule ?? (gradualOk ? 'polynomial' : 'one-shot');
  if (schedule === 'polynomial' && !gradualOk)
    throw new EdgeOptError('E_ARGUMENT', "prune: the polynomial schedule needs mode 'unstructured' or 'global'");
  if (schedule !== 'polynomial' && schedule !== 'one-shot')
    throw new EdgeOptError('E_ARGUMENT', `prune: fineTune.schedule must be 'polynomial' or 'one-shot', got '${String(schedule)}'`);
  const cnn = graph.nodes.some((n) => n.op === 'Conv');
  const optimizer = o.optimizer ?? (cnn ? CNN_DEFAULTS.optimizer : 'sgd');
  const distill = o.distill ?? (cnn ? CNN_DEFAULTS.distill : false);
  const pruned = schedule === 'one-shot' ? pruneTo(graph, sparsity) : graph;
  const refit = cnn && (o.refitBatchNorm ?? true) ? insertRefitBatchNorms(pruned, graph, o.data, keptChannelsOf(pruned)) : undefined;
  const net = Network.fromGraph(refit?.graph ?? pruned);
  const batchSize = o.batchSize ?? 32;
  const steps = Math.ceil(o.data.shape[0] / batchSize) * o.epochs;
  const endStep = Math.max(1, Math.floor(steps * (o.rampFraction ?? 0.5)));
  const every = Math.max(1, Math.floor(endStep / (o.pruneEvents ?? 20)));
  const it = trainSteps(net, o.data, {
    epochs: o.epochs,
    batchSize,
    lr: o.lr ?? (optimizer === 'adam' ? 0.001 : 0.01),
    optimizer,
    weightDecay: o.weightDecay,
    schedule: o.lrSchedule ?? (cnn ? CNN_DEFAULTS.lrSchedule : undefined),
    augment: o.augment,
    seed: o.seed,
    loss: distill ? distillationLossFn(graph, o.data, distill.temperature ?? 4, distill.alpha ?? 0.5) : undefined,
    beforeStep: ({ step }) => {
      if (schedule === 'one-shot' || step > endStep || (step % every !== 0 && step !== endStep)) return;
      adoptMasks(net, pruneTo(net.toGraph(), polynomialSparsity(step + every, { finalSparsity: sparsity, beginStep: 0, endStep })));
    },
  });
  while (!it.next().done);
  // A run too short to reach the end of the ramp still ends at the target sparsity.
  const tuned = schedule === 'polynomial' ? pruneTo(net.toGraph(), sparsity) : net.toGraph();
  return refit ? foldRefitBatchNorms(tuned, refit.inserted) : tuned;
}

function adoptMasks(net: Network, pruned: Graph): void {
  for (const p of net.params) {
    const t = pruned.tensors[p.name];
    if (!t.mask) continue;
    p.mask = t.mask;
    p.data.set(t.data as Float32Array);
  }
}
