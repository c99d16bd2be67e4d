/**
 * Classifier calibration after the last round (calibrate.ts, CCVR): per-class feature statistics,
 * their pooling, the retrained head, and the statistics phase on the wire.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sliceRows } from '../lib/data/dataset';
import { mnistTest } from '../lib/data/bundled';
import {
  calibrateHead,
  calibrationHead,
  classStats,
  decodeStats,
  encodeStats,
  poolStats,
  type ClassStats,
} from '../lib/federated/calibrate';
import { encodeFrame } from '../lib/federated/codec';
import { readParams } from '../lib/federated/params';
import { partition, simulate } from '../lib/federated/simulate';
import { FederatedServer } from '../lib/federated/server';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { mlp } from '../lib/train/init';
import { train as trainModel } from '../lib/train/trainer';
import { call, small, startServer, task, tokens, train, updateFrame } from './fl-helpers';
import { closeFloats, randomF32, rng, sameFloats, throwsCode } from './helpers';

const head = calibrationHead(small);
const rows = sliceRows(train, 0, 300);

/** The statistics of one set of labelled feature rows, computed directly in float64. */
function direct(f: Float32Array, labels: ArrayLike<number>, c: number, d: number): { n: number[]; mean: number[]; cov: number[] } {
  const n = new Array(c).fill(0);
  const mean = new Array(c * d).fill(0);
  const cov = new Array(c * d * d).fill(0);
  for (let i = 0; i < labels.length; i++) {
    n[labels[i]]++;
    for (let a = 0; a < d; a++) mean[labels[i] * d + a] += f[i * d + a];
  }
  for (let y = 0; y < c; y++) for (let a = 0; a < d; a++) mean[y * d + a] /= n[y] || 1;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++) cov[(y * d + a) * d + b] += (f[i * d + a] - mean[y * d + a]) * (f[i * d + b] - mean[y * d + b]);
  }
  for (let y = 0; y < c; y++) for (let k = 0; k < d * d; k++) cov[y * d * d + k] /= n[y] || 1;
  return { n, mean, cov };
}

test('calibrationHead: the final Dense layer; a model ending otherwise is refused', () => {
  assert.equal({ classes: head.classes, dim: head.dim, weight: head.weight }, { classes: 10, dim: 8, weight: 'fc2.weight' });
  const relu = mlp([4, 3], { seed: 1 });
  relu.nodes[0] = { ...relu.nodes[0], attrs: { activation: 'relu' } };
  throwsCode(() => calibrationHead(relu), 'E_ARGUMENT', /without activation/);
  throwsCode(() => new FederatedServer({ model: relu, clients: tokens, rounds: 1, calibrate: true }), 'E_ARGUMENT');
});

test("classStats: a client's per-class counts, means and covariances of the head's input features", () => {
  const s = classStats(small, rows);
  // The features by hand: the hidden layer's ReLU outputs.
  const w = small.tensors['fc1.weight'].data as Float32Array;
  const b = small.tensors['fc1.bias'].data as Float32Array;
  const f = new Float32Array(300 * 8);
  for (let i = 0; i < 300; i++)
    for (let h = 0; h < 8; h++) {
      let v = b[h];
      for (let k = 0; k < 784; k++) v += rows.data[i * 784 + k] * w[h * 784 + k];
      f[i * 8 + h] = Math.max(0, v);
    }
  const want = direct(f, rows.labels!, 10, 8);
  assert.equal([...s.count], want.n);
  closeFloats(s.mean, want.mean, { abs: 1e-4, rel: 1e-4 }, 'mean');
  closeFloats(s.cov, want.cov, { abs: 1e-4, rel: 1e-3 }, 'covariance');
});

test('poolStats: the pooled statistics of several clients are those of the union of their rows', () => {
  const r = rng(5);
  const n = 90;
  const f = randomF32(n * 3, r, 2);
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 4);
  const part = (lo: number, hi: number): ClassStats => {
    const d = direct(f.subarray(lo * 3, hi * 3), labels.subarray(lo, hi), 4, 3);
    return { count: Float32Array.from(d.n), mean: Float32Array.from(d.mean), cov: Float32Array.from(d.cov) };
  };
  // One client holds no row of some class (count 0: it must not move that class).
  const pooled = poolStats([part(0, 30), part(30, 31), part(31, 90)], { classes: 4, dim: 3 });
  const all = direct(f, labels, 4, 3);
  assert.equal([...pooled.count], all.n);
  closeFloats(pooled.mean, all.mean, { abs: 1e-5 }, 'mean');
  closeFloats(pooled.cov, all.cov, { abs: 1e-4 }, 'covariance');
});

test('decodeStats refuses a wrong size, a missing tensor, a non-finite value and a fractional count', () => {
  const s = classStats(small, rows);
  const tensors = () => encodeStats(s, head).map((t) => ({ name: t.name, data: Float32Array.from(t.parts[0] as Float32Array) }));
  sameFloats(decodeStats(tensors(), head).cov, s.cov, 'round trip');
  const short = tensors();
  short[1].data = short[1].data.subarray(1);
  throwsCode(() => decodeStats(short, head), 'E_SHAPE', /calibration\.mean/);
  throwsCode(() => decodeStats(tensors().slice(0, 2), head), 'E_SHAPE');
  const nan = tensors();
  nan[2].data[5] = NaN;
  throwsCode(() => decodeStats(nan, head), 'E_VALUE');
  const frac = tensors();
  frac[0].data[0] = 1.5;
  throwsCode(() => decodeStats(frac, head), 'E_VALUE', /count/);
});

test('calibrateHead retrains only the final Dense layer, and fixes a classifier biased by label skew', () => {
  // A classifier trained on two classes only: the others' rows are pushed down.
  const biased = twoClassModel();
  const test10 = sliceRows(mnistTest(), 0, 1000);
  const before = evaluateModel(biased, test10).accuracy;
  const parts = partition(train, 5, 2, 1).map((p) => classStats(biased, p));
  const after = calibrateHead(biased, poolStats(parts, head), { seed: 1 });
  for (const name of ['fc1.weight', 'fc1.bias'])
    sameFloats(after.tensors[name].data as Float32Array, biased.tensors[name].data as Float32Array, name);
  assert.not.equal([...(after.tensors['fc2.weight'].data as Float32Array)], [...(biased.tensors['fc2.weight'].data as Float32Array)]);
  const gained = evaluateModel(after, test10).accuracy;
  assert.ok(gained > before + 0.02, `calibrated ${gained} against ${before}`);
  throwsCode(() => calibrateHead(biased, poolStats(parts, head), { samplesPerClass: 0 }), 'E_ARGUMENT');
});

/** small trained on digits 0 and 1 only (one epoch of SGD). */
function twoClassModel() {
  const keep = [...train.labels!].map((y, i) => (y < 2 ? i : -1)).filter((i) => i >= 0);
  const data = new Float32Array(keep.length * 784);
  keep.forEach((i, r) => data.set(train.data.subarray(i * 784, (i + 1) * 784), r * 784));
  const two = { data, shape: [keep.length, 784], labels: Int32Array.from(keep.map((i) => train.labels![i])) };
  return trainModel(small, two, { epochs: 1, lr: 0.05, seed: 1 }).model;
}

test('the statistics phase on the wire: after the last round tasks say stats, bad statistics get 400, the server is done once calibrated', async () => {
  const { server, url } = await startServer({
    clients: { a: tokens.a, b: tokens.b },
    rounds: 1,
    calibrate: { samplesPerClass: 50 },
    evaluate: () => ({ accuracy: 0.5 }),
  });
  const events: string[] = [];
  server.on('round', () => events.push('round'));
  server.on('calibrated', () => events.push('calibrated'));
  server.on('done', () => events.push('done'));
  try {
    for (const t of [tokens.a, tokens.b]) await task(url, t);
    const zero = Object.fromEntries(Object.entries(readParams(small)).map(([k, v]) => [k, new Float32Array(v.length)]));
    const frame = updateFrame(1, zero);
    for (const t of [tokens.a, tokens.b]) assert.is((await call(url, t, 'POST', '/v1/update', frame)).status, 200);
    assert.equal(events, ['round']);
    assert.is(server.done, false);
    const stats = await task(url, tokens.a);
    assert.is(stats.meta.status, 'stats');
    // A weight update now is refused (409); statistics of the wrong size get 400; neither counts.
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', frame)).status, 409);
    const s = classStats(small, rows);
    const bad = encodeStats(s, head);
    bad[1] = { ...bad[1], parts: [new Float32Array(3)] };
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', encodeFrame({ status: 'stats', round: 1 }, bad))).status, 400);
    const good = encodeFrame({ status: 'stats', round: 1 }, encodeStats(s, head));
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', good)).status, 200);
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', good)).status, 409, 'twice');
    assert.is(server.done, false);
    assert.is((await task(url, tokens.a)).meta.status, 'wait');
    assert.is((await call(url, tokens.b, 'POST', '/v1/update', good)).status, 200);
    assert.equal(events, ['round', 'calibrated', 'done']);
    assert.is(server.done, true);
    assert.is((await task(url, tokens.b)).meta.status, 'done');
    assert.not.equal(
      [...(server.model.tensors['fc2.weight'].data as Float32Array)],
      [...(small.tensors['fc2.weight'].data as Float32Array)],
    );
  } finally {
    await server.close();
  }
});

test('calibrate is refused with dp, and for a head whose statistics would outgrow an update', () => {
  throwsCode(
    () => new FederatedServer({ model: small, clients: tokens, rounds: 1, calibrate: true, dp: { clipNorm: 1 } }),
    'E_ARGUMENT',
    /dp/,
  );
  const wide = mlp([4, 512, 100], { seed: 1 });
  throwsCode(() => new FederatedServer({ model: wide, clients: tokens, rounds: 1, calibrate: true }), 'E_ARGUMENT', /statistics/);
});

test('fl simulate with calibrate: clients send their statistics over HTTP and the calibrated model is the final one', async () => {
  const r = await simulate({
    clients: 4,
    rounds: 1,
    nonIid: 2,
    hidden: [16],
    calibrate: { samplesPerClass: 100 },
    test: sliceRows(mnistTest(), 0, 500),
  });
  assert.ok(r.calibration, 'calibration ran');
  assert.is(r.finalAccuracy, r.calibration!.accuracy);
  assert.ok(r.calibration!.bytesSent > 4 * 4 * 10 * 16 * 17, `${r.calibration!.bytesSent} bytes`);
  assert.ok(r.calibration!.accuracy > r.rounds[0].accuracy, `${r.calibration!.accuracy} against ${r.rounds[0].accuracy}`);
  const plain = await simulate({ clients: 4, rounds: 1, nonIid: 2, hidden: [16], test: sliceRows(mnistTest(), 0, 500) });
  assert.is(plain.calibration, null, 'off by default for the MLP');
});

test('fl simulate: calibration is on by default for a label-skewed mobilenet-mini, off for an IID one', async () => {
  const run = (nonIid?: number) =>
    simulate({
      clients: 2,
      rounds: 1,
      nonIid,
      model: 'mobilenet-mini',
      data: sliceRows(train, 0, 128),
      test: sliceRows(mnistTest(), 0, 100),
      fit: { epochs: 1 },
      seed: 2,
    });
  const skewed = await run(5);
  assert.ok(skewed.calibration, 'non-IID: calibrated');
  assert.is(skewed.finalAccuracy, skewed.calibration!.accuracy);
  assert.is((await run()).calibration, null, 'IID: not calibrated');
});

test.run();
