/**
 * Optimize to a budget: choose a setting per layer (mixed precision and per-layer
 * sparsity) that keeps the validation accuracy within `maxAccuracyDrop` points of the float
 * model and makes the model as small (exact .eom bytes) or as fast (latency measured by the
 * engine on this machine) as it can.
 *
 * 1. Sensitivity (sensitivity.ts): each layer alone at each candidate setting.
 * 2. A greedy path (HAQ/AutoQ-style): per layer, the lower convex hull of (objective,
 *    logit error) over its settings; the hulls are merged by the error each step adds per
 *    byte (or microsecond) it saves, so the path goes from the float model to the smallest
 *    (fastest) one, cheapest steps first.
 * 3. Verification: the combined model of a step is built (pruned, fine-tuned when asked,
 *    quantized) and measured on the validation split. The search starts at the last step
 *    whose layers' accuracy drops add up to the budget and backs off (or advances) by
 *    bisection to the last step that meets it.
 * 4. The uniform settings (one width and granularity for every layer, no pruning) are
 *    verified too, as the baseline; the result is the smallest (fastest) verified model
 *    within the budget. The test split, if given, is evaluated only on the float model,
 *    the best uniform one and the result, after the search.
 * On a CNN (cnn-layers.ts) a layer is static int8 or float32 with a filter-pruning fraction,
 * the uniform baseline is int8 everywhere, and every verified model is timed whole: its
 * latency is measured, not summed from its layers.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { encodeEom } from '../model/eom';
import { loadModel, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { trainAsync } from '../train/trainer';
import { abortError, throwIfAborted, yieldToEventLoop } from './abort';
import { evaluateModel } from './evaluate';
import { LatencyTable, type LatencyOptions } from './latency';
import {
  DEFAULT_SPACE,
  describeSetting,
  FLOAT32,
  optimizableLayers,
  pruneLayers,
  quantizeLayers,
  settingKey,
  type CandidateSpace,
  type LayerSetting,
  type LayerSettings,
  type OptimizableLayer,
  type QuantizeLayersOptions,
} from './layer-settings';
import { bestWithinBudget, objectiveValue, paretoFront, type Objective, type ParetoPoint } from './pareto';
import { analyzeSensitivity, latencyKey, type SensitivityRow, type SensitivityTable } from './sensitivity';
import { greedyPath, refine } from './search-path';
import { checkTarget, type Target, targetName, targetQuantizeDefaults } from './target';

export interface AutoFineTune {
  /** Labelled training rows (never the validation or test rows). */
  data: Dataset;
  epochs: number;
  /** SGD (momentum 0.9) learning rate, default 0.01. */
  lr?: number;
  batchSize?: number;
}

export interface AutoOptimizeProgress {
  phase: 'sensitivity' | 'latency' | 'search' | 'final';
  done: number;
  total: number;
  message?: string;
}

export interface AutoOptimizeOptions extends QuantizeLayersOptions {
  /** Labelled validation rows the budget is measured on (from the training data, never the test split). */
  validation: Dataset;
  /** Largest allowed drop of validation top-1 accuracy, in percentage points. */
  maxAccuracyDrop: number;
  objective?: Objective;
  /** 'npu' limits layers to what the NPU runs (int8, static activations); every result is checked against the target. */
  target?: Target;
  candidates?: CandidateSpace;
  /** Train pruned models (masks fixed) before they are quantized and verified. */
  fineTune?: AutoFineTune;
  /** Seeds fine-tuning's batch order and the timing inputs (default 1). */
  seed?: number;
  /** Latency measurement options, or a table from an earlier run (reused: same choices); false: no timing (objective size only). */
  latency?: LatencyOptions | LatencyTable | false;
  /** Verifications spent after the bisection on single-layer moves off the greedy path (default 6; 0: none). */
  refine?: number;
  /** Labelled test rows: evaluated for the report only, after the search. */
  test?: Dataset;
  signal?: AbortSignal;
  onProgress?: (p: AutoOptimizeProgress) => void;
}

export interface ModelSummary {
  /** Id of the model's point in `points`. */
  point: number;
  settings: Record<string, LayerSetting>;
  /** Layer name -> readable setting. */
  description: Record<string, string>;
  bytes: number;
  validationAccuracy: number;
  accuracyDrop: number;
  /** Test split, measured after the search (only with `test`). */
  testAccuracy?: number;
  testDrop?: number;
  /** Estimated from the latency table, measured whole for a CNN (what the search compares). */
  latencyUs: number | null;
  /** Median of one call of the whole model, measured after the search (interleaved with the other two models). */
  measuredLatencyUs?: number;
}

export interface AutoOptimizeReport {
  model: string;
  objective: Objective;
  maxAccuracyDrop: number;
  target: string;
  seed: number;
  fineTune: { epochs: number; lr: number; batchSize: number; rows: number } | null;
  validationRows: number;
  testRows?: number;
  reference: ModelSummary;
  /** Every layer int8 per-channel, no pruning (the usual default), when the candidate space has it. */
  uniformInt8: ModelSummary | null;
  /** The smallest (fastest) uniform setting within the budget. */
  bestUniform: ModelSummary | null;
  chosen: ModelSummary;
  /** The best uniform model's objective over the chosen model's (how much smaller or faster). */
  gainOverUniform: number | null;
  points: ParetoPoint[];
  /** Ids of the points on the front, objective ascending. */
  front: number[];
  /** The greedy path: setting keys per step, with the error and drop the sensitivity table predicts. */
  path: Array<{ settings: Record<string, string>; predictedDrop: number; predictedError: number; verified?: number }>;
  sensitivity: SensitivityTable;
  latency: { kernel: string; device: string; batch: number; threads: number; resolution: number } | null;
  verifications: number;
  seconds: number;
}

function validate(o: AutoOptimizeOptions): void {
  if (!o || typeof o !== 'object') throw new EdgeOptError('E_ARGUMENT', 'autoOptimize: options are required');
  if (!o.validation?.labels || !o.validation.shape?.[0])
    throw new EdgeOptError('E_ARGUMENT', 'autoOptimize: validation must be a non-empty labelled Dataset');
  if (!(typeof o.maxAccuracyDrop === 'number' && o.maxAccuracyDrop >= 0 && o.maxAccuracyDrop <= 100))
    throw new EdgeOptError('E_ARGUMENT', `autoOptimize: maxAccuracyDrop is in percentage points, 0..100, got ${String(o.maxAccuracyDrop)}`);
  if (o.objective !== undefined && o.objective !== 'size' && o.objective !== 'latency')
    throw new EdgeOptError('E_ARGUMENT', `autoOptimize: objective must be 'size' or 'latency', got '${String(o.objective)}'`);
  if (o.objective === 'latency' && o.latency === false)
    throw new EdgeOptError('E_ARGUMENT', "autoOptimize: objective 'latency' needs latency measurement");
  if (o.seed !== undefined && !Number.isInteger(o.seed))
    throw new EdgeOptError('E_ARGUMENT', `autoOptimize: seed must be an integer, got ${String(o.seed)}`);
  const ft = o.fineTune;
  if (ft) {
    if (!ft.data?.labels) throw new EdgeOptError('E_ARGUMENT', 'autoOptimize: fineTune.data must be a labelled Dataset');
    if (!(Number.isInteger(ft.epochs) && ft.epochs >= 1))
      throw new EdgeOptError('E_ARGUMENT', `autoOptimize: fineTune.epochs must be a positive integer, got ${String(ft.epochs)}`);
    if (ft.data.data === o.validation.data)
      throw new EdgeOptError('E_ARGUMENT', 'autoOptimize: fineTune.data must not be the validation rows');
  }
  if (o.test && !o.test.labels) throw new EdgeOptError('E_ARGUMENT', 'autoOptimize: test must be labelled');
}

const isNpu = (t: Target | undefined) => t === 'npu' || (typeof t === 'object' && t?.kind === 'npu');

export async function autoOptimize(
  model: ModelSource,
  options: AutoOptimizeOptions,
): Promise<{ model: Graph; report: AutoOptimizeReport }> {
  validate(options);
  const started = performance.now();
  const g = loadModel(model);
  const { validation, maxAccuracyDrop, signal, target } = options;
  const objective = options.objective ?? 'size';
  const seed = options.seed ?? 1;
  const layers = optimizableLayers(g);
  const progress = (phase: AutoOptimizeProgress['phase'], done: number, total: number, message?: string) =>
    options.onProgress?.({ phase, done, total, message });
  throwIfAborted(signal);

  // What the target allows: an NPU takes int8 layers with static activations, and no float ones.
  const defaults = isNpu(target) ? targetQuantizeDefaults(target) : {};
  const restrict = isNpu(target) ? { bits: defaults.bits, granularity: defaults.granularity as 'channel' | undefined, float: false } : {};
  const quantOptions: QuantizeLayersOptions = {
    activations: options.activations ?? defaults.activations,
    calibration: options.calibration,
    requantize: options.requantize ?? defaults.requantize,
  };
  const latency =
    options.latency === false
      ? undefined
      : options.latency instanceof LatencyTable
        ? options.latency
        : new LatencyTable({ seed, ...options.latency });

  const space = options.candidates ?? {};
  const wholeModel = layers.some((l) => l.kind.wholeModel);
  if (wholeModel && !quantOptions.calibration)
    throw new EdgeOptError('E_ARGUMENT', `autoOptimize: '${g.name}' is a CNN: its int8 layers need calibration rows (training data)`);
  const uniform = wholeModel ? [{ bits: 8, granularity: 'channel' as const }] : uniformSettings(space, restrict);
  const sensitivity = await analyzeSensitivity(g, {
    ...quantOptions,
    data: validation,
    candidates: space,
    extra: uniform,
    restrict,
    latency: latency ?? false,
    signal,
    onProgress: (p) => progress(p.phase, p.done, p.total, p.layer),
  });

  const estimateUs = (settings: LayerSettings): number | null => {
    if (!latency) return null;
    const scale = sensitivity.reference.latencyUs!;
    let us = scale;
    for (const layer of layers)
      us += latency.gridUs(latencyKey(layer, settings[layer.node]), scale) - latency.gridUs(latencyKey(layer, FLOAT32), scale);
    return us;
  };

  const x = (r: SensitivityRow) => (objective === 'size' ? r.bytesDelta : r.latencyGridUs!);
  const path = greedyPath(sensitivity, x);
  const searchSteps = Math.ceil(Math.log2(path.length + 1)) + 1 + (options.refine ?? 6);
  const total = 1 + uniform.length + searchSteps;
  let done = 0;

  // Verification: build, fine-tune when pruned, measure on the validation split. Memoized.
  const points: ParetoPoint[] = [];
  const models = new Map<number, Graph>();
  const byKey = new Map<string, ParetoPoint>();
  const reference = evaluateModel(g, validation);
  const fineTune = options.fineTune;
  const verify = async (settings: LayerSettings, source: ParetoPoint['source'], label: string): Promise<ParetoPoint> => {
    const keys = Object.fromEntries(Object.entries(settings).map(([n, s]) => [n, settingKey(s)]));
    const key = JSON.stringify(keys);
    const known = byKey.get(key);
    if (known) return known;
    throwIfAborted(signal);
    let m = pruneLayers(g, settings);
    if (fineTune && Object.values(settings).some((s) => s.prune)) {
      progress('search', done, total, `fine-tuning ${label}`);
      try {
        const ft = await trainAsync(m, fineTune.data, {
          epochs: fineTune.epochs,
          lr: fineTune.lr ?? 0.01,
          batchSize: fineTune.batchSize ?? 32,
          seed,
          signal,
        });
        m = ft.model;
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        throw err;
      }
    }
    m = quantizeLayers(m, settings, quantOptions);
    const accuracy = evaluateModel(m, validation).accuracy;
    let latencyUs = estimateUs(settings);
    if (latency && wholeModel) {
      // Timed whole, on the grid the search compares (see latency.ts); a reused table keeps its timings.
      const timing = `verified:${g.name}:${key}`;
      await latency.measure([{ key: timing, graph: m }], { signal });
      const step = latency.resolution * sensitivity.reference.latencyUs!;
      latencyUs = Math.round(latency.us(timing) / step) * step;
    }
    const accuracyDrop = (reference.accuracy - accuracy) * 100;
    const issues = checkTarget(m, target).length;
    const point: ParetoPoint = {
      id: points.length,
      source,
      label,
      settings: keys,
      bytes: encodeEom(m).length,
      latencyUs,
      validationAccuracy: accuracy,
      accuracyDrop,
      // A float-rounding hair over the budget (0.5 points of 1000 rows = 5 rows) still counts as within it.
      withinBudget: accuracyDrop <= maxAccuracyDrop + 1e-9 && issues === 0,
      onFront: false,
      ...(issues ? { targetIssues: issues } : {}),
    };
    points.push(point);
    models.set(point.id, m);
    byKey.set(key, point);
    await yieldToEventLoop();
    return point;
  };
  const all = (s: LayerSetting) => Object.fromEntries(layers.map((l) => [l.node, s]));

  // The float model, then the uniform baselines.
  const step = async (settings: LayerSettings, source: ParetoPoint['source'], label: string) => {
    const p = await verify(settings, source, label);
    progress('search', Math.min(++done, total), total, label);
    return p;
  };
  const floatPoint = await step(all(FLOAT32), 'float', 'float32');
  for (const s of uniform) await step(all(s), 'uniform', `uniform ${describeSetting(s)}`);

  // The greedy path: start where the predicted drops add up to the budget, then bisect to the last verified step within it.
  const settingsAt = (i: number): LayerSettings => Object.fromEntries(layers.map((l, j) => [l.node, path[i].rows[j].setting]));
  const predicted = path.map((p) => ({
    drop: p.rows.reduce((s, r) => s + Math.max(0, r.accuracyDrop), 0),
    error: p.rows.reduce((s, r) => s + r.logitError, 0),
  }));
  const verifiedAt = new Map<number, number>();
  const passes = async (i: number) => {
    const p = await step(settingsAt(i), 'search', `step ${i}`);
    verifiedAt.set(i, p.id);
    return p.withinBudget;
  };
  let lo = (await passes(0)) ? 0 : -1;
  let hi = path.length;
  let guess = 0;
  while (guess + 1 < path.length && predicted[guess + 1].drop <= maxAccuracyDrop) guess++;
  if (guess > 0 && lo === 0) {
    if (await passes(guess)) lo = guess;
    else hi = guess;
  }
  while (lo >= 0 && hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await passes(mid)) lo = mid;
    else hi = mid;
  }
  const base = objective === 'size' ? sensitivity.reference.bytes : sensitivity.reference.latencyUs!;
  if (lo >= 0)
    await refine(path[lo].rows, sensitivity, x, base, maxAccuracyDrop, options.refine ?? 6, async (rows, label) => {
      const settings = Object.fromEntries(layers.map((l, j) => [l.node, rows[j].setting]));
      return (await step(settings, 'search', label)).withinBudget;
    });

  // The result, the front, and the figures measured only now: test accuracy and end-to-end latency.
  const front = paretoFront(points, objective);
  for (const id of front) points[id].onFront = true;
  const chosenPoint = bestWithinBudget(points, objective);
  if (!chosenPoint)
    throw new EdgeOptError('E_VALUE', `no setting keeps the validation accuracy within ${maxAccuracyDrop} points on ${targetName(target)}`);
  const uniformPoint = bestWithinBudget(
    points.filter((p) => p.source === 'uniform'),
    objective,
  );
  const int8Point = points.find((p) => p.source === 'uniform' && layers.every((l) => p.settings[l.node] === 'int8/ch'));
  const summaries = [floatPoint, int8Point, uniformPoint, chosenPoint].map((p) => (p ? summarize(p, layers, sensitivity) : null));
  progress('final', 0, 2, 'test accuracy and latency');
  if (options.test) {
    const testRef = evaluateModel(g, options.test).accuracy;
    for (const s of summaries) {
      if (!s) continue;
      s.testAccuracy = evaluateModel(models.get(s.point)!, options.test).accuracy;
      s.testDrop = (testRef - s.testAccuracy) * 100;
    }
  }
  throwIfAborted(signal);
  progress('final', 1, 2, 'latency');
  if (latency) await measureEndToEnd(summaries, models, latency, signal);
  progress('final', 2, 2);
  const [refSummary, int8Summary, uniformSummary, chosen] = summaries;
  return {
    model: models.get(chosenPoint.id)!,
    report: {
      model: g.name,
      objective,
      maxAccuracyDrop,
      target: targetName(target),
      seed,
      fineTune: fineTune
        ? { epochs: fineTune.epochs, lr: fineTune.lr ?? 0.01, batchSize: fineTune.batchSize ?? 32, rows: fineTune.data.shape[0] }
        : null,
      validationRows: validation.shape[0],
      ...(options.test ? { testRows: options.test.shape[0] } : {}),
      reference: refSummary!,
      uniformInt8: int8Summary,
      bestUniform: uniformSummary,
      chosen: chosen!,
      gainOverUniform: uniformPoint ? objectiveValue(uniformPoint, objective) / objectiveValue(chosenPoint, objective) : null,
      points,
      front,
      path: path.map((p, i) => ({
        settings: Object.fromEntries(p.rows.map((r, j) => [layers[j].node, r.key])),
        predictedDrop: predicted[i].drop,
        predictedError: predicted[i].error,
        ...(verifiedAt.has(i) ? { verified: verifiedAt.get(i) } : {}),
      })),
      sensitivity,
      latency: latency
        ? { kernel: latency.kernel, device: latency.device, batch: latency.batch, threads: latency.threads, resolution: latency.resolution }
        : null,
      verifications: points.length,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

/** One setting for every layer, no pruning: each bits x granularity of the space (what a target allows). */
function uniformSettings(space: CandidateSpace, restrict: { bits?: number; granularity?: 'channel' }): LayerSetting[] {
  const bits = (space.bits ?? DEFAULT_SPACE.bits).filter((b) => !restrict.bits || b === restrict.bits);
  const grans = (space.granularities ?? DEFAULT_SPACE.granularities).filter((g) => !restrict.granularity || g === 'channel');
  return bits.flatMap((b) => grans.map((granularity) => ({ bits: b, granularity })));
}

function summarize(p: ParetoPoint, layers: OptimizableLayer[], table: SensitivityTable): ModelSummary {
  const settings = Object.fromEntries(
    layers.map((l, i) => [l.node, table.layers[i].candidates.find((r) => r.key === p.settings[l.node])?.setting ?? FLOAT32]),
  );
  return {
    point: p.id,
    settings,
    description: Object.fromEntries(Object.entries(settings).map(([n, s]) => [n, describeSetting(s)])),
    bytes: p.bytes,
    validationAccuracy: p.validationAccuracy,
    accuracyDrop: p.accuracyDrop,
    latencyUs: p.latencyUs,
  };
}

/** Times the float, uniform int8, best uniform and chosen models end to end, interleaved (same rounds, same load). */
async function measureEndToEnd(
  summaries: Array<ModelSummary | null>,
  models: Map<number, Graph>,
  latency: LatencyTable,
  signal: AbortSignal | undefined,
): Promise<void> {
  const table = new LatencyTable({
    batch: latency.batch,
    device: latency.device,
    threads: latency.threads,
    resolution: latency.resolution,
  });
  const items = summaries.map((s, i) => (s ? { key: `model ${i}`, graph: models.get(s.point)! } : null));
  await table.measure(
    items.filter((x) => x !== null),
    { signal },
  );
  summaries.forEach((s, i) => {
    if (s) s.measuredLatencyUs = table.us(`model ${i}`);
  });
}
