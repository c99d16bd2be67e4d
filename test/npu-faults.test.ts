/**
 * A plugin is vendor code: the host must survive whatever it can detect. With
 * the reference plugin's injected misbehaviours: describe() lying about the
 * batch or the widths, C++ exceptions out of every entry point, calls that
 * never return (with more calls waiting than libuv has threads), out-of-range
 * answers (supports() = 7, a 2^62-byte blob, a 1 MB error message, a
 * capabilities struct written past its end); and the loading rules (absolute
 * paths only, no NUL bytes, no world-writable files, EDGEOPT_NPU_PLUGIN alone
 * loads nothing). Every case ends in an E_PLUGIN/E_ARGUMENT error or in correct
 * results from the CPU, with the reason in placement().
 */
import { pbkdf2 } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, nativeAddon } from '../lib/backends';
import { compileNpuGraph, loadNpuBlob, loadNpuPlugin, referenceNpuPluginPath } from '../lib/backends/npu';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine, type EngineOptions, type FallbackEvent } from '../lib/engine/engine';
import { lowerGraph } from '../lib/engine/lower';
import { fromNative } from '../lib/errors';
import { applyStaticActivations, observeActivations } from '../lib/optimizer/calibrate';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { randomF32, rng, sameFloats, staticInt8Layer, throwsCode } from './helpers';

const native = backendInfo().native;
const mnist = mnistTest();
const model = applyStaticActivations(quantizeGraph(defaultModel()), observeActivations(defaultModel(), sliceRows(mnist, 0, 256)));
const batch = sliceRows(mnist, 256, 320);
const input = { data: batch.data, shape: batch.shape };
const plugin = native ? referenceNpuPluginPath() : '';
// One int8 layer as a one-op Program (what supports() and compileNpuGraph take).
const layer = lowerGraph(staticInt8Layer());

function withFault<T>(fault: string, fn: () => T): T {
  process.env.EDGEOPT_REFNPU_FAULT = fault;
  try {
    return fn();
  } finally {
    delete process.env.EDGEOPT_REFNPU_FAULT;
  }
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

let cpuWant: Float32Array | undefined;
function cpuResult(): Float32Array {
  if (cpuWant) return cpuWant;
  const e = new EdgeInferenceEngine({ device: 'cpu' });
  e.loadModelSync('m', model);
  return (cpuWant = e.inferSync('m', input).data);
}

function npuEngine(options: EngineOptions = {}) {
  const e = new EdgeInferenceEngine({ device: 'npu', npuPlugin: plugin, ...options });
  const events: FallbackEvent[] = [];
  e.on('fallback', (ev) => events.push(ev));
  return { e, events };
}

test('describe() reporting a batch of 2^31, 2^32-1 or 0, or the wrong widths, is E_PLUGIN; the engine runs those nodes on the CPU', () => {
  if (!native) return;
  const p = loadNpuPlugin(plugin);
  for (const fault of ['batch:2147483648', 'batch:4294967295', 'batch:0']) {
    withFault(fault, () => throwsCode(() => compileNpuGraph(p, layer, 4), 'E_PLUGIN', /describe reports batch \d+, outside 1\.\.65536/));
  }
  withFault('widths', () => throwsCode(() => compileNpuGraph(p, layer, 4), 'E_PLUGIN', /widths 4 -> 4 for a graph compiled as 4 -> 3/));
  const { e, events } = withFault('batch:4294967295', () => {
    const r = npuEngine();
    r.e.loadModelSync('m', model);
    return r;
  });
  assert.ok(
    e.placement('m').every((x) => x.backend === 'native' && /batch 4294967295/.test(x.reason!)),
    JSON.stringify(e.placement('m')),
  );
  assert.is(events.length, 2);
  sameFloats(e.inferSync('m', input).data, cpuResult(), 'CPU results');
});

test('a C++ exception from any plugin function is E_PLUGIN, never terminate()', async () => {
  if (!native) return;
  const threw = (fn: string) => new RegExp(`${fn} threw a C\\+\\+ exception: injected exception in ${fn}`);
  withFault('throw:init', () => throwsCode(() => loadNpuPlugin(plugin), 'E_PLUGIN', threw('init')));
  const p = loadNpuPlugin(plugin);
  withFault('throw:supports', () => assert.match(p.supports(layer)!, threw('supports'))); // a failed answer is a no
  withFault('throw:compile', () => throwsCode(() => compileNpuGraph(p, layer, 4), 'E_PLUGIN', threw('compile')));
  withFault('throw:describe', () => throwsCode(() => compileNpuGraph(p, layer, 4), 'E_PLUGIN', threw('describe')));
  const g = compileNpuGraph(p, layer, 4);
  const x = randomF32(4 * 5, rng(1));
  const blob = g.exportBlob();
  withFault('throw:export_blob', () => throwsCode(() => g.exportBlob(), 'E_PLUGIN', threw('export_blob')));
  withFault('throw:load_blob', () => throwsCode(() => loadNpuBlob(p, blob), 'E_PLUGIN', threw('load_blob')));
  withFault('throw:execute', () => throwsCode(() => g.runSync(x, 5), 'E_PLUGIN', threw('execute')));
  process.env.EDGEOPT_REFNPU_FAULT = 'throw:execute';
  try {
    await g.run(x, 5).then(
      () => assert.unreachable('execute threw'),
      (err) => assert.match(fromNative(err).message, threw('execute')),
    );
    const { e } = npuEngine();
    e.loadModelSync('m', model);
    sameFloats((await e.infer('m', input)).data, cpuResult(), 'engine falls back to the CPU');
    assert.ok(e.placement('m').every((x) => x.backend === 'native' && /threw a C\+\+ exception/.test(x.reason!)));
  } finally {
    delete process.env.EDGEOPT_REFNPU_FAULT;
  }
  sameFloats(g.runSync(x, 5), loadNpuBlob(p, blob).runSync(x, 5), 'the plugin still works after the exceptions');
});

test('an execute() that never returns: calls fail over to the CPU after the timeout, the plugin is marked broken, libuv stays free', async () => {
  if (!native) return;
  const { e, events } = npuEngine({ npuTimeoutMs: 300 });
  e.loadModelSync('m', model);
  process.env.EDGEOPT_REFNPU_FAULT = 'hang:execute';
  try {
    const calls = Array.from({ length: 8 }, () => e.infer('m', input)); // more than libuv's 4 threads
    for (const r of await within(10_000, 'the calls on a hung plugin', Promise.all(calls))) sameFloats(r.data, cpuResult(), 'failed over');
  } finally {
    delete process.env.EDGEOPT_REFNPU_FAULT;
  }
  const status = e.npuStatus();
  assert.is(status.healthy, false);
  assert.match(status.plugin!.broken!, /execute did not return within 300 ms; the plugin is marked broken/);
  assert.ok(e.placement('m').every((p) => p.backend === 'native' && /did not return within 300 ms/.test(p.reason!)));
  assert.equal(
    events.map((ev) => [ev.node, ev.to]),
    [
      ['fc1', 'native'],
      ['fc2', 'native'],
    ],
  );
  // libuv's pool is free: crypto and fs work run at once.
  await within(
    5000,
    'pbkdf2 on libuv',
    new Promise((resolve, reject) => pbkdf2('x', 'y', 1000, 32, 'sha256', (err, k) => (err ? reject(err) : resolve(k)))),
  );
  await within(5000, 'readFile on libuv', fs.promises.readFile(__filename));
  sameFloats(e.inferSync('m', input).data, cpuResult(), 'later calls run on the CPU');
  // A new engine loading the same library gets its own plugin instance and thread: it works.
  const { e: fresh } = npuEngine({ strict: true });
  fresh.loadModelSync('m', model);
  sameFloats((await fresh.infer('m', input)).data, cpuResult(), 'a fresh instance');
});

test('load, compile and supports() that never return are cut off too; the engine loads on the CPU', () => {
  if (!native) return;
  for (const [fault, what] of [
    ['hang:init', 'loading|init'],
    ['hang:supports', 'supports'],
    ['hang:compile', 'compile'],
  ]) {
    const { e, events } = withFault(fault, () => {
      const r = npuEngine({ npuTimeoutMs: 200, npuCompileTimeoutMs: 200 });
      r.e.loadModelSync('m', model);
      return r;
    });
    const reason = new RegExp(`(${what}) did not return within 200 ms`);
    assert.ok(
      e.placement('m').every((p) => p.backend === 'native' && reason.test(p.reason!)),
      `${fault}: ${JSON.stringify(e.placement('m'))}`,
    );
    assert.ok(events.length >= 1, fault);
    sameFloats(e.inferSync('m', input).data, cpuResult(), fault);
  }
});

test('out-of-range answers are checked: supports() = 7, a 2^62-byte blob, a 1 MB error, capabilities past the struct', () => {
  if (!native) return;
  const p = loadNpuPlugin(plugin);
  withFault('supports-rc', () => assert.match(p.supports(layer)!, /supports\(\) returned 7, neither 0 nor 1/));
  const g = compileNpuGraph(p, layer, 4);
  withFault('export-size', () => throwsCode(() => g.exportBlob(), 'E_PLUGIN', /asks for 4611686018427387904 bytes/));
  withFault('long-error', () => {
    try {
      g.runSync(randomF32(4, rng(2)), 1);
      assert.unreachable('execute failed');
    } catch (err) {
      const e = fromNative(err);
      assert.is(e.code, 'E_PLUGIN');
      assert.ok(e.message.length < 1200, `message of ${e.message.length} characters`);
    }
  });
  const caps = withFault('caps-overflow', () => loadNpuPlugin(plugin).info().capabilities);
  assert.is(caps.maxChannels, 2048);
  assert.is(caps.threadSafe, false);
});

test('loading: absolute paths only, no NUL bytes, no world-writable files', () => {
  if (!native) return;
  const relative = path.relative(process.cwd(), plugin);
  throwsCode(() => loadNpuPlugin(relative), 'E_ARGUMENT', /must be absolute/);
  throwsCode(() => loadNpuPlugin('edgeopt_npu_ref.so'), 'E_ARGUMENT', /must be absolute/);
  throwsCode(() => loadNpuPlugin(`${plugin}\0.txt`), 'E_ARGUMENT', /NUL byte/);
  throwsCode(() => new EdgeInferenceEngine({ npuPlugin: relative }), 'E_ARGUMENT', /npuPlugin .* must be absolute/);
  // The binding refuses them too, should anything call it directly.
  const raw = (nativeAddon()!.npu as { NpuPlugin: new (p: string) => unknown }).NpuPlugin;
  for (const [p, message] of [
    [`${plugin}\0.txt`, /NUL byte/],
    [relative, /must be absolute/],
  ] as const) {
    throwsCode(
      () => {
        try {
          new raw(p);
        } catch (err) {
          throw fromNative(err);
        }
      },
      'E_PLUGIN',
      message,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-npu-'));
  try {
    const copy = path.join(dir, 'plugin.so');
    fs.copyFileSync(plugin, copy);
    fs.chmodSync(copy, 0o777);
    throwsCode(() => loadNpuPlugin(copy), 'E_PLUGIN', /writable by every user/);
    fs.chmodSync(copy, 0o755);
    assert.is(loadNpuPlugin(copy).info().name, 'edgeopt-reference-npu');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('EDGEOPT_NPU_PLUGIN alone loads nothing into a default engine; an engine that asks for the NPU uses it', () => {
  if (!native) return;
  process.env.EDGEOPT_NPU_PLUGIN = plugin;
  try {
    const auto = new EdgeInferenceEngine();
    const events: FallbackEvent[] = [];
    auto.on('fallback', (ev) => events.push(ev));
    auto.loadModelSync('m', model);
    assert.ok(auto.placement('m').every((p) => p.backend === 'native' && !p.reason));
    assert.is(events.length, 0);
    assert.is(auto.npuStatus().plugin, null);
    const npu = new EdgeInferenceEngine({ device: 'npu' });
    npu.loadModelSync('m', model);
    assert.ok(npu.placement('m').every((p) => p.backend === 'npu'));
    process.env.EDGEOPT_NPU_PLUGIN = 'libvendor.so';
    throwsCode(() => new EdgeInferenceEngine({ device: 'npu' }), 'E_ARGUMENT', /EDGEOPT_NPU_PLUGIN .* must be absolute/);
  } finally {
    delete process.env.EDGEOPT_NPU_PLUGIN;
  }
});

test('engine NPU timeouts are checked', () => {
  throwsCode(() => new EdgeInferenceEngine({ npuTimeoutMs: 0 }), 'E_ARGUMENT', /npuTimeoutMs/);
  throwsCode(() => new EdgeInferenceEngine({ npuCompileTimeoutMs: 1.5 }), 'E_ARGUMENT', /npuCompileTimeoutMs/);
});

test.run();
