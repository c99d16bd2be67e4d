/**
 * The engine in a Node service: long inferences leave the event loop free,
 * many concurrent calls never mix results, unloading during calls is safe,
 * and the addon loads in several worker_threads at once. Runs on whichever
 * backend is active (also under EDGEOPT_FORCE_TS=1). Asserts ordering, never durations.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { applyStaticActivations, observeActivations } from '../lib/optimizer/calibrate';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { randomF32, rejectsCode, rng, sameFloats } from './helpers';

const native = backendInfo().native;
const int8 = quantizeGraph(defaultModel(), { bits: 8, granularity: 'channel' });
const mnist = mnistTest();
const staticInt8 = applyStaticActivations(int8, observeActivations(defaultModel(), sliceRows(mnist, 0, 256)));
const tiny = { architecture: 'tiny', weights: [Array.from({ length: 784 }, (_, i) => [(i % 7) / 7 - 0.5, (i % 5) / 5 - 0.4, 0.01])] };

test('a timer scheduled during a long infer fires before the inference resolves', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('q', int8);
  // Native runs on libuv's pool; TS yields between row chunks of each layer.
  const rows = native ? 4096 : 1400;
  const x = sliceRows(mnist, 0, 1).data;
  const big = new Float32Array(rows * 784);
  for (let r = 0; r < rows; r++) big.set(x, r * 784);
  const order: string[] = [];
  const run = e.infer('q', big).then(() => order.push('infer'));
  setTimeout(() => order.push('timer'), 0);
  await run;
  assert.equal(order, ['timer', 'infer']);
});

test('1000 concurrent mixed calls on three models all return their own correct results', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('dyn', int8);
  e.loadModelSync('static', staticInt8);
  e.loadModelSync('tiny', tiny);
  const ids = ['dyn', 'static', 'tiny'];
  const r = rng(7);
  const calls = Array.from({ length: 1000 }, (_, i) => {
    const rows = 1 + (i % 3);
    const x = randomF32(rows * 784, r);
    return { id: ids[i % 3], x, want: e.inferSync(ids[i % 3], x).data };
  });
  const got = await Promise.all(calls.map((c) => e.infer(c.id, c.x)));
  got.forEach((g, i) => sameFloats(g.data, calls[i].want, `call ${i} (${calls[i].id})`));
});

test('unloadModel during in-flight calls: they finish correctly, new calls are rejected', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('q', int8);
  const batch = sliceRows(mnist, 0, 64);
  const want = e.inferSync('q', { data: batch.data, shape: batch.shape }).data;
  const inflight = Array.from({ length: 20 }, () => e.infer('q', { data: batch.data, shape: batch.shape }));
  assert.ok(e.unloadModel('q'));
  await rejectsCode(e.infer('q', batch.data), 'E_NOT_FOUND');
  for (const r of await Promise.all(inflight)) sameFloats(r.data, want, 'in-flight result');
});

test('4 worker_threads load the addon and run the model at once', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('q', int8);
  const batch = sliceRows(mnist, 0, 32);
  const want = e.inferSync('q', { data: batch.data, shape: batch.shape }).data;
  const script = path.join(__dirname, 'fixtures', 'engine-worker.ts');
  const results = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<{ native: boolean; data: Float32Array }>((resolve, reject) => {
          const w = new Worker(`require('tsx/cjs'); require(${JSON.stringify(script)});`, {
            eval: true,
            workerData: { rows: 32 },
            env: process.env,
          });
          w.once('message', (m) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  for (const r of results) {
    assert.is(r.native, native);
    sameFloats(r.data, want, 'worker result');
  }
});

test.run();
