/**
 * The NPU plugin path with the reference plugin (a simulated int8 NPU):
 * bit-exact results against the CPU, partitioning around its limits, every
 * injected fault ending in correct results plus a reason (or an error with
 * strict), and clear E_PLUGIN errors from the loader.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { packageRoot } from '../lib/backends/native/addon';
import { compileNpuGraph, loadNpuBlob, loadNpuPlugin, referenceNpuPluginPath } from '../lib/backends/npu';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { loadModel } from '../lib/model';
import { lowerGraph } from '../lib/engine/lower';
import { EdgeInferenceEngine, type EngineOptions, type FallbackEvent } from '../lib/engine/engine';
import { applyStaticActivations, observeActivations } from '../lib/optimizer/calibrate';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { randomF32, rejectsCode, rng, sameFloats, staticInt8Layer, throwsCode } from './helpers';

const native = backendInfo().native;
const mnist = mnistTest();
const calib = sliceRows(mnist, 0, 256);
const batch = sliceRows(mnist, 256, 356);
const fp32 = defaultModel();
const dynamicInt8 = quantizeGraph(fp32, { bits: 8, granularity: 'channel' });
const staticInt8 = applyStaticActivations(dynamicInt8, observeActivations(fp32, calib));
const plugin = native ? referenceNpuPluginPath() : '';
const input = { data: batch.data, shape: batch.shape };

/** A 784-128-2100-10 MLP: its 2100-wide layers exceed the reference NPU's 2048 channels. */
function wideModel() {
  const r = rng(3);
  const layer = (k: number, n: number) => ({ data: randomF32(k * n, r, 0.1), shape: [k, n] as [number, number] });
  const f = { architecture: 'wide', weights: [layer(784, 128), layer(128, 2100), layer(2100, 10)], activations: ['relu', 'relu', 'none'] };
  const g = loadModel(f);
  return applyStaticActivations(quantizeGraph(g, {}), observeActivations(g, calib));
}

function withFault<T>(fault: string, fn: () => T): T {
  process.env.EDGEOPT_REFNPU_FAULT = fault;
  try {
    return fn();
  } finally {
    delete process.env.EDGEOPT_REFNPU_FAULT;
  }
}

function npuEngine(options: EngineOptions = {}) {
  const e = new EdgeInferenceEngine({ device: 'npu', npuPlugin: plugin, ...options });
  const events: FallbackEvent[] = [];
  e.on('fallback', (ev) => events.push(ev));
  return { e, events };
}

function cpuResult(graph = staticInt8) {
  const e = new EdgeInferenceEngine({ device: 'cpu' });
  e.loadModelSync('m', graph);
  return e.inferSync('m', input).data;
}

test('reference plugin: loads, describes its limits', () => {
  if (!native) return;
  const info = loadNpuPlugin(plugin).info();
  assert.is(info.abiVersion, 1);
  assert.equal(info.capabilities.dtypes, ['int8']);
  assert.is(info.capabilities.maxChannels, 2048);
  assert.ok(info.capabilities.staticActivations && !info.capabilities.dynamicActivations && info.capabilities.perChannelWeights);
});

test('a calibrated int8 model runs wholly on the NPU, bit-identical to native CPU and TS', async () => {
  if (!native) return;
  const { e, events } = npuEngine({ strict: true });
  e.loadModelSync('m', staticInt8);
  assert.equal(
    e.placement('m').map((p) => [p.node, p.backend]),
    [
      ['fc1', 'npu'],
      ['fc2', 'npu'],
    ],
  );
  assert.is(events.length, 0);
  const want = cpuResult();
  sameFloats(e.inferSync('m', input).data, want, 'npu sync vs native');
  sameFloats((await e.infer('m', input)).data, want, 'npu async vs native');
  const ts = new EdgeInferenceEngine({ device: 'ts' });
  ts.loadModelSync('m', staticInt8);
  sameFloats(ts.inferSync('m', input).data, want, 'ts vs native');
  const xs = Array.from({ length: 200 }, (_, i) => sliceRows(mnist, i, i + 1 + (i % 5)));
  const got = await Promise.all(xs.map((x) => e.infer('m', { data: x.data, shape: x.shape })));
  got.forEach((g, i) => sameFloats(g.data, ts.inferSync('m', { data: xs[i].data, shape: xs[i].shape }).data, `concurrent ${i}`));
});

test('a model wider than 2048 channels is split across NPU and CPU, and placement says why', () => {
  if (!native) return;
  const g = wideModel();
  const { e, events } = npuEngine();
  e.loadModelSync('w', g);
  const p = e.placement('w');
  assert.equal(
    p.map((x) => x.backend),
    ['npu', 'native', 'native'],
  );
  assert.match(p[1].reason!, /2048 channels/);
  assert.equal(
    events.map((ev) => [ev.node, ev.from, ev.to]),
    [
      ['fc2', 'npu', 'native'],
      ['fc3', 'npu', 'native'],
    ],
  );
  sameFloats(e.inferSync('w', input).data, cpuResult(g), 'split vs native');
  throwsCode(() => npuEngine({ strict: true }).e.loadModelSync('w', g), 'E_PLUGIN', /fc2.*2048/);
});

test('dynamically quantized layers stay on the CPU with the reason', () => {
  if (!native) return;
  const { e } = npuEngine();
  e.loadModelSync('d', dynamicInt8);
  for (const p of e.placement('d')) {
    assert.is(p.backend, 'native');
    assert.match(p.reason!, /static per-tensor scales/);
  }
});

test('fault: compile failure moves the nodes to the CPU (strict: E_PLUGIN)', () => {
  if (!native) return;
  withFault('compile', () => {
    const { e, events } = npuEngine();
    e.loadModelSync('m', staticInt8);
    assert.ok(e.placement('m').every((p) => p.backend === 'native' && /compile failed.*injected/.test(p.reason!)));
    assert.is(events.length, 2);
    sameFloats(e.inferSync('m', input).data, cpuResult(), 'after compile failure');
    throwsCode(() => npuEngine({ strict: true }).e.loadModelSync('m', staticInt8), 'E_PLUGIN', /compile failed/);
  });
});

for (const fault of ['execute:1', 'wrong-size']) {
  test(`fault ${fault}: the request is re-run on the CPU and the plugin is marked unhealthy (strict: E_PLUGIN)`, async () => {
    if (!native) return;
    const { e, events } = withFault(fault, () => {
      const r = npuEngine();
      r.e.loadModelSync('m', staticInt8);
      return r;
    });
    const want = cpuResult();
    sameFloats((await e.infer('m', input)).data, want, 'failed call');
    assert.ok(e.placement('m').every((p) => p.backend === 'native' && /unhealthy/.test(p.reason!)));
    assert.equal(
      events.map((ev) => [ev.node, ev.from, ev.to]),
      [
        ['fc1', 'npu', 'native'],
        ['fc2', 'npu', 'native'],
      ],
    );
    assert.is(e.npuStatus().healthy, false);
    sameFloats(e.inferSync('m', input).data, want, 'later call');
    const strict = withFault(fault, () => {
      const r = npuEngine({ strict: true });
      r.e.loadModelSync('m', staticInt8);
      return r.e;
    });
    await rejectsCode(strict.infer('m', input), 'E_PLUGIN', /strict/);
  });
}

test('fault load / missing plugin: auto falls back with a reason, npu + strict throws E_PLUGIN', () => {
  if (!native) return;
  withFault('load', () => {
    const { e, events } = npuEngine({ device: 'auto' });
    e.loadModelSync('m', staticInt8);
    assert.ok(e.placement('m').every((p) => p.backend === 'native' && /device failed to open/.test(p.reason!)));
    assert.is(events.length, 2);
    throwsCode(() => npuEngine({ strict: true }).e.loadModelSync('m', staticInt8), 'E_PLUGIN', /init failed/);
  });
  const missing = { npuPlugin: '/nonexistent/libvendor_npu.so' };
  const { e } = npuEngine({ device: 'auto', ...missing });
  e.loadModelSync('m', staticInt8);
  assert.ok(e.placement('m').every((p) => p.backend === 'native' && /not found/.test(p.reason!)));
  throwsCode(() => npuEngine({ strict: true, ...missing }).e.loadModelSync('m', staticInt8), 'E_PLUGIN', /libvendor_npu\.so' not found/);
  throwsCode(
    () => new EdgeInferenceEngine({ device: 'npu', strict: true }).loadModelSync('m', staticInt8),
    'E_PLUGIN',
    /no NPU plugin is configured/,
  );
});

test('loader: missing entry point, wrong ABI version and a short table are E_PLUGIN errors', () => {
  if (!native) return;
  // The addon itself is a valid shared library without the entry point.
  const addonPath = (require('node-gyp-build') as { path(dir: string): string }).path(packageRoot);
  throwsCode(() => loadNpuPlugin(addonPath), 'E_PLUGIN', /does not export edgeopt_npu_plugin_v1/);
  withFault('abi-version', () => throwsCode(() => loadNpuPlugin(plugin), 'E_PLUGIN', /ABI version 999.*supports version 1/));
  withFault('table-size', () => throwsCode(() => loadNpuPlugin(plugin), 'E_PLUGIN', /8-byte function table/));
});

test('a compiled graph exports a blob that load_blob runs identically; bad blobs are refused', () => {
  if (!native) return;
  const p = loadNpuPlugin(plugin);
  const g = compileNpuGraph(p, lowerGraph(staticInt8Layer('relu')), 4);
  const x = randomF32(4 * 9, rng(1));
  const blob = g.exportBlob();
  sameFloats(loadNpuBlob(p, blob).runSync(x, 9), g.runSync(x, 9), 'blob vs compiled');
  throwsCode(() => loadNpuBlob(p, blob.subarray(0, blob.length - 3)), 'E_PLUGIN', /bad blob: truncated/);
});

test.run();
