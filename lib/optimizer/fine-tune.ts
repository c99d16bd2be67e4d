/**
 * Fine-tuning for the prune pass: train the pruned model on labelled data with
 * its masks fixed ('one-shot'), or prune gradually while training on the
 * polynomial schedule ('polynomial', Zhu & Gupta) so the network adapts as
 * weights go; either way pruned weights stay exactly zero.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';
import { Network } from '../train/network';
import { trainSteps } from '../train/trainer';
import { polynomialSparsity } from './schedule';
import type { LrSchedule } from '../train/schedule';
import type { Augmentation } from '../train/augment';

export interface FineTuneOptions {
  data: Dataset;
  epochs: number;
  /** Learning rate, default 0.01 (SGD) or 0.001 (Adam). */
  lr?: number;
  /** Default 'sgd' (momentum 0.9). */
  optimizer?: 'sgd' | 'adam';
  weightDecay?: number;
  /** Learning-rate schedule over the fine-tuning run. */
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
}

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
  const start = schedule === 'one-shot' ? pruneTo(graph, sparsity) : graph;
  const net = Network.fromGraph(start);
  const batchSize = o.batchSize ?? 32;
  const steps = Math.ceil(o.data.shape[0] / batchSize) * o.epochs;
  const endStep = Math.max(1, Math.floor(steps * (o.rampFraction ?? 0.5)));
  const every = Math.max(1, Math.floor(endStep / (o.pruneEvents ?? 20)));
  const it = trainSteps(net, o.data, {
    epochs: o.epochs,
    batchSize,
    lr: o.lr ?? (o.optimizer === 'adam' ? 0.001 : 0.01),
    optimizer: o.optimizer,
    weightDecay: o.weightDecay,
    schedule: o.lrSchedule,
    augment: o.augment,
    seed: o.seed,
    beforeStep: ({ step }) => {
      if (schedule === 'one-shot' || step > endStep || (step % every !== 0 && step !== endStep)) return;
      adoptMasks(net, pruneTo(net.toGraph(), polynomialSparsity(step + every, { finalSparsity: sparsity, beginStep: 0, endStep })));
    },
  });
  while (!it.next().done);
  // A run too short to reach the end of the ramp still ends at the target sparsity.
  return schedule === 'polynomial' ? pruneTo(net.toGraph(), sparsity) : net.toGraph();
}

function adoptMasks(net: Network, pruned: Graph): void {
  for (const p of net.params) {
    const t = pruned.tensors[p.name];
    if (!t.mask) continue;
    p.mask = t.mask;
    p.data.set(t.data as Float32Array);
  }
}
