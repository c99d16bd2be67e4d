/**
 * Per-layer settings: what the budget search may do to one layer (weight bits and scale
 * granularity, magnitude or structured pruning), the candidates it tries, and how a chosen
 * set of settings becomes a model. The search itself never looks at ops: every op it can
 * optimize is one entry of LAYER_KINDS. In a CNN (a graph with a Conv) every Conv and Dense
 * node is a CNN_NODE: static int8 or float32 per node, and filter pruning (cnn-layers.ts).
 */
import { EdgeOptError } from '../errors';
import { denseWeight, type Graph, type GraphNode, type OpType } from '../model/graph';
import type { Dataset } from '../data/dataset';
import { applyStaticActivations, applyStaticOutputs, observeActivations } from './calibrate';
import { filterSpaceOf, filterSpaceWith, isCnn, isCnnLayer, quantizeCnnLayers } from './cnn-layers';
import { pruneGraph, type PruneMode } from './prune';
import { quantizeGraph } from './quantize';

export type LayerGranularity = 'channel' | { group: number };

export interface LayerPrune {
  /**
   * 'unstructured': the smallest |w| of this layer; 'neurons': whole output units (and the next
   * layer's inputs); 'filters' (CNNs): whole channels of the channel space this node produces.
   */
  mode: Extract<PruneMode, 'unstructured' | 'neurons' | 'filters'>;
  /** Fraction of weights (unstructured), output units (neurons) or channels (filters) removed. */
  sparsity: number;
}

/** One layer's setting. bits 32 keeps the layer float32. */
export interface LayerSetting {
  bits: number;
  /** Scales per output channel or per group along K; quantized layers only. */
  granularity?: LayerGranularity;
  prune?: LayerPrune;
}

export const FLOAT32: LayerSetting = { bits: 32 };

/** The candidates tried for every layer: the cross product of bits x granularity x (no pruning + each sparsity). */
export interface CandidateSpace {
  bits?: number[];
  granularities?: LayerGranularity[];
  /** Unstructured sparsities. */
  sparsities?: number[];
  /** Structured (whole output unit) sparsities, for layers whose kind has a structured mode and that feed another layer. */
  structured?: number[];
  /** Filter pruning fractions of a channel space (CNNs). */
  filters?: number[];
}

export const DEFAULT_SPACE: Required<CandidateSpace> = {
  bits: [8, 6, 4, 3, 2],
  granularities: ['channel', { group: 32 }, { group: 128 }],
  sparsities: [0.25, 0.5, 0.6, 0.7, 0.8, 0.9],
  structured: [0.125, 0.25, 0.5],
  filters: [0.125, 0.25, 0.5],
};

/** What the search needs to know about an op it may optimize. */
export interface LayerKind {
  ops: readonly OpType[];
  /** Weight shape as [output channels, reduction length K] (group sizes apply along K). */
  weightShape(g: Graph, node: GraphNode): [number, number];
  /** Whether structured pruning may shrink this node's outputs (it must feed another layer of the model). */
  structuredPruning(g: Graph, node: GraphNode): boolean;
  /** What is timed for this node at a setting: the node alone (same weights, one input row shape), or the whole model. */
  isolate(g: Graph, node: GraphNode): Graph;
  /** Settings apply to the whole graph at once and latency is timed on whole models (CNNs: int8 islands interact). */
  wholeModel?: boolean;
}

/** The node that reads `node`'s output, through element-wise Relu nodes. */
function nextLayer(g: Graph, node: GraphNode): GraphNode | undefined {
  let out = node.outputs[0];
  for (const n of g.nodes) {
    if (n.inputs[0] !== out) continue;
    if (n.op !== 'Relu') return n;
    out = n.outputs[0];
  }
  return undefined;
}

const DENSE: LayerKind = {
  ops: ['Dense', 'QDense'],
  weightShape: (g, node) => denseWeight(g, node).shape as [number, number],
  structuredPruning: (g, node) => nextLayer(g, node)?.op === 'Dense',
  isolate(g, node) {
    const w = denseWeight(g, node);
    const bias = node.inputs[2] ? { [node.inputs[2]]: g.tensors[node.inputs[2]] } : {};
    return {
      name: `${g.name}/${node.name}`,
      inputs: [{ name: 'x', shape: [null, w.shape[1]] }],
      outputs: ['y'],
      tensors: { [w.name]: w, ...bias },
      nodes: [{ ...node, inputs: ['x', ...node.inputs.slice(1)], outputs: ['y'] }],
      metadata: {},
    };
  },
};

/** A Conv or Dense node of a CNN (see cnn-layers.ts). */
const CNN_NODE: LayerKind = {
  ops: ['Conv', 'Dense'],
  weightShape(g, node) {
    const w = g.tensors[node.inputs[1]];
    const n = w.shape[0] as number;
    return [n, (w.shape as number[]).reduce((a, b) => a * b, 1) / n];
  },
  structuredPruning: (g, node) => filterSpaceOf(g, node.name) !== undefined,
  isolate: (g) => g,
  wholeModel: true,
};

/** Every op the budget search optimizes (in a graph without Conv). */
export const LAYER_KINDS: readonly LayerKind[] = [DENSE];

export interface OptimizableLayer {
  node: string;
  op: OpType;
  /** [output channels, K] */
  shape: [number, number];
  kind: LayerKind;
  /** The graph's name (whole-model kinds key their timings by it). */
  graph: string;
}

export function optimizableLayers(g: Graph): OptimizableLayer[] {
  const layers: OptimizableLayer[] = [];
  const cnn = isCnn(g);
  for (const node of g.nodes) {
    const kind = cnn ? (isCnnLayer(node) ? CNN_NODE : undefined) : LAYER_KINDS.find((k) => k.ops.includes(node.op));
    const quantized = node.op === 'QDense' || (cnn && node.op === 'Conv' && g.tensors[node.inputs[1]]?.dtype !== 'float32');
    if (quantized || (!cnn && kind && node.op !== 'Dense'))
      throw new EdgeOptError(
        'E_ARGUMENT',
        `layer '${node.name}' is already ${node.op === 'Conv' ? 'an int8 Conv' : node.op}: the budget search starts from a float32 model`,
      );
    if (!kind) continue;
    layers.push({ node: node.name, op: node.op, shape: kind.weightShape(g, node), kind, graph: g.name });
  }
  if (!layers.length) throw new EdgeOptError('E_ARGUMENT', `model '${g.name}' has no layer the budget search can optimize`);
  return layers;
}

function checkSpace(space: Required<CandidateSpace>): void {
  const bad = (what: string, v: unknown): never => {
    throw new EdgeOptError('E_ARGUMENT', `candidates: ${what}, got ${JSON.stringify(v)}`);
  };
  for (const b of space.bits) if (!(Number.isInteger(b) && b >= 2 && b <= 8)) bad('bits must be integers in 2..8', b);
  for (const gr of space.granularities)
    if (gr !== 'channel' && !(Number.isInteger(gr?.group) && gr.group >= 1)) bad("a granularity is 'channel' or { group: n }", gr);
  for (const s of [...space.sparsities, ...space.structured, ...space.filters])
    if (!(s > 0 && s < 1)) bad('sparsities must be in (0, 1)', s);
}

/**
 * The settings tried for one layer, float32 first (when the target allows float layers),
 * in a fixed order. A group as long as K (or longer) is per-channel with half-precision
 * scales, so it is left out for that layer.
 */
export function layerCandidates(
  g: Graph,
  layer: OptimizableLayer,
  space: CandidateSpace = {},
  restrict: { bits?: number; granularity?: LayerGranularity; float?: boolean } = {},
): LayerSetting[] {
  const s = { ...DEFAULT_SPACE, ...space };
  checkSpace(s);
  const node = g.nodes.find((n) => n.name === layer.node)!;
  if (layer.kind.wholeModel) return cnnCandidates(g, node, s, restrict);
  const k = layer.shape[1];
  const bits = restrict.bits ? s.bits.filter((b) => b === restrict.bits) : s.bits;
  const grans = s.granularities.filter(
    (gr) => (gr === 'channel' || gr.group < k) && (!restrict.granularity || granularityKey(gr) === granularityKey(restrict.granularity)),
  );
  const prunes: Array<LayerPrune | undefined> = [
    undefined,
    ...s.sparsities.map((sparsity) => ({ mode: 'unstructured' as const, sparsity })),
    ...(layer.kind.structuredPruning(g, node) ? s.structured.map((sparsity) => ({ mode: 'neurons' as const, sparsity })) : []),
  ];
  const out: LayerSetting[] = restrict.float === false ? [] : [FLOAT32];
  for (const prune of prunes)
    for (const b of bits) for (const granularity of grans) out.push({ bits: b, granularity, ...(prune ? { prune } : {}) });
  return out;
}

/** A CNN node: float32 and int8 per channel, each without pruning and at each filter fraction of the space the node starts. */
function cnnCandidates(
  g: Graph,
  node: GraphNode,
  s: Required<CandidateSpace>,
  restrict: { bits?: number; float?: boolean },
): LayerSetting[] {
  const precisions: LayerSetting[] = [
    ...(restrict.float === false ? [] : [FLOAT32]),
    ...(s.bits.includes(8) && (!restrict.bits || restrict.bits === 8) ? [{ bits: 8, granularity: 'channel' as const }] : []),
  ];
  const prunes: Array<LayerPrune | undefined> = [
    undefined,
    ...(filterSpaceOf(g, node.name) ? s.filters.map((sparsity) => ({ mode: 'filters' as const, sparsity })) : []),
  ];
  return prunes.flatMap((prune) => precisions.map((p) => ({ ...p, ...(prune ? { prune } : {}) })));
}

const PRUNE_KEYS: Record<LayerPrune['mode'], string> = { unstructured: 'u', neurons: 'n', filters: 'f' };
const PRUNE_NAMES: Record<LayerPrune['mode'], string> = { unstructured: 'weights', neurons: 'units', filters: 'filters' };

function granularityKey(g: LayerGranularity | undefined): string {
  return g === undefined || g === 'channel' ? 'ch' : `g${g.group}`;
}

/** A short stable name: 'fp32', 'int4/g128', 'int4/ch/u0.6' (unstructured 60 %), 'int8/ch/n0.25' (25 % of units), 'fp32/f0.5' (half the filters). */
export function settingKey(s: LayerSetting): string {
  const q = s.bits === 32 ? 'fp32' : `int${s.bits}/${granularityKey(s.granularity)}`;
  return s.prune ? `${q}/${PRUNE_KEYS[s.prune.mode]}${s.prune.sparsity}` : q;
}

function granularityName(g: LayerGranularity | undefined): string {
  return g === undefined || g === 'channel' ? 'per-channel' : `group-${g.group}`;
}

/** Readable: 'int4 group-128, 60 % of weights pruned'. */
export function describeSetting(s: LayerSetting): string {
  const q = s.bits === 32 ? 'fp32' : `int${s.bits} ${granularityName(s.granularity)}`;
  if (!s.prune) return q;
  const pct = `${Math.round(s.prune.sparsity * 1000) / 10} %`;
  return `${q}, ${pct} of ${PRUNE_NAMES[s.prune.mode]} pruned`;
}

export type LayerSettings = Record<string, LayerSetting>;

/** Pruning of every layer that has some: structured first (it reshapes the next layer), then per-layer magnitude. */
export function pruneLayers(g: Graph, settings: LayerSettings): Graph {
  const entries = Object.entries(settings).filter(([, s]) => s.prune);
  const ordered = [
    ...entries.filter(([, s]) => s.prune!.mode !== 'unstructured'),
    ...entries.filter(([, s]) => s.prune!.mode === 'unstructured'),
  ];
  let out = g;
  for (const [node, s] of ordered) {
    const { mode, sparsity } = s.prune!;
    out = pruneGraph(out, { mode, sparsity, layers: mode === 'filters' ? filterSpaceWith(out, node) : [node] });
  }
  if (ordered.length)
    out.metadata.pruning = `per layer: ${ordered.map(([node, s]) => `${node} ${s.prune!.mode} ${s.prune!.sparsity}`).join('; ')}`;
  return out;
}

export interface QuantizeLayersOptions {
  /** 'static': per-tensor int8 activation scales observed on `calibration` with the (pruned) float model. */
  activations?: 'dynamic' | 'static';
  calibration?: Dataset;
  /** Static activations: chain int8 layers by integer requantization (default true; NPU ABI v1 layers take false). */
  requantize?: boolean;
}

/** Quantizes every layer whose setting has fewer than 32 bits, each at its own width and granularity. */
export function quantizeLayers(g: Graph, settings: LayerSettings, options: QuantizeLayersOptions = {}): Graph {
  if (isCnn(g))
    return quantizeCnnLayers(
      g,
      Object.entries(settings).map(([node, s]) => [node, s.bits]),
      options,
    );
  let out = g;
  for (const [node, s] of Object.entries(settings)) {
    if (s.bits === 32) continue;
    out = quantizeGraph(out, { bits: s.bits, granularity: s.granularity ?? 'channel', layers: [node] });
  }
  const quantized = Object.entries(settings).filter(([, s]) => s.bits !== 32);
  if (quantized.length)
    out.metadata.quantization = `per layer: ${quantized.map(([node, s]) => `${node} int${s.bits} ${granularityName(s.granularity)}`).join('; ')}`;
  if (options.activations !== 'static') return out;
  if (!options.calibration) throw new EdgeOptError('E_ARGUMENT', "activations 'static' needs calibration data");
  const statics = applyStaticActivations(out, observeActivations(g, options.calibration));
  return options.requantize === false ? statics : applyStaticOutputs(statics);
}

/** The model with these settings, without fine-tuning. */
export function applySettings(g: Graph, settings: LayerSettings, options: QuantizeLayersOptions = {}): Graph {
  return quantizeLayers(pruneLayers(g, settings), settings, options);
}
