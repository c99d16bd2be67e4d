/**
 * Fine-tuning a pruned CNN: BatchNorm refitted after every Conv (statistics, folding back into the
 * Conv's own tensors with masks kept), the kept-channel map of filter pruning, the CNN defaults of
 * pruneGraph's fineTune (refit + the unpruned model as teacher) and the switches back to plain
 * training, and the refusals. Real data: the bundled mobilenet-mini and digits.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCnn, mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import type { Graph } from '../lib/model/graph';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { pruneGraph } from '../lib/optimizer/prune';
import { keptChannelsOf } from '../lib/optimizer/prune-filters';
import { foldRefitBatchNorms, insertRefitBatchNorms } from '../lib/optimizer/refit-batch-norm';
import { train } from '../lib/train/trainer';
import { closeFloats, throwsCode } from './helpers';

const model = defaultCnn();
const data = sliceRows(mnistTrain(), 0, 64);
const test300 = sliceRows(mnistTest(), 0, 300);
const accuracy = (g: Graph) => evaluateModel(g, test300).accuracy;
const unstructured = pruneGraph(model, { sparsity: 0.5 });
const filters = pruneGraph(model, { sparsity: 0.25, mode: 'filters' });

function run(g: Graph, x: Float32Array, rows: number): Float32Array {
  const engine = new EdgeInferenceEngine({ device: 'cpu' });
  engine.loadModelSync('m', g);
  return engine.inferSync('m', { data: x, shape: [rows, 1, 28, 28] }).data;
}

test('BatchNorm refit: one BN per Conv, folded back into the same tensors (names, shapes, masks) with the same outputs', () => {
  const { graph, inserted } = insertRefitBatchNorms(unstructured, model, data);
  const convs = unstructured.nodes.filter((n) => n.op === 'Conv');
  assert.is(inserted.length, convs.length);
  assert.is(graph.nodes.filter((n) => n.op === 'BatchNormalization').length, convs.length);
  const folded = foldRefitBatchNorms(graph, inserted);
  assert.equal(
    folded.nodes.map((n) => [n.op, n.name, n.inputs, n.outputs]),
    unstructured.nodes.map((n) => [n.op, n.name, n.inputs, n.outputs]),
  );
  assert.equal(Object.keys(folded.tensors).sort(), Object.keys(unstructured.tensors).sort());
  for (const [name, t] of Object.entries(unstructured.tensors)) {
    assert.equal(folded.tensors[name].shape, t.shape, name);
    assert.equal(folded.tensors[name].mask, t.mask, `${name} mask`);
    t.mask?.forEach((k, i) => k || assert.is(folded.tensors[name].data![i], 0, `${name}[${i}] stays zero`));
  }
  const x = sliceRows(mnistTest(), 0, 16).data;
  closeFloats(run(folded, x, 16), run(graph, x, 16), { abs: 1e-4, rel: 1e-4 }, 'folded vs BN nodes');
});

test('BatchNorm refit recovers much of what pruning lost, before any training (unstructured and filters)', () => {
  for (const [name, pruned] of [
    ['50 % unstructured', unstructured],
    ['25 % filters', filters],
  ] as const) {
    const { graph, inserted } = insertRefitBatchNorms(pruned, model, data, keptChannelsOf(pruned));
    const before = accuracy(pruned);
    const after = accuracy(foldRefitBatchNorms(graph, inserted));
    // Full test split: 18.65 % -> 54.75 % and 10.70 % -> 28.65 % with the default statistics rows.
    assert.ok(after > before + 0.1, `${name}: ${before} before the refit, ${after} after`);
  }
});

test('filter pruning maps every pruned channel to the unpruned channel it kept', () => {
  const kept = keptChannelsOf(filters);
  assert.ok(kept && kept.size > 0, 'a filter-pruned graph has its kept channels');
  assert.is(keptChannelsOf(unstructured), undefined);
  for (const node of filters.nodes.filter((n) => n.op === 'Conv')) {
    const channels = kept!.get(node.outputs[0]);
    if (!channels) continue;
    const rows = filters.tensors[node.inputs[1]].shape[0] as number;
    const before = model.tensors[node.inputs[1]].shape[0] as number;
    assert.is(channels.length, rows, node.name);
    channels.forEach((c, j) => assert.ok(c < before && (j === 0 || c > channels[j - 1]), `${node.name}: channel ${c}`));
  }
  // The stem reads the unpruned image: its kept rows are the unpruned model's rows, unchanged.
  const stem = filters.nodes[0];
  const rows = kept!.get(stem.outputs[0])!;
  const per = 9;
  rows.forEach((c, j) =>
    assert.equal(
      (filters.tensors[stem.inputs[1]].data as Float32Array).subarray(j * per, (j + 1) * per),
      (model.tensors[stem.inputs[1]].data as Float32Array).subarray(c * per, (c + 1) * per),
    ),
  );
});

test('pruneGraph fineTune on a CNN: refit + teacher by default, the model keeps its shape and zeros; off switches give plain training', () => {
  const options = { data: sliceRows(mnistTrain(), 0, 128), epochs: 1, batchSize: 16, seed: 1, schedule: 'one-shot' } as const;
  const tuned = pruneGraph(model, { sparsity: 0.5, fineTune: options });
  assert.equal(
    tuned.nodes.map((n) => n.op),
    model.nodes.map((n) => n.op),
  );
  for (const [name, t] of Object.entries(tuned.tensors)) t.mask?.forEach((k, i) => k || assert.is(t.data![i], 0, `${name}[${i}]`));
  // Without refit and teacher, fine-tuning is train() on the pruned model with the CNN defaults (Adam, cosine).
  const plain = pruneGraph(model, { sparsity: 0.5, fineTune: { ...options, refitBatchNorm: false, distill: false } });
  const direct = train(unstructured, options.data, { ...options, optimizer: 'adam', lr: 0.001, schedule: { kind: 'cosine' } }).model;
  for (const name of Object.keys(direct.tensors)) assert.equal(plain.tensors[name].data, direct.tensors[name].data, name);
  // 8 steps: 0.35 with refit and teacher, 0.22 without (500 test rows).
  assert.ok(accuracy(tuned) > accuracy(plain) + 0.05, `${accuracy(tuned)} with refit and teacher, ${accuracy(plain)} without`);
  assert.not.equal(tuned.tensors[model.nodes[0].inputs[1]].data, plain.tensors[model.nodes[0].inputs[1]].data);
});

test('fineTune refuses bad distillation settings and data without rows', () => {
  const bad = (distill: { temperature?: number; alpha?: number }) => () =>
    pruneGraph(model, { sparsity: 0.5, fineTune: { data, epochs: 1, distill } });
  throwsCode(bad({ alpha: 1.5 }), 'E_ARGUMENT', /alpha/);
  throwsCode(bad({ temperature: 0 }), 'E_ARGUMENT', /temperature/);
  throwsCode(bad({ temperature: Number.NaN }), 'E_ARGUMENT', /temperature/);
  const empty = sliceRows(data, 0, 0);
  throwsCode(() => pruneGraph(model, { sparsity: 0.5, fineTune: { data: empty, epochs: 1 } }), 'E_ARGUMENT', /row/);
});

test.run();
