/**
 * Dynamic batching: concurrent runs coalesced into batched engine calls give
 * bit-identical results to unbatched calls (fp32, dynamic and static int8,
 * pruned int8 on the sparse kernels, the bundled MNIST model) on the native
 * and TS backends; batches respect maxBatch and maxDelayMs; the bounded queue
 * answers E_BUSY; an AbortSignal takes a queued run out; multi-input,
 * multi-output feeds are concatenated and split by rows. Asserts results and
 * ordering, never durations.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { Batcher, type BatchEvent } from '../lib/engine/batcher';
import { EdgeInferenceEngine, type ModelInfo, type ModelTensors } from '../lib/engine/engine';
import { AbortError, EdgeOptError } from '../lib/errors';
import { mlp } from '../lib/train';
import { applyStaticActivations, observeActivations } from '../lib/optimizer/calibrate';
import { pruneGraph } from '../lib/optimizer/prune';
import { quantizeGraph } from '../lib/optimizer/quantize';
import type { Graph } from '../lib/model/graph';
import { randomF32, rejectsCode, rng, sameFloats, throwsCode } from './helpers';

const mnist = mnistTest();
const fp32 = defaultModel();
const int8 = quantizeGraph(fp32, { bits: 8, granularity: 'channel' });
const staticInt8 = applyStaticActivations(int8, observeActivations(fp32, sliceRows(mnist, 0, 256)));
const odd = mlp([17, 63, 65, 3], { seed: 3 });
const prunedInt8 = quantizeGraph(pruneGraph(mlp([784, 256, 10], { seed: 5 }), { sparsity: 0.9 }));
const devices = backendInfo().native ? (['cpu', 'ts'] as const) : (['ts'] as const);

// A two-input, two-output model in plain TS (the engine of today runs single-input chains):
// sum = a + b element-wise per row, dot = the per-row dot product of a and b.
const multiInfo: ModelInfo = {
  inputs: [
    { name: 'a', shape: [null, 3] },
    { name: 'b', shape: [null, 3] },
  ],
  outputs: [
    { name: 'sum', shape: [null, 3] },
    { name: 'dot', shape: [null, 1] },
  ],
};
function multiModel(feeds: ModelTensors): ModelTensors {
  const { a, b } = feeds;
  const rows = a.shape[0];
  const sum = new Float32Array(rows * 3);
  const dot = new Float32Array(rows);
  for (let i = 0; i < rows * 3; i++) {
    sum[i] = a.data[i] + b.data[i];
    dot[Math.floor(i / 3)] += a.data[i] * b.data[i];
  }
  return { sum: { data: sum, shape: [rows, 3] }, dot: { data: dot, shape: [rows, 1] } };
}

/** Requests of 1..3 rows each, from the rows of `data`. */
function requests(data: Float32Array, features: number, count: number, seed: number): Float32Array[] {
  const r = rng(seed);
  const out: Float32Array[] = [];
  let row = 0;
  const total = data.length / features;
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 3);
    const from = row % (total - 3);
    out.push(data.slice(from * features, (from + n) * features));
    row += n;
  }
  return out;
}

/** Runs every request unbatched (runModelSync), then all at once through a batcher, and compares bits. */
async function assertBatchedExact(g: Graph, x: Float32Array, features: number, label: string, sparse?: 'always'): Promise<number> {
  let batchesOfMany = 0;
  for (const device of devices) {
    const e = new EdgeInferenceEngine({ device, ...(sparse ? { sparse } : {}) });
    e.loadModelSync('m', g);
    const { inputs, outputs } = e.modelInfo('m');
    const inName = inputs[0].name;
    const outName = outputs[0].name;
    const reqs = requests(x, features, 120, 11);
    const want = reqs.map((r) => e.runModelSync('m', { [inName]: { data: r, shape: [r.length / features, features] } })[outName].data);
    const b = e.batcher('m', { maxBatch: 32, maxDelayMs: 5 });
    b.on('batch', (ev: BatchEvent) => (batchesOfMany += ev.requests > 1 ? 1 : 0));
    const got = await Promise.all(
      reqs.map((r) => b.run({ [inName]: { data: r, shape: [r.length / features, features] } }, r.length / features)),
    );
    got.forEach((o, i) => sameFloats(o[outName].data, want[i], `${label} on ${device}: request ${i}`));
    e.dispose();
  }
  return batchesOfMany;
}

test('batched = unbatched, bit for bit: the bundled MNIST model, fp32 and int8 (dynamic and static), native and TS', async () => {
  for (const [g, label] of [
    [fp32, 'fp32'],
    [int8, 'int8 dynamic'],
    [staticInt8, 'int8 static'],
  ] as const) {
    const many = await assertBatchedExact(g, mnist.data, 784, label);
    assert.ok(many > 0, `${label}: some batches held several requests`);
  }
});

test('batched = unbatched on odd shapes (17-63-65-3) and on a 90%-pruned int8 model on the sparse kernels', async () => {
  const x = randomF32(200 * 17, rng(2), 3);
  await assertBatchedExact(odd, x, 17, 'fp32 17-63-65-3');
  await assertBatchedExact(quantizeGraph(odd), x, 17, 'int8 17-63-65-3');
  // sparse 'always': few-row calls and many-row calls take different sparse formats.
  await assertBatchedExact(prunedInt8, mnist.data, 784, 'pruned int8', 'always');
});

test('batches hold at most maxBatch rows, a request is never split, and every row comes back', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 8, maxDelayMs: 1000 });
  const seen: BatchEvent[] = [];
  b.on('batch', (ev) => seen.push(ev));
  const reqs = requests(mnist.data, 784, 30, 4);
  const outs = await Promise.all(reqs.map((r) => b.run({ input: { data: r, shape: [r.length / 784, 784] } }, r.length / 784)));
  outs.forEach((o, i) => assert.equal(o['fc2.out'].shape, [reqs[i].length / 784, 10]));
  const rows = reqs.reduce((a, r) => a + r.length / 784, 0);
  assert.is(
    seen.reduce((a, s) => a + s.rows, 0),
    rows,
  );
  assert.is(
    seen.reduce((a, s) => a + s.requests, 0),
    reqs.length,
  );
  assert.ok(
    seen.every((s) => s.rows <= 8),
    `batch rows ${seen.map((s) => s.rows).join(',')}`,
  );
  assert.ok(seen.length < reqs.length, `${seen.length} batches for ${reqs.length} requests`);
  // maxDelayMs is 1 s: full batches started without waiting for it, and the test finished.
  assert.is(b.queueDepth, 0);
});

test('a request larger than maxBatch runs as its own batch', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 4, maxDelayMs: 0 });
  const seen: number[] = [];
  b.on('batch', (ev) => seen.push(ev.rows));
  const big = sliceRows(mnist, 0, 10);
  const out = await b.run({ input: { data: big.data, shape: big.shape } }, 10);
  sameFloats(out['fc2.out'].data, e.inferSync('m', { data: big.data, shape: big.shape }).data, '10 rows');
  assert.equal(seen, [10]);
});

test('a partial batch starts when its oldest request has waited maxDelayMs', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 64, maxDelayMs: 20 });
  const seen: number[] = [];
  b.on('batch', (ev) => seen.push(ev.requests));
  const one = sliceRows(mnist, 0, 1).data;
  await Promise.all([0, 1, 2].map(() => b.run({ input: { data: one, shape: [1, 784] } }, 1)));
  assert.equal(seen, [3]);
});

test('a full queue rejects with E_BUSY at once; queued runs still finish; close() refuses new runs', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 100, maxDelayMs: 60_000, maxQueue: 4 });
  const one = sliceRows(mnist, 0, 1).data;
  const feed = { input: { data: one, shape: [1, 784] } };
  const queued = [0, 1, 2, 3].map(() => b.run(feed, 1));
  assert.is(b.queueDepth, 4);
  await rejectsCode(b.run(feed, 1), 'E_BUSY', /queue is full \(4 rows waiting, maxQueue 4\)/);
  const closing = b.close();
  await rejectsCode(b.run(feed, 1), 'E_STATE', /closed/);
  const outs = await Promise.all(queued);
  await closing;
  const want = e.inferSync('m', one).data;
  outs.forEach((o, i) => sameFloats(o['fc2.out'].data, want, `queued run ${i}`));
});

test('AbortSignal: a queued run leaves the queue and never runs; an aborted signal rejects at once', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 100, maxDelayMs: 30 });
  const rowsRun: number[] = [];
  b.on('batch', (ev) => rowsRun.push(ev.rows));
  const x = sliceRows(mnist, 0, 2);
  const ac = new AbortController();
  const kept = b.run({ input: { data: x.data.subarray(0, 784), shape: [1, 784] } }, 1);
  const cancelled = b.run({ input: { data: x.data, shape: [2, 784] } }, 2, ac.signal);
  assert.is(b.queueDepth, 3);
  ac.abort(new Error('client went away'));
  assert.is(b.queueDepth, 1);
  try {
    await cancelled;
    assert.unreachable('the aborted run resolved');
  } catch (err) {
    assert.instance(err, AbortError);
    assert.instance(err, EdgeOptError);
    assert.is((err as AbortError).name, 'AbortError');
    assert.is((err as AbortError).code, 'E_ABORTED');
    assert.is(((err as AbortError).cause as Error).message, 'client went away');
  }
  await kept;
  assert.equal(rowsRun, [1]);
  const pre = new AbortController();
  pre.abort();
  await rejectsCode(b.run({ input: { data: x.data, shape: [2, 784] } }, 2, pre.signal), 'E_ABORTED');
  assert.is(b.queueDepth, 0);
});

test('a bad request (NaN, wrong shape) fails alone before it is queued; its batch-mates succeed', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  const b = e.batcher('m', { maxBatch: 8, maxDelayMs: 5 });
  const good = sliceRows(mnist, 0, 1).data;
  const bad = good.slice();
  bad[3] = NaN;
  const runs = [good, bad, good].map((d) => b.run({ input: { data: d, shape: [1, 784] } }, 1));
  const [a, nan, c] = await Promise.allSettled(runs);
  const want = e.inferSync('m', good).data;
  for (const r of [a, c]) {
    assert.is(r.status, 'fulfilled');
    sameFloats((r as PromiseFulfilledResult<ModelTensors>).value['fc2.out'].data, want, 'batch-mate of a bad request');
  }
  assert.is(nan.status, 'rejected');
  assert.is(((nan as PromiseRejectedResult).reason as EdgeOptError).code, 'E_VALUE');
  assert.match(((nan as PromiseRejectedResult).reason as Error).message, /input 'input' value 3 is NaN/);
  await rejectsCode(b.run({ input: { data: good, shape: [2, 392] } }, 1), 'E_SHAPE', /expected \[1, 784\]/);
  await rejectsCode(b.run({ input: { data: good, shape: [1, 784] } }, 2), 'E_SHAPE');
  await rejectsCode(b.run({ nope: { data: good, shape: [1, 784] } }, 1), 'E_ARGUMENT', /feed 'input'/);
});

test('an engine error reaches every request of its batch; the batcher keeps serving', async () => {
  let calls = 0;
  const b = new Batcher(
    async (f) => {
      if (calls++ === 0) throw new EdgeOptError('E_NATIVE', 'the kernel failed');
      return multiModel(f);
    },
    multiInfo,
    { maxDelayMs: 5 },
  );
  const q = { a: { data: new Float32Array(3), shape: [1, 3] }, b: { data: new Float32Array(3), shape: [1, 3] } };
  const first = await Promise.allSettled([b.run(q, 1), b.run(q, 1)]);
  for (const r of first) assert.is(((r as PromiseRejectedResult).reason as EdgeOptError).code, 'E_NATIVE');
  const ok = await b.run(q, 1);
  assert.equal(ok.dot.shape, [1, 1]);
});

test('several inputs and outputs: each input concatenated by rows, each output split back by rows', async () => {
  const batchRows: number[] = [];
  const b = new Batcher(
    async (f) => {
      batchRows.push(f.a.shape[0]);
      return multiModel(f);
    },
    multiInfo,
    { maxBatch: 32, maxDelayMs: 5 },
  );
  const r = rng(9);
  const reqs = Array.from({ length: 10 }, (_, i) => {
    const rows = 1 + (i % 3);
    return { a: { data: randomF32(rows * 3, r), shape: [rows, 3] }, b: { data: randomF32(rows * 3, r), shape: [rows, 3] } };
  });
  const outs = await Promise.all(reqs.map((q) => b.run(q, q.a.shape[0])));
  outs.forEach((o, i) => {
    const want = multiModel(reqs[i]);
    sameFloats(o.sum.data, want.sum.data, `request ${i} sum`);
    sameFloats(o.dot.data, want.dot.data, `request ${i} dot`);
    assert.equal(o.dot.shape, [reqs[i].a.shape[0], 1]);
  });
  assert.equal(batchRows, [reqs.reduce((a, q) => a + q.a.shape[0], 0)]);
});

test('an output that is not batch-major cannot be split: every request gets E_SHAPE', async () => {
  const b = new Batcher(
    async () => ({ sum: { data: new Float32Array(3), shape: [1, 3] }, dot: { data: new Float32Array(1), shape: [1, 1] } }),
    multiInfo,
    {
      maxDelayMs: 5,
    },
  );
  const q = { a: { data: new Float32Array(3), shape: [1, 3] }, b: { data: new Float32Array(3), shape: [1, 3] } };
  const runs = await Promise.allSettled([b.run(q, 1), b.run(q, 1)]);
  for (const r of runs) {
    assert.is(((r as PromiseRejectedResult).reason as EdgeOptError).code, 'E_SHAPE');
    assert.match(((r as PromiseRejectedResult).reason as Error).message, /output 'sum' has batch 1 for 2 input rows/);
  }
});

test('a dynamic dimension (null after the batch): only requests of the same dims share a batch', async () => {
  const info: ModelInfo = { inputs: [{ name: 'x', shape: [null, null] }], outputs: [{ name: 'y', shape: [null, 1] }] };
  const widths: number[][] = [];
  const b = new Batcher(
    async (f) => {
      const [rows, w] = f.x.shape;
      widths.push([rows, w]);
      const y = Float32Array.from({ length: rows }, (_, r) => f.x.data.subarray(r * w, (r + 1) * w).reduce((a, v) => a + v, 0));
      return { y: { data: y, shape: [rows, 1] } };
    },
    info,
    { maxDelayMs: 5 },
  );
  const req = (w: number, v: number) => ({ x: { data: new Float32Array(w).fill(v), shape: [1, w] } });
  const out = await Promise.all([b.run(req(2, 1), 1), b.run(req(2, 2), 1), b.run(req(3, 1), 1), b.run(req(2, 3), 1)]);
  assert.equal(
    out.map((o) => o.y.data[0]),
    [2, 4, 3, 6],
  );
  assert.equal(widths, [
    [2, 2],
    [1, 3],
    [1, 2],
  ]);
});

test('idle() resolves when the last queued run is aborted', async () => {
  const b = new Batcher(async (f) => multiModel(f), multiInfo, { maxDelayMs: 60_000 });
  const ac = new AbortController();
  const q = { a: { data: new Float32Array(3), shape: [1, 3] }, b: { data: new Float32Array(3), shape: [1, 3] } };
  const run = b.run(q, 1, ac.signal).catch((e: unknown) => e);
  const idle = b.idle();
  ac.abort();
  assert.instance(await run, AbortError);
  await idle;
  assert.is(b.queueDepth, 0);
});

test('bad batcher options are E_ARGUMENT', () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', int8);
  throwsCode(() => e.batcher('m', { maxBatch: 0 }), 'E_ARGUMENT', /maxBatch/);
  throwsCode(() => e.batcher('m', { maxBatch: 2.5 }), 'E_ARGUMENT', /maxBatch/);
  throwsCode(() => e.batcher('m', { maxDelayMs: -1 }), 'E_ARGUMENT', /maxDelayMs/);
  throwsCode(() => e.batcher('m', { maxDelayMs: NaN }), 'E_ARGUMENT', /maxDelayMs/);
  throwsCode(() => e.batcher('m', { maxQueue: 0 }), 'E_ARGUMENT', /maxQueue/);
  throwsCode(() => e.batcher('m', { concurrency: 0 }), 'E_ARGUMENT', /concurrency/);
  throwsCode(() => e.batcher('nope'), 'E_NOT_FOUND', /no model 'nope'/);
});

test.run();
