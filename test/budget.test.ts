/**
 * Optimize to a budget: per-layer settings, the sensitivity table, the latency table and
 * the search (determinism with a seed, AbortSignal, bad options), on the bundled
 * mlp-784-128-10 and MNIST train rows, and the CNN form on mobilenet-mini-1x28x28 (static int8
 * or float32 per node, filter pruning, whole-model timing) on a few rows. The full default search
 * on the bundled MLP (the acceptance) runs through the CLI in cli-budget.test.ts; the CNN
 * figures are in docs/benchmarks.md.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCnn, defaultModel, mnistTrain } from '../lib/data/bundled';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { sliceRows } from '../lib/data/dataset';
import { encodeEom } from '../lib/model/eom';
import { countKept } from '../lib/model/eom-codecs';
import { denseWeight, type Graph } from '../lib/model/graph';
import { autoOptimize, type AutoOptimizeOptions } from '../lib/optimizer/auto-optimize';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { LatencyTable, type LatencyTableJSON } from '../lib/optimizer/latency';
import {
  applySettings,
  layerCandidates,
  optimizableLayers,
  settingKey,
  describeSetting,
  type CandidateSpace,
} from '../lib/optimizer/layer-settings';
import { pruneGraph, prunedCount } from '../lib/optimizer/prune';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { greedyPath } from '../lib/optimizer/search-path';
import { analyzeSensitivity, type SensitivityRow, type SensitivityTable } from '../lib/optimizer/sensitivity';
import { paretoSvg } from '../lib/optimizer/pareto-svg';
import { quantizeCnn } from '../lib/optimizer/quantize-cnn';
import { closeFloats, rejectsCode, throwsCode } from './helpers';

const model = defaultModel();
const train = mnistTrain();
const validation = sliceRows(train, 7700, 8000);
const SMALL: CandidateSpace = { bits: [8, 4, 2], granularities: ['channel', { group: 32 }], sparsities: [0.5, 0.8], structured: [0.25] };
const weight = (g: Graph, node: string) =>
  denseWeight(
    g,
    g.nodes.find((n) => n.name === node)!,
  );

test('layer settings: candidates in a fixed order, readable keys, one setting per layer applied exactly', () => {
  const [fc1, fc2] = optimizableLayers(model);
  assert.equal([fc1.node, fc1.shape, fc2.shape], ['fc1', [128, 784], [10, 128]]);
  const c1 = layerCandidates(model, fc1, SMALL);
  // float32, then (no pruning, u0.5, u0.8, n0.25) x bits x granularity; fc2 feeds no layer, so no unit pruning.
  assert.is(c1.length, 1 + 4 * 3 * 2);
  assert.is(layerCandidates(model, fc2, SMALL).length, 1 + 3 * 3 * 2);
  assert.equal(c1.slice(0, 3).map(settingKey), ['fp32', 'int8/ch', 'int8/g32']);
  assert.is(settingKey(c1[c1.length - 1]), 'int2/g32/n0.25');
  assert.is(
    describeSetting({ bits: 4, granularity: { group: 128 }, prune: { mode: 'unstructured', sparsity: 0.6 } }),
    'int4 group-128, 60 % of weights pruned',
  );
  assert.equal(layerCandidates(model, fc1, SMALL, { bits: 8, granularity: 'channel', float: false }).map(settingKey), [
    'int8/ch',
    'int8/ch/u0.5',
    'int8/ch/u0.8',
    'int8/ch/n0.25',
  ]);

  const g = applySettings(model, {
    fc1: { bits: 4, granularity: { group: 32 }, prune: { mode: 'unstructured', sparsity: 0.6 } },
    fc2: { bits: 8, granularity: 'channel' },
  });
  const w1 = weight(g, 'fc1');
  assert.equal([w1.quant!.bits, w1.quant!.groupSize], [4, 32]);
  assert.is(countKept(w1.mask!), w1.data.length - prunedCount(w1.data.length, 0.6));
  const w2 = weight(g, 'fc2');
  assert.equal([w2.quant!.bits, w2.quant!.groupSize, w2.mask], [8, undefined, undefined]);
  assert.match(g.metadata.quantization, /fc1 int4 group-32; fc2 int8 per-channel/);
  // The same as the uniform passes applied to one layer each.
  const byPasses = quantizeGraph(
    quantizeGraph(pruneGraph(model, { sparsity: 0.6, layers: ['fc1'] }), { bits: 4, granularity: { group: 32 }, layers: ['fc1'] }),
    {
      bits: 8,
      layers: ['fc2'],
    },
  );
  assert.equal(Array.from(weight(byPasses, 'fc1').data), Array.from(w1.data));
  assert.equal(Array.from(weight(byPasses, 'fc2').data), Array.from(w2.data));

  // Unit pruning shrinks the layer and the next layer's inputs; a float layer stays float.
  const n = applySettings(model, { fc1: { bits: 32, prune: { mode: 'neurons', sparsity: 0.25 } }, fc2: { bits: 32 } });
  assert.equal(
    [weight(n, 'fc1').shape, weight(n, 'fc2').shape, n.nodes.map((x) => x.op)],
    [
      [96, 784],
      [10, 96],
      ['Dense', 'Dense'],
    ],
  );
});

test('quantize/prune layers: unknown names are E_NOT_FOUND, a non-array E_ARGUMENT; bad candidate spaces E_ARGUMENT', () => {
  throwsCode(() => quantizeGraph(model, { layers: ['fc9'] }), 'E_NOT_FOUND', /fc9/);
  throwsCode(() => pruneGraph(model, { sparsity: 0.5, layers: ['fc1', 'nope'] }), 'E_NOT_FOUND', /nope/);
  throwsCode(() => quantizeGraph(model, { layers: 'fc1' as unknown as string[] }), 'E_ARGUMENT');
  const [fc1] = optimizableLayers(model);
  throwsCode(() => layerCandidates(model, fc1, { bits: [9] }), 'E_ARGUMENT', /bits/);
  throwsCode(() => layerCandidates(model, fc1, { sparsities: [1] }), 'E_ARGUMENT', /sparsities/);
  throwsCode(() => layerCandidates(model, fc1, { granularities: [{ group: 0 }] }), 'E_ARGUMENT', /granularity/);
  throwsCode(() => optimizableLayers(quantizeGraph(model)), 'E_ARGUMENT', /already QDense/);
});

test('a group longer than K is one group per row (stored as K), so the engine runs it (fc2 after fc1 loses units)', () => {
  const shrunk = applySettings(model, {
    fc1: { bits: 32, prune: { mode: 'neurons', sparsity: 0.5 } },
    fc2: { bits: 4, granularity: { group: 128 } },
  });
  assert.equal([weight(shrunk, 'fc2').shape, weight(shrunk, 'fc2').quant!.groupSize], [[10, 64], 64]);
  const q = quantizeGraph(model, { bits: 4, granularity: { group: 1000 } });
  assert.equal([weight(q, 'fc1').quant!.groupSize, weight(q, 'fc2').quant!.groupSize], [784, 128]);
  assert.ok(evaluateModel(shrunk, validation).accuracy > 0.5);
  assert.ok(evaluateModel(q, validation).accuracy > 0.9);
});

test('sensitivity: one layer at a time; exact model bytes, zero error at float32, error grows as bits shrink', async () => {
  const t = await analyzeSensitivity(model, { data: validation, candidates: SMALL, latency: false });
  assert.is(t.validationRows, 300);
  assert.is(t.reference.bytes, encodeEom(model).length);
  assert.equal(
    t.layers.map((l) => [l.node, l.candidates.length]),
    [
      ['fc1', 25],
      ['fc2', 19],
    ],
  );
  for (const l of t.layers) {
    const row = (key: string) => l.candidates.find((c) => c.key === key)!;
    assert.equal([row('fp32').bytesDelta, row('fp32').accuracyDrop, row('fp32').logitError, row('fp32').changedPredictions], [0, 0, 0, 0]);
    assert.ok(row('int8/ch').logitError < row('int4/ch').logitError && row('int4/ch').logitError < row('int2/ch').logitError, l.node);
    assert.ok(row('int4/ch').modelBytes < row('int8/ch').modelBytes, l.node);
    for (const c of l.candidates) {
      const changed = applySettings(model, { [l.node]: c.setting });
      assert.is(c.modelBytes, encodeEom(changed).length, `${l.node} ${c.key}`);
      assert.is(c.latencyUs, undefined);
    }
  }
  await rejectsCode(analyzeSensitivity(model, { data: { data: validation.data, shape: validation.shape } }), 'E_ARGUMENT', /labelled/);
});

test('latency table: interleaved ratios to a yardstick, a grid, a JSON round trip; bad tables are refused', async () => {
  const t = new LatencyTable({ rounds: 3, sampleMs: 0.05 });
  const [fc1] = optimizableLayers(model);
  const q = quantizeGraph(model, { bits: 4 });
  await t.measure([
    { key: 'fc1 fp32', graph: fc1.kind.isolate(model, model.nodes[0]) },
    { key: 'fc1 int4', graph: fc1.kind.isolate(q, q.nodes[0]) },
  ]);
  for (const key of ['fc1 fp32', 'fc1 int4', 'call:1x1']) assert.ok(t.us(key) > 0 && Number.isFinite(t.us(key)), key);
  assert.ok(t.workUs('fc1 fp32') <= t.us('fc1 fp32'));
  const step = 0.05 * 10;
  const grid = t.gridUs('fc1 fp32', 10);
  assert.ok(Math.abs(grid / step - Math.round(grid / step)) < 1e-9, `${grid} is on the ${step} us grid`);
  const json = JSON.parse(JSON.stringify(t.toJSON())) as LatencyTableJSON;
  const back = LatencyTable.fromJSON(json);
  assert.is(back.us('fc1 int4'), t.us('fc1 int4'));
  assert.is(back.gridUs('fc1 int4', 10), t.gridUs('fc1 int4', 10));
  throwsCode(() => back.us('missing'), 'E_STATE', /missing/);
  throwsCode(() => LatencyTable.fromJSON({} as LatencyTableJSON), 'E_FORMAT');
  throwsCode(() => LatencyTable.fromJSON({ ...json, kernel: 'z80' }), 'E_ARGUMENT', /z80/);
  throwsCode(() => LatencyTable.fromJSON({ ...json, entries: { x: { ratio: -1, spread: 0 } } }), 'E_FORMAT', /'x'/);
  throwsCode(() => new LatencyTable({ batch: 0 }), 'E_ARGUMENT', /batch/);
  throwsCode(() => new LatencyTable({ rounds: 1.5 }), 'E_ARGUMENT', /rounds/);
  throwsCode(() => new LatencyTable({ resolution: 1 }), 'E_ARGUMENT', /resolution/);
  throwsCode(() => new LatencyTable({ threads: 0 }), 'E_ARGUMENT', /threads/);
});

test('greedy path: each layer walks its lower convex hull of (bytes, error); layers merge by error added per byte saved', () => {
  const row = (key: string, bytesDelta: number, logitError: number) =>
    ({ key, bytesDelta, logitError, accuracyDrop: 0, setting: { bits: 32 } }) as unknown as SensitivityRow;
  const layer = (node: string, rows: SensitivityRow[]) => ({ node, op: 'Dense', shape: [1, 1] as [number, number], candidates: rows });
  const table: SensitivityTable = {
    model: 'synthetic',
    validationRows: 1,
    reference: { bytes: 1000, accuracy: 1 },
    layers: [
      // a: 'a2' lies above the hull from a1 to a3 (a concave corner), 'a4' saves nothing; 'a5' is the smallest.
      layer('a', [row('a0', 0, 0), row('a1', -100, 1), row('a2', -150, 4), row('a3', -200, 3), row('a4', 0, 0.5), row('a5', -300, 13)]),
      // b: slopes 0.02 then 0.05 per byte.
      layer('b', [row('b0', 0, 0), row('b1', -100, 2), row('b2', -140, 4)]),
    ],
  };
  const path = greedyPath(table, (r) => r.bytesDelta).map((p) => p.rows.map((r) => r.key).join(' '));
  // Slopes: a1 0.01, a3 0.02, b1 0.02 (a first: earlier layer on a tie), b2 0.05, a5 0.1.
  assert.equal(path, ['a0 b0', 'a1 b0', 'a3 b0', 'a3 b1', 'a3 b2', 'a5 b2']);
});

const searchOptions = (extra: Partial<AutoOptimizeOptions> = {}): AutoOptimizeOptions => ({
  validation,
  maxAccuracyDrop: 1,
  candidates: SMALL,
  latency: false,
  ...extra,
});

const choice = (r: Awaited<ReturnType<typeof autoOptimize>>) => ({
  chosen: r.report.points[r.report.chosen.point].settings,
  points: r.report.points.map((p) => [p.label, p.settings, p.bytes, p.validationAccuracy, p.latencyUs]),
});

test('search: within budget on validation, smallest verified model, exact bytes, the front and the path', async () => {
  const { model: out, report } = await autoOptimize(model, searchOptions());
  assert.ok(report.chosen.accuracyDrop <= 1 + 1e-9);
  assert.is(report.chosen.bytes, encodeEom(out).length);
  const within = report.points.filter((p) => p.withinBudget);
  assert.is(Math.min(...within.map((p) => p.bytes)), report.chosen.bytes);
  assert.ok(report.bestUniform && report.points[report.bestUniform.point].source === 'uniform');
  assert.ok(report.gainOverUniform! >= 1);
  assert.is(report.reference.accuracyDrop, 0);
  assert.equal(report.uniformInt8!.description, { fc1: 'int8 per-channel', fc2: 'int8 per-channel' });
  // The front: sorted by bytes, accuracy strictly rising.
  const front = report.front.map((id) => report.points[id]);
  for (let i = 1; i < front.length; i++)
    assert.ok(front[i].bytes >= front[i - 1].bytes && front[i].validationAccuracy > front[i - 1].validationAccuracy);
  // The path goes from float32 to ever smaller predicted models; verified steps point at real points.
  assert.equal(report.path[0].settings, { fc1: 'fp32', fc2: 'fp32' });
  for (const p of report.path) if (p.verified !== undefined) assert.equal(report.points[p.verified].settings, p.settings);
  assert.is(report.latency, null);
  assert.is(report.testRows, undefined);
});

test('search: the same seed chooses the same settings twice (with fine-tuning), and the same latency table gives the same latency choice', async () => {
  const fineTune = { data: sliceRows(train, 0, 600), epochs: 1 };
  const a = await autoOptimize(model, searchOptions({ seed: 3, fineTune }));
  const b = await autoOptimize(model, searchOptions({ seed: 3, fineTune }));
  assert.equal(choice(a), choice(b));
  assert.equal(Array.from(weight(a.model, 'fc1').data), Array.from(weight(b.model, 'fc1').data));
  assert.ok(
    a.report.points.some((p) => Object.values(p.settings).some((s) => /\/[un]0/.test(s))),
    'pruned (fine-tuned) models were verified',
  );
  assert.equal(a.report.fineTune, { epochs: 1, lr: 0.01, batchSize: 32, rows: 600 });

  const table = new LatencyTable({ rounds: 3, sampleMs: 0.05 });
  const lat = (t: LatencyTable) => autoOptimize(model, searchOptions({ objective: 'latency', latency: t, refine: 2 }));
  const c = await lat(table);
  const d = await lat(table);
  const e = await lat(LatencyTable.fromJSON(JSON.parse(JSON.stringify(table.toJSON()))));
  assert.equal(choice(c), choice(d));
  assert.equal(choice(c), choice(e));
  assert.ok(c.report.chosen.latencyUs! > 0 && c.report.chosen.measuredLatencyUs! > 0);
  assert.ok(c.report.sensitivity.layers.every((l) => l.candidates.every((r) => r.latencyUs! >= 0)));
});

test('search: an AbortSignal rejects with an AbortError (before, during sensitivity, during fine-tuning)', async () => {
  const name = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return (err as Error).name;
    }
    return 'resolved';
  };
  assert.is(await name(autoOptimize(model, searchOptions({ signal: AbortSignal.abort() }))), 'AbortError');
  const during = (phase: string, extra: Partial<AutoOptimizeOptions> = {}) => {
    const controller = new AbortController();
    return autoOptimize(
      model,
      searchOptions({
        ...extra,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === phase && p.done >= 3) controller.abort();
        },
      }),
    );
  };
  assert.is(await name(during('sensitivity')), 'AbortError');
  // Aborting while a pruned model fine-tunes: the training loop notices it between batches.
  const controller = new AbortController();
  const fineTuning = autoOptimize(
    model,
    searchOptions({
      fineTune: { data: sliceRows(train, 0, 3000), epochs: 3 },
      signal: controller.signal,
      onProgress: (p) => {
        if (p.message?.startsWith('fine-tuning')) setTimeout(() => controller.abort(), 0);
      },
    }),
  );
  assert.is(await name(fineTuning), 'AbortError');
  const reason = new DOMException('user hit stop', 'AbortError');
  try {
    await autoOptimize(model, searchOptions({ signal: AbortSignal.abort(reason) }));
  } catch (err) {
    assert.is(err, reason);
  }
});

test('search: bad options are E_ARGUMENT, an impossible target E_VALUE', async () => {
  const bad = (o: Partial<AutoOptimizeOptions>, message: RegExp) =>
    rejectsCode(autoOptimize(model, { ...searchOptions(), ...o }), 'E_ARGUMENT', message);
  await bad({ validation: { data: validation.data, shape: validation.shape } }, /validation/);
  await bad({ maxAccuracyDrop: -1 }, /maxAccuracyDrop/);
  await bad({ maxAccuracyDrop: Number.NaN }, /maxAccuracyDrop/);
  await bad({ objective: 'speed' as 'size' }, /objective/);
  await bad({ objective: 'latency', latency: false }, /latency/);
  await bad({ seed: 1.5 }, /seed/);
  await bad({ fineTune: { data: validation, epochs: 1 } }, /validation rows/);
  await bad({ fineTune: { data: sliceRows(train, 0, 100), epochs: 0 } }, /epochs/);
  await rejectsCode(autoOptimize(quantizeGraph(model), searchOptions()), 'E_ARGUMENT', /float32 model/);
  // An MCU whose flash no candidate fits: nothing is within the budget there.
  await rejectsCode(autoOptimize(model, searchOptions({ target: { kind: 'mcu', ramBytes: 1 << 20, flashBytes: 1000 } })), 'E_VALUE', /mcu/);
});

// ---- CNNs: mobilenet-mini-1x28x28, a few validation rows, calibration rows before them.
const cnn = defaultCnn();
// A CNN search runs the model on its validation rows once per candidate (~50 times): under
// EDGEOPT_FORCE_TS that is minutes of the TS twin's fp32 convolution per search. The
// search does not depend on the backend (TS = native bit for bit, which the settings tests
// below and cnn-int8.test.ts check), so it runs on the default backend only.
const searchTest = process.env.EDGEOPT_FORCE_TS ? test.skip : test;
const cnnValidation = sliceRows(train, 7900, 8000);
const calibration = sliceRows(train, 7800, 7900);
const PROJECT0 = 'blocks.blocks.0.project.project.0.Conv';
const PROJECT1 = 'blocks.blocks.1.project.project.0.Conv';
const cnnOptions = (extra: Partial<AutoOptimizeOptions> = {}): AutoOptimizeOptions => ({
  validation: cnnValidation,
  calibration,
  maxAccuracyDrop: 1,
  objective: 'latency',
  candidates: { filters: [0.5] },
  latency: { rounds: 3, sampleMs: 0.05 },
  refine: 2,
  ...extra,
});

test('CNN settings: int8 or float32 per Conv/Dense, filter pruning on the node that starts a channel space', () => {
  const layers = optimizableLayers(cnn);
  assert.is(layers.length, 15); // 14 Conv + the final Gemm
  assert.equal(layers[0].shape, [16, 9]);
  const keys = (node: string, space: CandidateSpace = { filters: [0.25] }) =>
    layerCandidates(
      cnn,
      layers.find((l) => l.node === node)!,
      space,
    ).map(settingKey);
  assert.equal(keys('stem.stem.0.Conv'), ['fp32', 'int8/ch', 'fp32/f0.25', 'int8/ch/f0.25']);
  // A depthwise conv carries its input's channels; the residual Add ties the two projections' channels (the first carries the setting).
  assert.equal(keys('blocks.blocks.0.dw.dw.0.Conv'), ['fp32', 'int8/ch']);
  assert.equal(keys(PROJECT0), ['fp32', 'int8/ch', 'fp32/f0.25', 'int8/ch/f0.25']);
  assert.equal(keys(PROJECT1), ['fp32', 'int8/ch']);
  assert.equal(keys('fc.Gemm'), ['fp32', 'int8/ch']); // the model's output keeps its 10 classes
  // Narrower widths would store one byte per weight all the same: a CNN is offered int8 only.
  assert.equal(keys('stem.stem.0.Conv', { bits: [4], filters: [0.25] }), ['fp32', 'fp32/f0.25']);
  assert.is(describeSetting({ bits: 32, prune: { mode: 'filters', sparsity: 0.25 } }), 'fp32, 25 % of filters pruned');

  const pruned = applySettings(cnn, { [PROJECT0]: { bits: 32, prune: { mode: 'filters', sparsity: 0.25 } } });
  const rows = (g: Graph, node: string) => g.tensors[g.nodes.find((n) => n.name === node)!.inputs[1]].shape[0];
  assert.equal([rows(pruned, PROJECT0), rows(pruned, PROJECT1)], [18, 18], 'both producers of the tied space lose 6 of 24 filters');
  assert.equal(
    pruned.tensors[pruned.nodes.find((n) => n.name === 'blocks.blocks.2.expand.expand.0.Conv')!.inputs[1]].shape,
    [72, 18, 1, 1],
  );
  throwsCode(
    () => applySettings(cnn, { 'fc.Gemm': { bits: 32, prune: { mode: 'filters', sparsity: 0.5 } } }),
    'E_ARGUMENT',
    /cannot be pruned/,
  );
  throwsCode(() => applySettings(cnn, { [PROJECT0]: { bits: 4 } }, { calibration }), 'E_ARGUMENT', /int8 or float32/);
  throwsCode(() => applySettings(cnn, { [PROJECT0]: { bits: 8 } }), 'E_ARGUMENT', /calibration/);
  throwsCode(() => applySettings(cnn, { [PROJECT0]: { bits: 8 } }, { calibration, activations: 'dynamic' }), 'E_ARGUMENT', /static/);
  throwsCode(() => optimizableLayers(quantizeCnn(cnn, { bits: 8, calibration })), 'E_ARGUMENT', /already an int8 Conv/);
});

test('CNN settings: only the chosen nodes run int8; a float residual Add reads an int8 projection (dequantized), native = TS', () => {
  const m = applySettings(cnn, { [PROJECT0]: { bits: 8, granularity: 'channel' } }, { calibration });
  const engine = new EdgeInferenceEngine();
  try {
    const { placement } = engine.loadModelSync('mixed', m);
    const int8 = placement.filter((p) => p.kernel?.startsWith('q')).map((p) => p.node);
    // The native executor names its int8 kernels q*; the TS twin runs the same ops under other names.
    if (placement.some((p) => p.backend === 'native')) assert.equal(int8, [PROJECT0]);
  } finally {
    engine.dispose();
  }
  assert.is(m.tensors[m.nodes.find((n) => n.name === PROJECT0)!.inputs[1]].dtype, 'int8');
  assert.is(m.tensors[m.nodes.find((n) => n.name === PROJECT1)!.inputs[1]].dtype, 'float32');
  const native = evaluateModel(m, cnnValidation);
  const ts = evaluateModel(m, cnnValidation, { device: 'ts' });
  closeFloats(native.logits, ts.logits, { abs: 1e-4, rel: 1e-4 }, 'mixed CNN logits, native vs TS');
  // One int8 projection barely moves the logits of the float model.
  closeFloats(native.logits, evaluateModel(cnn, cnnValidation).logits, { abs: 0.5 }, 'mixed vs float32 logits');
});

searchTest(
  'CNN search (latency): every verified model timed whole, the fastest within budget chosen, same table -> same choice',
  async () => {
    const table = new LatencyTable({ rounds: 3, sampleMs: 0.05 });
    const a = await autoOptimize(cnn, cnnOptions({ latency: table }));
    const b = await autoOptimize(cnn, cnnOptions({ latency: table }));
    assert.equal(choice(a), choice(b));
    const r = a.report;
    assert.equal(
      r.points.filter((p) => p.source === 'uniform').map((p) => p.label),
      ['uniform int8 per-channel'],
    );
    assert.ok(Object.values(r.uniformInt8!.description).every((d) => d === 'int8 per-channel'));
    assert.ok(r.points.every((p) => p.latencyUs! > 0 && table.has(`verified:${cnn.name}:${JSON.stringify(p.settings)}`)));
    const within = r.points.filter((p) => p.withinBudget);
    assert.is(Math.min(...within.map((p) => p.latencyUs!)), r.chosen.latencyUs);
    assert.ok(r.chosen.accuracyDrop <= 1 + 1e-9);
    assert.is(r.chosen.bytes, encodeEom(a.model).length);
    assert.ok(r.chosen.measuredLatencyUs! > 0 && r.uniformInt8!.measuredLatencyUs! > 0);
    // Filter pruning is a candidate on the layers that start a channel space, and it was verified on the path.
    const stem = r.sensitivity.layers.find((l) => l.node === 'stem.stem.0.Conv')!;
    assert.equal(
      stem.candidates.map((c) => c.key),
      ['fp32', 'int8/ch', 'fp32/f0.5', 'int8/ch/f0.5'],
    );
    assert.ok(stem.candidates.every((c) => c.latencyUs! > 0));
    assert.is(stem.latencyShare, undefined);
    // The chart says the latencies are measured, and lists a CNN's layers only where they differ from float32.
    const svg = paretoSvg(r);
    assert.ok(svg.includes('measured latency per call') && svg.includes('f0.25: 25 % of the filters'));
    assert.not.ok(svg.includes('stem.stem.0.Conv: fp32'));
  },
);

searchTest(
  'CNN search (size): int8 where it costs least, smaller than float32; an AbortSignal rejects; no calibration is E_ARGUMENT',
  async () => {
    const { report } = await autoOptimize(cnn, cnnOptions({ objective: 'size', latency: false, candidates: { filters: [] } }));
    assert.ok(report.chosen.bytes < report.reference.bytes);
    assert.ok(report.chosen.accuracyDrop <= 1 + 1e-9);
    assert.ok(report.gainOverUniform! >= 1);
    const controller = new AbortController();
    const aborted = autoOptimize(
      cnn,
      cnnOptions({
        latency: false,
        objective: 'size',
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'sensitivity' && p.done >= 3) controller.abort();
        },
      }),
    );
    try {
      await aborted;
      assert.unreachable('the search ran to the end');
    } catch (err) {
      assert.is((err as Error).name, 'AbortError');
    }
    await rejectsCode(autoOptimize(cnn, cnnOptions({ calibration: undefined })), 'E_ARGUMENT', /calibration/);
  },
);

test.run();
