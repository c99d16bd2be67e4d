/** The prune pass with fineTune: accuracy recovers, the target sparsity is exact, pruned weights stay zero. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { prune, prunedCount, pruneGraph } from '../lib/optimizer/prune';
import { polynomialSparsity } from '../lib/optimizer/schedule';
import { throwsCode } from './helpers';

const model = defaultModel();
const data = sliceRows(mnistTrain(), 0, 500);
const evaluation = sliceRows(mnistTest(), 0, 500);

test('polynomial schedule: s_i at the start, s_f at the end, cubic in between', () => {
  const s = { initialSparsity: 0.1, finalSparsity: 0.9, beginStep: 10, endStep: 110 };
  assert.is(polynomialSparsity(0, s), 0.1);
  assert.is(polynomialSparsity(500, s), 0.9);
  assert.ok(Math.abs(polynomialSparsity(60, s) - (0.9 - 0.8 * 0.125)) < 1e-12);
});

for (const schedule of ['one-shot', 'polynomial'] as const) {
  test(`90% per-layer sparsity + ${schedule} fine-tuning recovers accuracy; masks exact and zero`, () => {
    const noFineTune = evaluateModel(pruneGraph(model, { sparsity: 0.9 }), evaluation).accuracy;
    const tuned = pruneGraph(model, { sparsity: 0.9, fineTune: { data, epochs: 1, schedule, lr: 0.05 } });
    const acc = evaluateModel(tuned, evaluation).accuracy;
    assert.ok(noFineTune < 0.5 && acc > 0.75, `${schedule}: ${noFineTune} -> ${acc}`);
    for (const name of ['fc1.weight', 'fc2.weight']) {
      const t = tuned.tensors[name];
      const pruned = t.mask!.filter((k) => k === 0).length;
      assert.is(pruned, prunedCount(t.data!.length, 0.9), name);
      t.mask!.forEach((k, i) => k || assert.is(t.data![i], 0));
    }
    assert.is(model.tensors['fc1.weight'].mask, undefined, 'the input model is untouched');
  });
}

test('fine-tuning runs inside the prune pass; bad options are E_ARGUMENT', async () => {
  const pass = prune({ sparsity: 0.8, fineTune: { data: sliceRows(data, 0, 200), epochs: 1, schedule: 'one-shot', lr: 0.05 } });
  const acc = evaluateModel(await pass(model, {}), evaluation).accuracy;
  assert.ok(acc > 0.7, String(acc));
  throwsCode(
    () => pruneGraph(model, { sparsity: 0.5, mode: '2:4', fineTune: { data, epochs: 1, schedule: 'polynomial' } }),
    'E_ARGUMENT',
    /polynomial/,
  );
  throwsCode(
    () => pruneGraph(model, { sparsity: 0.5, fineTune: { data: { data: data.data, shape: data.shape }, epochs: 1 } }),
    'E_ARGUMENT',
    /labelled/,
  );
});

test.run();
