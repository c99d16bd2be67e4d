/**
 * What a call promises, whatever the backend (lib/engine/execute.ts): the input
 * is read when the call is made (mutating it during an in-flight call changes
 * nothing; a streamed batch is read block by block), large batches stream in
 * blocks with the same results as one call,
 * an overflow to NaN/Infinity is E_VALUE, inline calls let the event loop turn,
 * and every graph walk is iterative (a long chain of nodes never overflows the
 * stack).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { EdgeInferenceEngine, type Device } from '../lib/engine/engine';
import { blockRows } from '../lib/engine/execute';
import { lowerGraph } from '../lib/engine/lower';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { randomF32, rejectsCode, rng, sameFloats, throwsCode } from './helpers';

const native = backendInfo().native;
const devices: Device[] = native ? ['cpu', 'ts'] : ['ts'];
const fp32 = defaultModel();
const int8 = quantizeGraph(fp32);
const mnist = mnistTest();

function engine(device: Device, model = fp32) {
  const e = new EdgeInferenceEngine({ device });
  e.loadModelSync('m', model);
  return e;
}

for (const device of devices) {
  test(`${device}: mutating the input during an in-flight infer() does not change its result`, async () => {
    const e = engine(device);
    const x = mnist.data.slice(0, 64 * 784);
    const want = e.inferSync('m', x).data;
    const pending = e.infer('m', { data: x, shape: [64, 784] });
    x.fill(Number.NaN);
    sameFloats((await pending).data, want, 'in-flight call');
  });

  test(`${device}: finite inputs that overflow float32 are E_VALUE, not NaN outputs`, async () => {
    const e = engine(device);
    const x = new Float32Array(2 * 784).fill(3.4e38);
    throwsCode(
      () => e.inferSync('m', x),
      'E_VALUE',
      /output 'fc2.out' value 0 is (NaN|-?Infinity): the computation overflowed float32 \(the largest input magnitude is 3\.40e\+38/,
    );
    await rejectsCode(e.infer('m', x), 'E_VALUE', /overflowed float32/);
    await rejectsCode(e.runModel('m', { [e.modelInfo('m').inputs[0].name]: { data: x, shape: [2, 784] } }), 'E_VALUE', /overflowed/);
    e.inferSync('m', new Float32Array(784).fill(1e3)); // large but harmless inputs still run
  });
}

test('a batch larger than a block streams in blocks with the same results as one synchronous call', async () => {
  for (const device of devices) {
    for (const model of [fp32, int8]) {
      const block = blockRows(lowerGraph(model));
      const rows = 2 * block + 3; // two full blocks and a short one
      const x = randomF32(rows * 784, rng(7));
      const e = engine(device, model);
      const want = e.inferSync('m', x).data;
      const got = await e.infer('m', { data: x, shape: [rows, 784] });
      assert.equal(got.shape, [rows, 10]);
      sameFloats(got.data, want, `${device} ${model === int8 ? 'int8' : 'fp32'}, ${rows} rows in blocks of ${block}`);
    }
  }
});

test('a 60,000-row call (180 MiB of input) streams: its peak RSS grows by far less than a copy of the input', () => {
  if (!native || process.platform !== 'linux') return; // getrusage's maxRSS is in KB on Linux
  const rows = 60_000;
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'bench', 'large-batch.js'), '--child', 'engine', String(rows)], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  assert.is(r.status, 0, r.stderr);
  const { extraPeakMb } = JSON.parse(r.stdout) as { extraPeakMb: number };
  const inputMb = (rows * 784 * 4) / 2 ** 20;
  assert.ok(extraPeakMb < inputMb / 3, `+${extraPeakMb.toFixed(0)} MB of peak RSS for a ${inputMb.toFixed(0)} MiB input`);
});

test('a loop of inline infer() calls lets 10 ms timers fire', async () => {
  if (!native) return;
  const e = engine('cpu');
  const x = mnist.data.slice(0, 784);
  let fired = 0;
  const timer = setInterval(() => fired++, 10);
  const end = performance.now() + 300;
  let calls = 0;
  try {
    while (performance.now() < end) {
      await e.infer('m', x);
      calls++;
    }
  } finally {
    clearInterval(timer);
  }
  assert.ok(calls > 100, `${calls} calls ran inline`);
  // Without the turns none fires; a loaded machine may deschedule the process for tens of ms, so only a few are required.
  assert.ok(fired >= 3, `${fired} of ~30 timers fired during ${calls} inline calls`);
});

test('an unloaded model still answers the inline call that was waiting for the event loop', async () => {
  if (!native) return;
  const e = engine('cpu');
  const x = mnist.data.slice(0, 784);
  const want = e.inferSync('m', x).data;
  const end = performance.now() + 20;
  while (performance.now() < end) await e.infer('m', x); // starve the loop: the next call waits for a turn
  const pending = e.infer('m', x);
  e.unloadModel('m');
  sameFloats((await pending).data, want, 'call made before the unload');
});

test('20,000-node chains at a tenth of the default stack: every walk is iterative (validate, lower, partition, run, ONNX)', () => {
  for (const op of ['Add', 'Relu']) {
    const r = spawnSync(
      process.execPath,
      ['--stack-size=100', '--import', 'tsx', path.join(__dirname, 'fixtures', 'long-graph.ts'), '20000', op],
      { encoding: 'utf8', timeout: 240_000 },
    );
    assert.is(r.status, 0, `${op}: ${r.signal ?? ''} ${r.stderr.slice(-2000)}`);
    const steps = JSON.parse(r.stdout) as Record<string, string>;
    for (const [step, outcome] of Object.entries(steps)) assert.is(outcome, 'ok', `${op} chain, ${step}`);
    assert.ok(Object.keys(steps).length >= 4, JSON.stringify(steps));
  }
});

test.run();
