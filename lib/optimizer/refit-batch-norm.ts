/**
 * BatchNorm for fine-tuning a CNN whose BatchNorm was folded away (any imported model): before
 * training, a BatchNormalization goes after every Conv; after training, it folds back into that
 * Conv's own weight and bias tensors (names and pruning masks kept), so the result has the shape
 * of the input model.
 *
 * Why: pruning shifts every channel's output distribution, and the layers after it were trained
 * on the old one. The inserted BN normalizes with the pruned model's statistics and restores the
 * unpruned (reference) model's per-channel mean and standard deviation, which alone recovers much
 * of the loss (Li et al., EagleEye's adaptive BN, 2020); during fine-tuning it trains with batch
 * statistics, which conditions the optimization as in the original training.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { cloneGraph, type Graph, type GraphNode } from '../model/graph';
import { GraphNetwork } from '../train/graph-network';

const EPSILON = 1e-5;
/** Rows the statistics are measured on (a few hundred images give stable per-channel moments). */
const STATISTICS_ROWS = 512;
/** Rows of the one training-mode batch that sets the inserted BNs' running statistics. */
const REFIT_ROWS = 256;
const BATCH = 128;

interface ChannelStats {
  mean: Float64Array;
  variance: Float64Array;
}

/** Per-channel mean and (biased) variance over (N, H, W) of the named activation tensors, inference mode. */
export function channelStatistics(graph: Graph, data: Dataset, names: string[], rows = STATISTICS_ROWS): Map<string, ChannelStats> {
  const n = Math.min(rows, data.shape[0]);
  if (!(n > 0)) throw new EdgeOptError('E_ARGUMENT', 'fine-tune: the BatchNorm statistics need at least one data row');
  const net = new GraphNetwork(graph);
  const size = data.data.length / data.shape[0];
  const sums = new Map<string, { s: Float64Array; ss: Float64Array; count: number }>();
  for (let from = 0; from < n; from += BATCH) {
    const b = Math.min(BATCH, n - from);
    const { cache } = net.forward(data.data.subarray(from * size, (from + b) * size), b, false);
    for (const name of names) {
      const v = net.valueOf(cache, name);
      const c = channelsOf(graph, name);
      const per = v.length / (b * c);
      let acc = sums.get(name);
      if (!acc) sums.set(name, (acc = { s: new Float64Array(c), ss: new Float64Array(c), count: 0 }));
      addMoments(v, b, c, acc.s, acc.ss);
      acc.count += b * per;
    }
  }
  const out = new Map<string, ChannelStats>();
  for (const [name, { s, ss, count }] of sums) {
    const mean = s.map((x) => x / count);
    out.set(name, { mean, variance: ss.map((x, ch) => Math.max(0, x / count - mean[ch] * mean[ch])) });
  }
  return out;
}

/** Adds each channel's sum and sum of squares over (N, H, W) of an NCHW batch `v` to `s` and `ss`. */
function addMoments(v: Float32Array, rows: number, c: number, s: Float64Array, ss: Float64Array): void {
  const per = v.length / (rows * c);
  for (let r = 0; r < rows; r++)
    for (let ch = 0; ch < c; ch++)
      for (let i = (r * c + ch) * per, e = i + per; i < e; i++) {
        s[ch] += v[i];
        ss[ch] += v[i] * v[i];
      }
}

/** Output channels of the Conv that writes `name`. */
function channelsOf(graph: Graph, name: string): number {
  const conv = graph.nodes.find((n) => n.outputs[0] === name)!;
  return graph.tensors[conv.inputs[1]].shape[0] as number;
}

/** The Convs a BatchNormalization is not already reading. */
function bareConvs(graph: Graph): GraphNode[] {
  const bnInputs = new Set(graph.nodes.filter((n) => n.op === 'BatchNormalization').map((n) => n.inputs[0]));
  return graph.nodes.filter((n) => n.op === 'Conv' && !bnInputs.has(n.outputs[0]));
}

/**
 * `pruned` with a BatchNormalization after every Conv whose channels can be traced to `reference`
 * (same channel count, or `kept` lists the reference channel of each pruned one): scale and shift
 * are that channel's standard deviation and mean in `reference`, so the BN hands the next layer what
 * it was trained on; running statistics are measured in one training-mode pass over `data`, with every
 * BN before already in place (statistics of the bare pruned model would not match once the earlier
 * layers are restored). Returns the graph and the inserted BN nodes (for `foldRefitBatchNorms`).
 */
export function insertRefitBatchNorms(
  pruned: Graph,
  reference: Graph,
  data: Dataset,
  kept?: ReadonlyMap<string, readonly number[]>,
): { graph: Graph; inserted: string[] } {
  const convs = bareConvs(pruned);
  const bare = new Set(convs.map((c) => c.name));
  const refConvs = new Set(bareConvs(reference).map((n) => n.outputs[0]));
  const ref = channelStatistics(
    reference,
    data,
    convs.map((c) => c.outputs[0]).filter((name) => refConvs.has(name)),
  );
  const g = cloneGraph(pruned);
  const inserted: Array<{ bn: string; input: string; mean: string; variance: string }> = [];
  const nodes: GraphNode[] = [];
  for (const node of g.nodes) {
    nodes.push(node);
    const out = node.outputs[0];
    const target = ref.get(out);
    if (node.op !== 'Conv' || !target || !bare.has(node.name)) continue;
    const c = g.tensors[node.inputs[1]].shape[0] as number;
    const channels = target.mean.length === c ? undefined : kept?.get(out);
    if (channels?.length !== c && target.mean.length !== c) continue;
    const from = (ch: number) => channels?.[ch] ?? ch;
    const bn = `${node.name}.refit_bn`;
    const t = (suffix: string, values: (ch: number) => number) => {
      const name = `${bn}.${suffix}`;
      g.tensors[name] = { name, dtype: 'float32', shape: [c], data: Float32Array.from({ length: c }, (_, ch) => values(ch)) };
      return name;
    };
    const pre = `${out}.before_refit_bn`;
    nodes[nodes.length - 1] = { ...node, outputs: [pre] };
    const [mean, variance] = [t('mean', () => 0), t('var', () => 1)];
    const scale = t('scale', (ch) => Math.sqrt(target.variance[from(ch)] + EPSILON));
    const shift = t('bias', (ch) => target.mean[from(ch)]);
    nodes.push({
      name: bn,
      op: 'BatchNormalization',
      inputs: [pre, scale, shift, mean, variance],
      outputs: [out],
      attrs: { epsilon: EPSILON },
    });
    inserted.push({ bn, input: pre, mean, variance });
  }
  g.nodes = nodes;
  // One batch in training mode: each BN normalizes with the statistics of this very pass.
  const rows = Math.min(REFIT_ROWS, data.shape[0]);
  const net = new GraphNetwork(g);
  const { cache } = net.forward(data.data.subarray(0, rows * (data.data.length / data.shape[0])), rows, true);
  for (const { input, mean, variance } of inserted) {
    const v = net.valueOf(cache, input);
    const c = g.tensors[mean].shape[0] as number;
    const per = v.length / (rows * c);
    const [sum, sq] = [new Float64Array(c), new Float64Array(c)];
    addMoments(v, rows, c, sum, sq);
    const m = g.tensors[mean].data as Float32Array;
    const s = g.tensors[variance].data as Float32Array;
    for (let ch = 0; ch < c; ch++) {
      const mu = sum[ch] / (rows * per);
      m[ch] = mu;
      s[ch] = Math.max(0, sq[ch] / (rows * per) - mu * mu);
    }
  }
  return { graph: g, inserted: inserted.map((i) => i.bn) };
}

/** Folds the BN nodes named in `inserted` into the Conv before each, keeping that Conv's tensor names and masks. */
export function foldRefitBatchNorms(graph: Graph, inserted: string[]): Graph {
  const g = cloneGraph(graph);
  const fold = new Set(inserted);
  const nodes: GraphNode[] = [];
  for (const node of g.nodes) {
    if (!fold.has(node.name)) {
      nodes.push(node);
      continue;
    }
    const conv = nodes[nodes.length - 1];
    if (conv?.op !== 'Conv' || conv.outputs[0] !== node.inputs[0])
      throw new EdgeOptError('E_STATE', `fine-tune: BatchNorm '${node.name}' no longer follows its Conv`);
    const [scale, shift, mean, variance] = node.inputs.slice(1).map((name) => g.tensors[name].data as Float32Array);
    const eps = (node.attrs.epsilon as number | undefined) ?? EPSILON;
    const w = g.tensors[conv.inputs[1]];
    const c = scale.length;
    const wData = Float32Array.from(w.data as Float32Array);
    const per = wData.length / c;
    const biasName = conv.inputs[2] ?? `${conv.name}.bias`;
    const oldBias = conv.inputs[2] ? (g.tensors[biasName].data as Float32Array) : new Float32Array(c);
    const bias = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) {
      const k = scale[ch] / Math.sqrt(variance[ch] + eps);
      for (let i = ch * per; i < (ch + 1) * per; i++) wData[i] *= k;
      bias[ch] = (oldBias[ch] - mean[ch]) * k + shift[ch];
    }
    g.tensors[w.name] = { ...w, data: wData };
    g.tensors[biasName] = { name: biasName, dtype: 'float32', shape: [c], data: bias };
    for (const name of node.inputs.slice(1)) delete g.tensors[name];
    nodes[nodes.length - 1] = { ...conv, inputs: [conv.inputs[0], w.name, biasName], outputs: node.outputs };
  }
  g.nodes = nodes;
  return g;
}
