/**
 * Aggregation that a minority of poisoned updates cannot steer.
 *
 * Plain FedAvg lets one client move the model as far as it likes: claim
 * numSamples = 2^53 - 1, or send a delta just under the norm bound, and its
 * update is the new model. Two bounds, both relative to the round's median
 * (which honest clients set as long as they are the majority), take that away
 * while leaving a round of similar honest clients untouched:
 *   - norm clipping: each delta is scaled down to at most normClip × the median
 *     update norm (Sun et al. 2019, "Can you really backdoor federated learning?");
 *   - weight capping: a client's FedAvg weight is min(numSamples, sampleWeightCap ×
 *     the median numSamples), so no client counts for more than a few typical ones.
 * For few clients, or when a larger share may be hostile, a coordinate-wise
 * median or trimmed mean (Yin et al. 2018) replaces the weighted mean.
 */
import { EdgeOptError } from '../errors';
import { l2Norm } from '../train/linalg';
import { fedAvg, type ClientUpdate, type DpOptions } from './aggregate';
import type { ParamSpec, Tensors } from './params';

/** fedavg: weighted by numSamples. median / trimmed-mean: per coordinate, unweighted; `trim` is cut from each end. */
export type Aggregator = { kind: 'fedavg' } | { kind: 'median' } | { kind: 'trimmed-mean'; trim: number };

/** 'fedavg' | 'median' | 'trimmed-mean:<fraction in (0, 0.5)>' */
export function parseAggregator(spec: string): Aggregator {
  if (spec === 'fedavg' || spec === 'median') return { kind: spec };
  const m = /^trimmed-mean:([0-9.]+)$/.exec(spec);
  const trim = m ? Number(m[1]) : NaN;
  if (trim > 0 && trim < 0.5) return { kind: 'trimmed-mean', trim };
  throw new EdgeOptError('E_ARGUMENT', `aggregator must be 'fedavg', 'median' or 'trimmed-mean:<fraction in (0, 0.5)>', got '${spec}'`);
}

export interface RobustOptions {
  aggregator: Aggregator;
  /** Deltas are scaled down to at most this many times the round's median norm; 0: off. */
  normClip: number;
  /** Weights are capped at this many times the round's median numSamples; Infinity: off. */
  sampleWeightCap: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The updates with each delta clipped to normClip × the median norm and each weight capped. */
export function boundInfluence(updates: ClientUpdate[], normClip: number, sampleWeightCap: number): ClientUpdate[] {
  const norms = updates.map((u) => l2Norm(Object.values(u.delta)));
  const maxNorm = normClip > 0 ? normClip * median(norms) : Infinity;
  const maxWeight = sampleWeightCap * median(updates.map((u) => u.numSamples));
  return updates.map((u, i) => {
    const f = norms[i] > maxNorm ? maxNorm / norms[i] : 1;
    return {
      ...u,
      numSamples: Math.min(u.numSamples, maxWeight),
      delta: f === 1 ? u.delta : Object.fromEntries(Object.entries(u.delta).map(([k, d]) => [k, d.map((v) => v * f)])),
    };
  });
}

/**
 * global + the per-coordinate mean of the deltas after dropping the `cut` smallest
 * and largest (cut = ceil(K / 2) - 1 is the median); masked entries stay zero.
 */
function trimmedMean(global: Tensors, specs: ParamSpec[], updates: ClientUpdate[], cut: number): Tensors {
  const k = updates.length;
  const column = new Float64Array(k);
  const kept = k - 2 * cut;
  const next: Tensors = {};
  for (const s of specs) {
    const deltas = updates.map((u) => u.delta[s.name]);
    const w = global[s.name];
    const out = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      if (s.mask && !s.mask[i]) continue;
      for (let j = 0; j < k; j++) column[j] = deltas[j][i];
      column.sort();
      let sum = 0;
      for (let j = cut; j < k - cut; j++) sum += column[j];
      out[i] = w[i] + sum / kept;
    }
    next[s.name] = out;
  }
  return next;
}

/** The new global weights: influence bounded, then FedAvg (with optional DP) or a coordinate-wise robust mean. */
export function aggregate(
  global: Tensors,
  specs: ParamSpec[],
  updates: ClientUpdate[],
  options: RobustOptions & { dp?: DpOptions; random?: () => number },
): Tensors {
  if (!updates.length) throw new EdgeOptError('E_STATE', 'aggregation needs at least one update');
  const bounded = boundInfluence(updates, options.normClip, options.sampleWeightCap);
  const a = options.aggregator;
  if (a.kind === 'fedavg') return fedAvg(global, specs, bounded, options.dp, options.random);
  const k = bounded.length;
  const cut = a.kind === 'median' ? Math.ceil(k / 2) - 1 : Math.min(Math.floor(a.trim * k), Math.ceil(k / 2) - 1);
  return trimmedMean(global, specs, bounded, cut);
}
