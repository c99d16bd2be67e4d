/**
 * Observers of activation ranges for static int8 quantization: the float
 * model runs on calibration rows (in chunks, so memory stays bounded) with
 * every activation tensor of its DAG as an output, and each tensor's range
 * [lo, hi] (always holding 0, so zero is exact on the int8 grid) comes from
 *  - 'minmax': the smallest and largest value seen;
 *  - { percentile: p }: the (100 - p)th and pth percentiles of a 2048-bin histogram over [min, max];
 *  - 'entropy': the clipping threshold T of a 2048-bin histogram of |x| that minimizes the
 *    KL divergence between the clipped distribution and its 128-level quantization
 *    (TensorRT's calibrator, also onnxruntime's), giving [max(min, -T), min(max, T)]; the
 *    first bin (the zero spike of ReLU outputs and image backgrounds, exact on any grid)
 *    is left out of the divergence.
 */
import { modelRows, type Dataset } from '../data/dataset';
import { EdgeInferenceEngine } from '../engine/engine';
import { EdgeOptError } from '../errors';
import { cloneGraph, type Graph } from '../model/graph';

export type Observer = 'minmax' | 'entropy' | { percentile: number };

export interface TensorRange {
  lo: number;
  hi: number;
}

const BINS = 2048;
const LEVELS = 128;
/** Calibration rows per engine call. */
const CHUNK = 32;

export function parseObserver(o: unknown): Observer {
  if (o === undefined || o === 'minmax' || o === 'entropy') return o ?? 'minmax';
  const p = typeof o === 'string' && o.startsWith('percentile:') ? Number(o.slice(11)) : (o as { percentile?: unknown })?.percentile;
  if (typeof p === 'number' && p > 50 && p <= 100) return { percentile: p };
  throw new EdgeOptError(
    'E_ARGUMENT',
    `calibration observer must be 'minmax', 'entropy' or { percentile: p } with 50 < p <= 100, got ${JSON.stringify(o)}`,
  );
}

/** Runs the float model over `data` in chunks and hands every activation tensor's values to `visit`. */
function forEachActivation(graph: Graph, data: Dataset, visit: (name: string, values: Float32Array) => void): void {
  if (graph.inputs.length !== 1)
    throw new EdgeOptError('E_ARGUMENT', `calibration takes one-input models; '${graph.name}' has ${graph.inputs.length}`);
  const input = graph.inputs[0];
  const rows = modelRows(data, graph);
  const count = data.shape[0];
  const perRow = rows.length / count;
  const names = [...new Set(graph.nodes.flatMap((n) => n.outputs))];
  const all: Graph = { ...cloneGraph(graph), outputs: names };
  const engine = new EdgeInferenceEngine();
  try {
    engine.loadModelSync('calibration', all);
    const shape = input.shape.slice(1) as number[];
    for (let first = 0; first < count; first += CHUNK) {
      const n = Math.min(CHUNK, count - first);
      const x = rows.subarray(first * perRow, (first + n) * perRow);
      visit(input.name, x);
      const outs = engine.runModelSync('calibration', { [input.name]: { data: x, shape: [n, ...shape] } });
      for (const name of names) visit(name, outs[name].data);
    }
  } finally {
    engine.dispose();
  }
}

/** The range of every activation tensor (the model input and every node output) of `graph`, observed on `data`. */
export function observeTensors(graph: Graph, data: Dataset, observer: Observer = 'minmax'): Map<string, TensorRange> {
  if (!data?.data?.length || !data.shape?.[0]) throw new EdgeOptError('E_ARGUMENT', 'calibration needs a non-empty dataset');
  const ob = parseObserver(observer);
  const ranges = new Map<string, TensorRange>();
  forEachActivation(graph, data, (name, values) => {
    const r = ranges.get(name) ?? { lo: 0, hi: 0 };
    for (const v of values) {
      if (v < r.lo) r.lo = v;
      if (r.hi < v) r.hi = v;
    }
    ranges.set(name, r);
  });
  if (ob === 'minmax') return ranges;
  // Second pass: a histogram per tensor over the range just found.
  const symmetric = ob === 'entropy';
  const hists = new Map<string, Float64Array>();
  const top = (r: TensorRange) => (symmetric ? Math.max(-r.lo, r.hi) : r.hi - r.lo);
  forEachActivation(graph, data, (name, values) => {
    const r = ranges.get(name)!;
    const width = top(r) / BINS;
    if (!(width > 0)) return;
    let h = hists.get(name);
    if (!h) hists.set(name, (h = new Float64Array(BINS)));
    for (const v of values) {
      const at = symmetric ? Math.abs(v) : v - r.lo;
      h[Math.min(BINS - 1, Math.floor(at / width))]++;
    }
  });
  for (const [name, h] of hists) {
    const r = ranges.get(name)!;
    const width = top(r) / BINS;
    if (symmetric) {
      const t = entropyThreshold(h) * width;
      ranges.set(name, { lo: Math.max(r.lo, -t), hi: Math.min(r.hi, t) });
    } else {
      const p = (ob as { percentile: number }).percentile;
      ranges.set(name, {
        lo: Math.min(0, r.lo + quantileBin(h, 100 - p) * width),
        hi: Math.max(0, r.lo + (quantileBin(h, p) + 1) * width),
      });
    }
  }
  return ranges;
}

/** The bin holding the q-th percentile of histogram h. */
function quantileBin(h: Float64Array, q: number): number {
  const total = h.reduce((a, b) => a + b, 0);
  const want = (q / 100) * total;
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i];
    if (seen >= want) return i;
  }
  return h.length - 1;
}

/**
 * TensorRT's entropy calibration on a histogram of |x|: the number of bins i (LEVELS..BINS)
 * whose clipped distribution P (outliers folded into bin i - 1) is closest in KL divergence to
 * Q, P's quantization to LEVELS levels (each level's mass spread over its non-empty bins).
 */
export function entropyThreshold(histogram: Float64Array): number {
  // Values in the first bin (exact zeros after a ReLU, the background of an image) land on the grid's
  // exact zero whatever the threshold: their spike would only push the search to the narrowest range.
  const h = Float64Array.from(histogram);
  h[0] = 0;
  let best = h.length;
  let bestKl = Infinity;
  let tail = 0;
  for (let i = h.length; i >= LEVELS; i--) {
    // tail = sum of h[i..]
    if (i < h.length) tail += h[i];
    const p = Float64Array.from(h.subarray(0, i));
    p[i - 1] += tail;
    const q = new Float64Array(i);
    const per = i / LEVELS;
    for (let level = 0; level < LEVELS; level++) {
      const from = Math.floor(level * per);
      const to = level === LEVELS - 1 ? i : Math.floor((level + 1) * per);
      let mass = 0;
      let nonEmpty = 0;
      for (let j = from; j < to; j++) {
        mass += h[j];
        if (h[j] > 0) nonEmpty++;
      }
      if (nonEmpty) for (let j = from; j < to; j++) if (h[j] > 0) q[j] = mass / nonEmpty;
    }
    const kl = divergence(p, q);
    if (kl <= bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}

function divergence(p: Float64Array, q: Float64Array): number {
  const sp = p.reduce((a, b) => a + b, 0);
  const sq = q.reduce((a, b) => a + b, 0);
  if (!sp || !sq) return Infinity;
  let kl = 0;
  for (let j = 0; j < p.length; j++) {
    if (p[j] === 0) continue;
    const pj = p[j] / sp;
    const qj = q[j] > 0 ? q[j] / sq : 1e-12;
    kl += pj * Math.log(pj / qj);
  }
  return kl;
}
