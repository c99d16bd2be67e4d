/**
 * Per-layer sensitivity: every layer, one at a time, at every candidate setting (the other
 * layers stay float32), measured on a validation split: accuracy and its drop, the logit
 * error against the float model, the model's exact .eom bytes, and the layer's latency on
 * this machine. The budget search ranks its moves by this table (HAQ/HAWQ-style: cost of a
 * layer's setting = the error it adds, errors of different layers assumed to add up).
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { encodeEom } from '../model/eom';
import { loadModel, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { throwIfAborted, yieldToEventLoop } from './abort';
import { evaluateModel, type Evaluation } from './evaluate';
import type { LatencyTable, TimedItem } from './latency';
import {
  describeSetting,
  FLOAT32,
  layerCandidates,
  optimizableLayers,
  pruneLayers,
  quantizeLayers,
  settingKey,
  type CandidateSpace,
  type LayerSetting,
  type OptimizableLayer,
  type QuantizeLayersOptions,
} from './layer-settings';

export interface SensitivityRow {
  setting: LayerSetting;
  /** settingKey(setting), e.g. 'int4/g128/u0.6'. */
  key: string;
  description: string;
  /** Exact .eom bytes of the model with only this layer changed. */
  modelBytes: number;
  /** modelBytes minus the float model's bytes (negative: smaller). */
  bytesDelta: number;
  /** Validation top-1 accuracy (fraction) and its drop from the float model in percentage points. */
  accuracy: number;
  accuracyDrop: number;
  changedPredictions: number;
  maxAbsLogitError: number;
  meanAbsLogitError: number;
  /** Mean squared logit error over the float model's mean squared logit: the cost the search adds up. */
  logitError: number;
  /** The layer's own latency at this setting (engine's fixed cost per call removed), measured here. */
  latencyUs?: number;
  /** latencyUs on the decision grid (see latency.ts). */
  latencyGridUs?: number;
}

export interface LayerSensitivity {
  node: string;
  op: string;
  /** [output channels, K] */
  shape: [number, number];
  /** Share of the float model's latency this layer takes at float32. */
  latencyShare?: number;
  candidates: SensitivityRow[];
}

export interface SensitivityTable {
  model: string;
  validationRows: number;
  reference: { bytes: number; accuracy: number; latencyUs?: number };
  layers: LayerSensitivity[];
}

export interface SensitivityProgress {
  phase: 'sensitivity' | 'latency';
  done: number;
  total: number;
  layer?: string;
}

export interface SensitivityOptions extends QuantizeLayersOptions {
  /** Labelled validation rows (never the test split). */
  data: Dataset;
  candidates?: CandidateSpace;
  /** Extra settings per layer to measure besides the candidate space (the search adds its uniform baselines). */
  extra?: LayerSetting[];
  /** Only these bits / granularity, and no float layer (what a target such as an NPU allows). */
  restrict?: Parameters<typeof layerCandidates>[3];
  /** A table to fill (and reuse: entries it has are not timed again); false skips timing. */
  latency?: LatencyTable | false;
  signal?: AbortSignal;
  onProgress?: (p: SensitivityProgress) => void;
}

function logitErrors(
  reference: Evaluation,
  ev: Evaluation,
): Pick<SensitivityRow, 'maxAbsLogitError' | 'meanAbsLogitError' | 'logitError' | 'changedPredictions'> {
  let max = 0;
  let abs = 0;
  let sq = 0;
  let refSq = 0;
  for (let i = 0; i < ev.logits.length; i++) {
    const d = ev.logits[i] - reference.logits[i];
    max = Math.max(max, Math.abs(d));
    abs += Math.abs(d);
    sq += d * d;
    refSq += reference.logits[i] * reference.logits[i];
  }
  let changed = 0;
  for (let i = 0; i < ev.predictions.length; i++) if (ev.predictions[i] !== reference.predictions[i]) changed++;
  const n = ev.logits.length;
  return { changedPredictions: changed, maxAbsLogitError: max, meanAbsLogitError: abs / n, logitError: refSq > 0 ? sq / refSq : sq / n };
}

/**
 * The latency table's key of a layer at a setting: by op, weight shape and setting (layers of
 * equal shape share it), or for whole-model kinds (CNNs) the model with only this node changed;
 * such a model at float32 is the float model itself.
 */
export function latencyKey(layer: OptimizableLayer, setting: LayerSetting): string {
  if (!layer.kind.wholeModel) return `${layer.op}[${layer.shape.join('x')}]:${settingKey(setting)}`;
  return settingKey(setting) === settingKey(FLOAT32) ? modelKey(layer.graph) : `model:${layer.graph}/${layer.node}:${settingKey(setting)}`;
}

const modelKey = (graph: string) => `model:${graph}`;

/** Settings of every layer, keyed by setting key, deduplicated and in order. */
export function settingsToTry(
  g: Graph,
  layer: OptimizableLayer,
  options: Pick<SensitivityOptions, 'candidates' | 'extra' | 'restrict'>,
): LayerSetting[] {
  const all = [...layerCandidates(g, layer, options.candidates, options.restrict), ...(options.extra ?? [])];
  const seen = new Set<string>();
  return all.filter((s) => !seen.has(settingKey(s)) && seen.add(settingKey(s)));
}

export async function analyzeSensitivity(model: ModelSource, options: SensitivityOptions): Promise<SensitivityTable> {
  const g = loadModel(model);
  const { data, signal } = options;
  if (!data?.labels || !data.shape?.[0]) throw new EdgeOptError('E_ARGUMENT', 'sensitivity: data must be a non-empty labelled Dataset');
  const layers = optimizableLayers(g);
  const reference = evaluateModel(g, data);
  const refBytes = encodeEom(g).length;
  const plan = layers.map((layer) => ({ layer, settings: settingsToTry(g, layer, options) }));
  const total = plan.reduce((s, p) => s + p.settings.length, 0);
  const timed: TimedItem[] = [];
  const result: LayerSensitivity[] = [];
  let done = 0;
  for (const { layer, settings } of plan) {
    const rows: SensitivityRow[] = [];
    const pruned = new Map<string, Graph>(); // one pruned model per pruning setting, quantized at every width
    for (const setting of settings) {
      throwIfAborted(signal);
      const pruneKey = JSON.stringify(setting.prune ?? null);
      if (!pruned.has(pruneKey)) pruned.set(pruneKey, pruneLayers(g, { [layer.node]: setting }));
      const changed = quantizeLayers(pruned.get(pruneKey)!, { [layer.node]: setting }, options);
      const ev = evaluateModel(changed, data);
      const modelBytes = encodeEom(changed).length;
      rows.push({
        setting,
        key: settingKey(setting),
        description: describeSetting(setting),
        modelBytes,
        bytesDelta: modelBytes - refBytes,
        accuracy: ev.accuracy,
        accuracyDrop: (reference.accuracy - ev.accuracy) * 100,
        ...logitErrors(reference, ev),
      });
      if (options.latency) {
        const node = changed.nodes.find((n) => n.name === layer.node)!;
        timed.push({ key: latencyKey(layer, setting), graph: layer.kind.isolate(changed, node) });
      }
      options.onProgress?.({ phase: 'sensitivity', done: ++done, total, layer: layer.node });
      await yieldToEventLoop();
    }
    result.push({ node: layer.node, op: layer.op, shape: layer.shape, candidates: rows });
  }
  const table: SensitivityTable = {
    model: g.name,
    validationRows: data.shape[0],
    reference: { bytes: refBytes, accuracy: reference.accuracy },
    layers: result,
  };
  if (options.latency) {
    // The float layers are always timed: a model's latency is estimated from the float model's.
    for (const layer of layers)
      timed.push({
        key: latencyKey(layer, FLOAT32),
        graph: layer.kind.isolate(
          g,
          g.nodes.find((n) => n.name === layer.node)!,
        ),
      });
    await addLatency(table, g, layers, timed, options.latency, options);
  }
  return table;
}

/** Times the layers (and the float model) and fills in latencies, shares and their grid values. */
async function addLatency(
  table: SensitivityTable,
  g: Graph,
  layers: OptimizableLayer[],
  timed: TimedItem[],
  latency: LatencyTable,
  options: Pick<SensitivityOptions, 'signal' | 'onProgress'>,
): Promise<void> {
  await latency.measure([{ key: modelKey(g.name), graph: g }, ...timed], {
    signal: options.signal,
    onProgress: (p) => options.onProgress?.({ phase: 'latency', ...p }),
  });
  const modelUs = latency.us(modelKey(g.name));
  table.reference.latencyUs = modelUs;
  table.layers.forEach((l, i) => {
    for (const row of l.candidates) {
      const key = latencyKey(layers[i], row.setting);
      row.latencyUs = latency.workUs(key);
      row.latencyGridUs = latency.gridUs(key, modelUs);
    }
    // A whole-model kind's float32 entry is the whole model: it has no share of its own.
    if (!layers[i].kind.wholeModel) l.latencyShare = latency.workUs(latencyKey(layers[i], FLOAT32)) / modelUs;
  });
}
