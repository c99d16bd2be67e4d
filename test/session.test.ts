/**
 * Sessions as onnxruntime-node users know them: loadModel / create return a
 * handle with input and output names and metadata, run(feeds) takes
 * { data, dims } or { data, shape } (or bare data) and gives named outputs equal
 * to infer(); every bad feed is refused with a stable code; AbortSignal; typed
 * 'fallback' events; several inputs and outputs handled by name (today's engine
 * runs one-input chains, so a two-input model is exercised through a TS model
 * behind the engine core's interface).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { Batcher, type BatcherOptions } from '../lib/engine/batcher';
import { EdgeInferenceEngine, type FallbackEvent, type ModelInfo, type ModelTensors } from '../lib/engine/engine';
import { InferenceSession } from '../lib/engine/session';
import { AbortError } from '../lib/errors';
import { saveModel } from '../lib/model';
import { saveOnnx } from '../lib/model/onnx';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { rejectsCode, sameFloats, throwsCode } from './helpers';

const mnist = mnistTest();
const int8 = quantizeGraph(defaultModel());
const rows = sliceRows(mnist, 0, 5);

test('loadModel returns a session that still carries the load result', async () => {
  const e = new EdgeInferenceEngine();
  const s = await e.loadModel('mnist', int8);
  assert.instance(s, InferenceSession);
  assert.is(s.id, 'mnist');
  assert.equal(s.inputShape, [784]);
  assert.is(s.outputFeatures, 10);
  assert.equal(
    s.placement.map((p) => p.node),
    ['fc1', 'fc2'],
  );
  assert.equal(s.inputNames, ['input']);
  assert.equal(s.outputNames, ['fc2.out']);
  assert.equal(s.inputMetadata, [{ name: 'input', dtype: 'float32', shape: [null, 784] }]);
  assert.equal(s.outputMetadata, [{ name: 'fc2.out', dtype: 'float32', shape: [null, 10] }]);
  assert.equal(e.modelInfo('mnist'), {
    inputs: [{ name: 'input', shape: [null, 784] }],
    outputs: [{ name: 'fc2.out', shape: [null, 10] }],
  });
});

test('run takes { data, dims }, { data, shape } or bare data, and gives named outputs equal to infer()', async () => {
  const e = new EdgeInferenceEngine();
  const s = e.loadModelSync('m', int8);
  const want = e.inferSync('m', { data: rows.data, shape: rows.shape }).data;
  for (const feed of [
    { data: rows.data, dims: [5, 784] },
    { data: rows.data, shape: [5, 784] },
    { data: rows.data, dims: [5, 784], shape: [5, 784] },
    rows.data,
  ]) {
    const out = await s.run({ input: feed });
    assert.equal(Object.keys(out), ['fc2.out']);
    assert.equal(out['fc2.out'].dims, [5, 10]);
    assert.equal(out['fc2.out'].shape, [5, 10]);
    assert.is(out['fc2.out'].dtype, 'float32');
    sameFloats(out['fc2.out'].data, want, 'run');
    sameFloats(s.runSync({ input: feed })['fc2.out'].data, want, 'runSync');
  }
  const viaCore = await e.runModel('m', { input: { data: rows.data, shape: [5, 784] } });
  sameFloats(viaCore['fc2.out'].data, want, 'runModel');
});

test('bad feeds: names, dtypes, dims, values, released sessions', async () => {
  const e = new EdgeInferenceEngine();
  const s = e.loadModelSync('m', int8);
  const x = rows.data;
  throwsCode(() => s.runSync({ image: { data: x, dims: [5, 784] } }), 'E_ARGUMENT', /has no input 'image' \(inputs: input\)/);
  throwsCode(() => s.runSync({}), 'E_ARGUMENT', /input 'input' is missing/);
  throwsCode(() => s.runSync(null as never), 'E_ARGUMENT', /feeds must be an object/);
  throwsCode(() => s.runSync(x as never), 'E_ARGUMENT', /feeds must be an object/);
  throwsCode(
    () => s.runSync({ input: { data: Float64Array.from(x), dims: [5, 784] } as never }),
    'E_DTYPE',
    /takes a Float32Array as data, got Float64Array/,
  );
  throwsCode(() => s.runSync({ input: { data: Array.from(x), dims: [5, 784] } as never }), 'E_DTYPE', /got an Array/);
  throwsCode(() => s.runSync({ input: { data: x } as never }), 'E_SHAPE', /needs dims \(or shape\)/);
  throwsCode(() => s.runSync({ input: { data: x, dims: [5, 28, 28] } }), 'E_SHAPE', /expects dims \[batch, 784\], got \[5, 28, 28\]/);
  throwsCode(() => s.runSync({ input: { data: x, dims: [0, 784] } }), 'E_SHAPE');
  throwsCode(() => s.runSync({ input: { data: x, dims: [4, 784] } }), 'E_SHAPE', /need 3136 values, data has 3920/);
  throwsCode(() => s.runSync({ input: { data: x, dims: [5, 784], shape: [1, 3920] } }), 'E_SHAPE', /differ/);
  throwsCode(() => s.runSync({ input: x.subarray(0, 100) }), 'E_SHAPE', /multiple of 784/);
  const nan = x.slice();
  nan[9] = Infinity;
  await rejectsCode(s.run({ input: { data: nan, dims: [5, 784] } }), 'E_VALUE', /input value 9 is Infinity/);
  await rejectsCode(e.runModel('m', { nope: { data: x, shape: [5, 784] } }), 'E_ARGUMENT', /has no input 'nope' \(inputs: input\)/);
  await rejectsCode(e.runModel('m', { input: x } as never), 'E_ARGUMENT', /must be \{ data: Float32Array, shape \}/);
  await s.release();
  throwsCode(() => s.runSync({ input: x }), 'E_STATE', /released/);
  throwsCode(() => e.modelInfo('m'), 'E_NOT_FOUND');
});

test("EdgeInferenceEngine.create (onnxruntime's InferenceSession.create) from an .onnx and an .eom path; release disposes its engine", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-session-'));
  try {
    saveOnnx(defaultModel(), path.join(dir, 'model.onnx'));
    saveModel(int8, path.join(dir, 'model.eom'));
    const onnx = await EdgeInferenceEngine.create(path.join(dir, 'model.onnx'));
    const eom = await EdgeInferenceEngine.create(path.join(dir, 'model.eom'), { device: 'ts' });
    for (const s of [onnx, eom]) {
      const out = await s.run({ [s.inputNames[0]]: { data: rows.data, dims: [5, 784] } });
      assert.equal(out[s.outputNames[0]].dims, [5, 10]);
    }
    await onnx.release();
    throwsCode(() => onnx.engine.modelInfo('model'), 'E_STATE', /disposed/);
    await eom.release();
    await rejectsCode(EdgeInferenceEngine.create(path.join(dir, 'missing.eom')), 'E_NOT_FOUND');
    await rejectsCode(EdgeInferenceEngine.create(path.join(dir, 'model.eom'), { device: 'gpu' as never }), 'E_ARGUMENT');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('AbortSignal: an aborted signal rejects at once; aborting during a run rejects with AbortError', async () => {
  const e = new EdgeInferenceEngine({ inlineMacs: 0 }); // every run goes through libuv's pool
  const s = e.loadModelSync('m', int8);
  const pre = new AbortController();
  pre.abort();
  await rejectsCode(s.run({ input: rows.data }, { signal: pre.signal }), 'E_ABORTED');
  const ac = new AbortController();
  const big = new Float32Array(2048 * 784).fill(0.5);
  const running = s.run({ input: big }, { signal: ac.signal });
  ac.abort(new Error('timeout'));
  try {
    await running;
    assert.unreachable('resolved after abort');
  } catch (err) {
    assert.instance(err, AbortError);
    assert.is((err as AbortError).name, 'AbortError');
  }
  // The engine is still fine afterwards.
  assert.equal((await s.run({ input: rows.data }))['fc2.out'].dims, [5, 10]);
});

test('a batching session (loadModel option) gives the same bits as an unbatched one', async () => {
  const e = new EdgeInferenceEngine();
  const plain = e.loadModelSync('plain', int8);
  const batched = e.loadModelSync('batched', int8, { batching: { maxBatch: 16, maxDelayMs: 2 } });
  assert.ok(batched.batcher && !plain.batcher);
  const feeds = Array.from({ length: 40 }, (_, i) => ({ input: { data: mnist.data.subarray(i * 784, (i + 1) * 784), dims: [1, 784] } }));
  const got = await Promise.all(feeds.map((f) => batched.run(f)));
  feeds.forEach((f, i) => sameFloats(got[i]['fc2.out'].data, plain.runSync(f)['fc2.out'].data, `row ${i}`));
  await batched.release();
  await rejectsCode(batched.run(feeds[0]), 'E_STATE');
});

test("typed 'fallback' events: the NPU is asked for without a plugin, every node moves to the CPU", () => {
  const e = new EdgeInferenceEngine({ device: 'npu', npuPlugin: '/nonexistent/plugin.so' });
  const seen: FallbackEvent[] = [];
  e.on('fallback', (ev) => {
    const from: 'npu' | 'native' | 'ts' = ev.from; // typed payload
    seen.push({ ...ev, from });
  });
  // @ts-expect-error the engine has no 'fallbak' event: a misspelt event name does not type-check
  e.on('fallbak', () => {});
  e.loadModelSync('m', int8);
  assert.equal(
    seen.map((f) => [f.modelId, f.node, f.from]),
    [
      ['m', 'fc1', 'npu'],
      ['m', 'fc2', 'npu'],
    ],
  );
  assert.match(seen[0].reason, /plugin/);
});

// A two-input, two-output model behind the engine core's interface (what the graph engine will
// run natively): sum = a + b, dot = per-row a . b.
const twoIo: ModelInfo = {
  inputs: [
    { name: 'a', shape: [null, 2] },
    { name: 'b', shape: [null, 2] },
  ],
  outputs: [
    { name: 'sum', shape: [null, 2] },
    { name: 'dot', shape: [null, 1] },
  ],
};
function twoIoModel(f: ModelTensors): ModelTensors {
  const rows = f.a.shape[0];
  const sum = f.a.data.map((v, i) => v + f.b.data[i]);
  const dot = Float32Array.from({ length: rows }, (_, r) => f.a.data[2 * r] * f.b.data[2 * r] + f.a.data[2 * r + 1] * f.b.data[2 * r + 1]);
  return { sum: { data: sum, shape: [rows, 2] }, dot: { data: dot, shape: [rows, 1] } };
}
function twoIoSession(batching?: BatcherOptions): InferenceSession {
  const core = {
    modelInfo: () => twoIo,
    runModel: async (_id: string, f: ModelTensors) => twoIoModel(f),
    runModelSync: (_id: string, f: ModelTensors) => twoIoModel(f),
    batcher: (_id: string, o: BatcherOptions) => new Batcher(async (f) => twoIoModel(f), twoIo, o),
    unloadModel: () => true,
  } as unknown as EdgeInferenceEngine;
  const load = { id: 'two', inputShape: [2], outputFeatures: 2, placement: [] };
  return InferenceSession.open(core, 'two', { load, inputTypes: ['float32', 'float32'] }, { batching: batching ?? false });
}

test('several inputs and outputs: every input by name, the same batch for all, every output by name', async () => {
  for (const s of [twoIoSession(), twoIoSession({ maxBatch: 8, maxDelayMs: 1 })]) {
    assert.equal(s.inputNames, ['a', 'b']);
    assert.equal(s.outputNames, ['sum', 'dot']);
    const a = { data: new Float32Array([1, 2, 3, 4]), dims: [2, 2] };
    const b = { data: new Float32Array([10, 20, 30, 40]), shape: [2, 2] };
    const [x, y] = await Promise.all([s.run({ a, b }), s.run({ b: a, a: b })]);
    assert.equal(Array.from(x.sum.data), [11, 22, 33, 44]);
    assert.equal(Array.from(x.dot.data), [50, 250]);
    assert.equal(x.dot.dims, [2, 1]);
    assert.equal(Array.from(y.dot.data), [50, 250]);
    throwsCode(() => s.prepare({ a }), 'E_ARGUMENT', /input 'b' is missing/);
    throwsCode(() => s.prepare({ a, b, c: a }), 'E_ARGUMENT', /has no input 'c' \(inputs: a, b\)/);
    throwsCode(
      () => s.prepare({ a, b: { data: new Float32Array(2), dims: [1, 2] } }),
      'E_SHAPE',
      /input 'b' has batch 1, the other inputs 2/,
    );
  }
});

test.run();
