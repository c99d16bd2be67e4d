/**
 * Magnitude pruning of Dense and Conv weights; every mode records a keep-mask
 * so later passes and fine-tuning keep pruned weights at zero.
 *
 * - unstructured: per layer (Dense and Conv), exactly round(n * sparsity) smallest |w| (ties: lower index)
 * - global:       one ranking over all Dense and Conv weights (PyTorch's global_unstructured)
 * - 2:4:          in every 4 consecutive weights along K, the 2 smallest |w| go (N:M sparsity; Dense only)
 * - neurons:      whole hidden units (rows with the smallest L2 norm) are removed, with the
 *                 matching inputs of the next layer, so the model is physically smaller (Dense only)
 * - filters:      whole output channels of Conv (and units of Dense) by L1/L2 norm, with every slice
 *                 that carries them; tied channels (residual Add, depthwise, BN) go together (prune-filters.ts)
 */
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import { cloneGraph, denseWeight, validateGraph, type Graph, type GraphNode, type Tensor } from '../model/graph';
import { fineTunePruned, type FineTuneOptions } from './fine-tune';
import { pruneFilters, rememberKeptChannels, type FilterNorm } from './prune-filters';
import { prunedCount } from './pruned-count';

export { prunedCount };
import { selectLayers } from './select-layers';
import type { Pass } from './pass';

export type PruneMode = 'unstructured' | 'global' | '2:4' | 'neurons' | 'filters';
export const PRUNE_MODES: readonly PruneMode[] = ['unstructured', 'global', '2:4', 'neurons', 'filters'];

export interface PruneOptions {
  /** Fraction of weights (or, for 'neurons' and 'filters', of units/channels) to remove; ignored for '2:4'. */
  sparsity?: number;
  mode?: PruneMode;
  /** 'filters': rank channels by the L1 (default, Li et al.) or L2 norm of their filters. */
  norm?: FilterNorm;
  /** Train after (or, on the polynomial schedule, while) pruning; see fine-tune.ts. */
  fineTune?: FineTuneOptions;
  /** Prune only these Dense nodes (default: all; 'global' ranks across them); the budget search sets a sparsity per layer this way. */
  layers?: readonly string[];
}

function denseNodes(g: Graph, layers?: readonly string[]): GraphNode[] {
  for (const node of selectLayers(g, layers, 'prune')) {
    if (node.op === 'QDense')
      throw new EdgeOptError('E_ARGUMENT', `prune: node '${node.name}' is already quantized; prune before quantizing`);
  }
  return selectLayers(g, layers, 'prune').filter((n) => n.op === 'Dense');
}

/** Applies a keep-mask (ANDed with any earlier mask) to a weight tensor. */
function masked(w: Tensor, keep: Uint8Array): Tensor {
  if (w.mask) for (let i = 0; i < keep.length; i++) keep[i] &= w.mask[i];
  const data = (w.data as Float32Array).map((v, i) => (keep[i] ? v : 0));
  return { ...w, data, mask: keep };
}

/** The weight tensors magnitude pruning ranks: every (selected) Dense and Conv weight. */
function prunableWeights(g: Graph, layers?: readonly string[]): Array<Tensor & { data: Float32Array }> {
  const convs = selectLayers(g, layers, 'prune').filter((n) => n.op === 'Conv');
  return [...denseNodes(g, layers), ...convs].map((n) => g.tensors[n.inputs[1]] as Tensor & { data: Float32Array });
}

function pruneUnstructured(g: Graph, sparsity: number, layers?: readonly string[]): void {
  for (const w of prunableWeights(g, layers)) {
    const { keep } = kernels().pruneMask(w.data, prunedCount(w.data.length, sparsity));
    g.tensors[w.name] = masked(w, keep);
  }
}

function pruneGlobal(g: Graph, sparsity: number, layers?: readonly string[]): void {
  const weights = prunableWeights(g, layers);
  const all = new Float32Array(weights.reduce((s, w) => s + w.data.length, 0));
  let o = 0;
  for (const w of weights) {
    all.set(w.data as Float32Array, o);
    o += w.data.length;
  }
  const { keep } = kernels().pruneMask(all, prunedCount(all.length, sparsity));
  o = 0;
  for (const w of weights) {
    g.tensors[w.name] = masked(w, keep.slice(o, o + w.data.length));
    o += w.data.length;
  }
}

/** Keeps the N largest |w| of every M consecutive weights along K (a tail shorter than M keeps min(N, len)). */
function pruneNM(g: Graph, n: number, m: number, layers?: readonly string[]): void {
  for (const node of denseNodes(g, layers)) {
    const w = denseWeight(g, node);
    const [rows, k] = w.shape as number[];
    const data = w.data as Float32Array;
    const keep = new Uint8Array(data.length);
    for (let r = 0; r < rows; r++) {
      for (let start = 0; start < k; start += m) {
        const idx = [];
        for (let i = start; i < Math.min(start + m, k); i++) idx.push(r * k + i);
        idx.sort((a, b) => Math.abs(data[b]) - Math.abs(data[a]) || a - b); // largest first, ties: lower index kept
        for (const i of idx.slice(0, n)) keep[i] = 1;
      }
    }
    g.tensors[w.name] = masked(w, keep);
  }
}

/** Removes round(units * sparsity) hidden units of every Dense layer that feeds another Dense layer. */
function pruneNeurons(g: Graph, sparsity: number, layers?: readonly string[]): void {
  const nodes = denseNodes(g, layers);
  const order = g.nodes;
  for (const node of nodes) {
    const next = nextDense(order, node);
    if (!next) continue; // the model's outputs keep their size
    const w = denseWeight(g, node);
    const [units, k] = w.shape as number[];
    const drop = prunedCount(units, sparsity);
    if (drop === 0) continue;
    if (drop >= units) throw new EdgeOptError('E_ARGUMENT', `prune: removing ${drop} of ${units} units of '${node.name}' leaves none`);
    const data = w.data as Float32Array;
    const norms = new Float32Array(units);
    for (let r = 0; r < units; r++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += data[r * k + i] * data[r * k + i];
      norms[r] = Math.sqrt(s);
    }
    const { keep } = kernels().pruneMask(norms, drop);
    const kept = [...keep.keys()].filter((r) => keep[r]);
    g.tensors[w.name] = selectRows(w, kept, k);
    const biasName = node.inputs[2];
    if (biasName) {
      const b = g.tensors[biasName];
      g.tensors[biasName] = { ...b, shape: [kept.length], data: Float32Array.from(kept, (r) => (b.data as Float32Array)[r]) };
    }
    const nw = denseWeight(g, next);
    g.tensors[nw.name] = selectColumns(nw, kept);
  }
}

/** The Dense node reading this node's output through only element-wise nodes (Relu), if any. */
function nextDense(order: GraphNode[], node: GraphNode): GraphNode | undefined {
  let out = node.outputs[0];
  for (const n of order) {
    if (n.inputs[0] !== out) continue;
    if (n.op === 'Dense') return n;
    if (n.op !== 'Relu') return undefined;
    out = n.outputs[0];
  }
  return undefined;
}

function selectRows(w: Tensor, rows: number[], k: number): Tensor {
  const src = w.data as Float32Array;
  const data = new Float32Array(rows.length * k);
  rows.forEach((r, i) => data.set(src.subarray(r * k, (r + 1) * k), i * k));
  const mask = w.mask ? new Uint8Array(rows.length * k) : undefined;
  if (mask) rows.forEach((r, i) => mask.set(w.mask!.subarray(r * k, (r + 1) * k), i * k));
  return { ...w, shape: [rows.length, k], data, mask };
}

function selectColumns(w: Tensor, cols: number[]): Tensor {
  const [rows, k] = w.shape as number[];
  const src = w.data as Float32Array;
  const data = new Float32Array(rows * cols.length);
  const mask = w.mask ? new Uint8Array(rows * cols.length) : undefined;
  for (let r = 0; r < rows; r++) {
    cols.forEach((c, j) => {
      data[r * cols.length + j] = src[r * k + c];
      if (mask) mask[r * cols.length + j] = w.mask![r * k + c];
    });
  }
  return { ...w, shape: [rows, cols.length], data, mask };
}

export function pruneGraph(graph: Graph, options: PruneOptions): Graph {
  const mode = options.mode ?? 'unstructured';
  if (!PRUNE_MODES.includes(mode))
    throw new EdgeOptError('E_ARGUMENT', `prune: mode must be one of ${PRUNE_MODES.join(', ')}, got '${String(mode)}'`);
  const sparsity = mode === '2:4' ? 0.5 : options.sparsity;
  if (typeof sparsity !== 'number' || !(sparsity >= 0 && sparsity < 1)) {
    throw new EdgeOptError('E_ARGUMENT', `prune: sparsity must be in [0, 1), got ${String(sparsity)}`);
  }
  if (options.fineTune) {
    const once = (g: Graph, s: number) => pruneGraph(g, { ...options, sparsity: s, fineTune: undefined });
    return fineTunePruned(graph, once, sparsity, options.fineTune, mode === 'unstructured' || mode === 'global');
  }
  const g = cloneGraph(graph);
  const conv = g.nodes.find((n) => n.op === 'Conv');
  if (conv && (mode === '2:4' || mode === 'neurons'))
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `prune: mode '${mode}' handles Dense layers only; model '${g.name}' has Conv layers (node '${conv.name}'); use 'unstructured', 'global' or 'filters'`,
    );
  const { layers } = options;
  if (options.norm !== undefined && mode !== 'filters')
    throw new EdgeOptError('E_ARGUMENT', `prune: norm applies to mode 'filters', not '${mode}'`);
  let kept: Map<string, number[]> | undefined;
  if (mode === 'filters') {
    denseNodes(g, layers); // refuses quantized layers
    const quantized = g.nodes.find((n) => n.inputs.some((name) => g.tensors[name]?.quant));
    if (quantized) throw new EdgeOptError('E_ARGUMENT', `prune: node '${quantized.name}' is already quantized; prune before quantizing`);
    kept = pruneFilters(g, { sparsity, norm: options.norm ?? 'l1', layers }).kept;
  } else if (mode === 'unstructured') pruneUnstructured(g, sparsity, layers);
  else if (mode === 'global') pruneGlobal(g, sparsity, layers);
  else if (mode === '2:4') pruneNM(g, 2, 4, layers);
  else pruneNeurons(g, sparsity, layers);
  g.metadata.pruning =
    mode === '2:4'
      ? '2:4 along K'
      : mode === 'filters'
        ? `filters by ${options.norm ?? 'l1'} norm, sparsity ${sparsity}`
        : `${mode} magnitude, sparsity ${sparsity}`;
  return kept ? rememberKeptChannels(validateGraph(g), kept) : g;
}

export function prune(options: PruneOptions): Pass {
  return (graph) => pruneGraph(graph, options);
}
