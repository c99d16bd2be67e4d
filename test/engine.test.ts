/**
 * The engine on the bundled PyTorch MLP and real MNIST digits: accuracy equal
 * to PyTorch's, logits equal to onnxruntime's, native and TS in agreement, and
 * every bad input rejected with a stable code.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine, type FallbackEvent } from '../lib/engine/engine';
import { argmaxRows, evaluateModel } from '../lib/optimizer/evaluate';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { closeFloats, FIXTURES, readF32, rejectsCode, sameFloats, throwsCode } from './helpers';

const fp32 = defaultModel();
const int8 = quantizeGraph(fp32, { bits: 8, granularity: 'channel' });
const mnist = mnistTest();
const ortLogits = readF32(path.join(FIXTURES, 'mlp-784-128-10', 'test-logits.bin'));
const native = backendInfo().native;

test('fp32 logits match onnxruntime within 1e-4 and accuracy equals PyTorch (93.95 %)', () => {
  const ev = evaluateModel(fp32, mnist);
  closeFloats(ev.logits, ortLogits, { abs: 1e-4 }, 'logits vs onnxruntime');
  assert.is(Math.round(ev.accuracy * 10000), 9395);
});

test('int8 per-channel stays within 0.3 points of fp32 and changes few predictions', () => {
  const f = evaluateModel(fp32, mnist);
  const q = evaluateModel(int8, mnist);
  assert.ok(Math.abs(q.accuracy - f.accuracy) <= 0.003, `int8 ${q.accuracy} vs fp32 ${f.accuracy}`);
  const changed = q.predictions.reduce((c, p, i) => c + (p !== f.predictions[i] ? 1 : 0), 0);
  assert.ok(changed <= 8, `${changed} rows changed`);
});

test('native and TS engines agree: int8 bit-exact, fp32 within 1e-5', () => {
  if (!native) return; // nothing to compare against; the TS path is checked against onnxruntime above
  const batch = sliceRows(mnist, 0, 100);
  for (const [g, exact] of [
    [int8, true],
    [fp32, false],
  ] as const) {
    const n = new EdgeInferenceEngine({ device: 'cpu' });
    const t = new EdgeInferenceEngine({ device: 'ts' });
    n.loadModelSync('m', g);
    t.loadModelSync('m', g);
    const a = n.inferSync('m', { data: batch.data, shape: batch.shape }).data;
    const b = t.inferSync('m', { data: batch.data, shape: batch.shape }).data;
    if (exact) sameFloats(a, b, 'int8 native vs ts');
    else closeFloats(a, b, { abs: 1e-5, rel: 1e-5 }, 'fp32 native vs ts');
  }
});

test('batched results equal row-by-row results (per-row activation quantization)', () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('q', int8);
  const batch = sliceRows(mnist, 0, 7);
  const all = e.inferSync('q', { data: batch.data, shape: batch.shape }).data;
  for (let r = 0; r < 7; r++) {
    const one = e.inferSync('q', batch.data.subarray(r * 784, (r + 1) * 784)).data;
    sameFloats(one, all.subarray(r * 10, (r + 1) * 10), `row ${r}`);
  }
});

test('infer is asynchronous and gives the same answer as inferSync', async () => {
  const e = new EdgeInferenceEngine();
  await e.loadModel('q', int8);
  const batch = sliceRows(mnist, 0, 64);
  const results = await Promise.all([0, 1, 2, 3].map(() => e.infer('q', { data: batch.data, shape: batch.shape })));
  const sync = e.inferSync('q', { data: batch.data, shape: batch.shape });
  for (const r of results) sameFloats(r.data, sync.data, 'async vs sync');
  assert.equal(sync.shape, [64, 10]);
  assert.equal(Array.from(argmaxRows(sync.data, 64)).slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 2, 9]);
});

test('placement says where each node runs; a forced fallback is announced', () => {
  const e = new EdgeInferenceEngine({ device: 'ts' });
  e.loadModelSync('m', fp32);
  assert.equal(
    e.placement('m').map((p) => [p.node, p.backend]),
    [
      ['fc1', 'ts'],
      ['fc2', 'ts'],
    ],
  );
  const auto = new EdgeInferenceEngine();
  const events: FallbackEvent[] = [];
  auto.on('fallback', (ev) => events.push(ev));
  auto.loadModelSync('m', fp32);
  const p = auto.placement('m');
  if (native) {
    assert.ok(p.every((x) => x.backend === 'native' && !x.reason));
    assert.is(events.length, 0);
  } else {
    assert.ok(p.every((x) => x.backend === 'ts' && x.reason));
    assert.is(events.length, 2);
    throwsCode(() => new EdgeInferenceEngine({ device: 'cpu', strict: true }).loadModelSync('m', fp32), 'E_NATIVE');
  }
});

test('the seed object form runs: output = input . W, ReLU by default', () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('seed', {
    architecture: 'tiny',
    weights: [
      [
        [1, -1],
        [2, 0.5],
        [0, 1],
      ],
      { data: new Float32Array([1, 2]), shape: [2, 1] },
    ],
    biases: [[0, -10], [0.5]],
    activations: ['relu', 'none'],
  });
  // x = [1, 1, 1]: layer 1 = relu([3, 0.5] + [0, -10]) = [3, 0]; layer 2 = 3*1 + 0*2 + 0.5 = 3.5
  const y = e.inferSync('seed', new Float32Array([1, 1, 1]));
  assert.equal(Array.from(y.data), [3.5]);
});

test('bad inputs throw EdgeOptError with stable codes naming the model', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('mnist', int8);
  throwsCode(() => e.inferSync('mnist', new Float64Array(784) as never), 'E_DTYPE', /'mnist'.*Float32Array.*Float64Array/);
  throwsCode(() => e.inferSync('mnist', [1, 2, 3] as never), 'E_DTYPE', /an Array/);
  throwsCode(() => e.inferSync('mnist', new Float32Array(783)), 'E_SHAPE', /\[batch, 784\]/);
  throwsCode(
    () => e.inferSync('mnist', { data: new Float32Array(784), shape: [1, 28, 28] }),
    'E_SHAPE',
    /expects input shape \[batch, 784\]/,
  );
  throwsCode(() => e.inferSync('mnist', { data: new Float32Array(784), shape: [2, 784] }), 'E_SHAPE', /needs 1568/);
  const nan = new Float32Array(784);
  nan[5] = NaN;
  throwsCode(() => e.inferSync('mnist', nan), 'E_VALUE', /value 5 is NaN/);
  // Past the native scan's first 1024-value block, with a later one that must not be named.
  const inf = new Float32Array(784 * 4);
  inf[2049] = -Infinity;
  inf[3000] = Infinity;
  throwsCode(() => e.inferSync('mnist', { data: inf, shape: [4, 784] }), 'E_VALUE', /value 2049 is -Infinity/);
  throwsCode(() => e.inferSync('nope', new Float32Array(784)), 'E_NOT_FOUND', /'nope'/);
  await rejectsCode(e.infer('mnist', new Float32Array(3)), 'E_SHAPE');
  throwsCode(() => new EdgeInferenceEngine({ device: 'gpu' as never }), 'E_ARGUMENT', /device/);
  throwsCode(() => e.loadModelSync('bad', { architecture: 'x', weights: [[[1, 2], [3]]] }), 'E_SHAPE', /rectangular/);
  throwsCode(() => e.loadModelSync('bad', { architecture: 'x', weights: [[[1, NaN]]] }), 'E_VALUE', /NaN/);
  if (native) throwsCode(() => new EdgeInferenceEngine({ kernel: 'avx9000' }).loadModelSync('m', fp32), 'E_ISA', /avx9000/);
  // The engine still works after all of that.
  assert.is(e.inferSync('mnist', new Float32Array(784)).data.length, 10);
  e.dispose();
  throwsCode(() => e.inferSync('mnist', new Float32Array(784)), 'E_STATE');
});

test.run();
