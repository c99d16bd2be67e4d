/**
 * Native resources follow the model, not the garbage collector: one intra-op
 * pool per thread count for the whole process (loading a model starts no
 * thread), native memory freed by unloadModel/dispose (after in-flight calls)
 * and reported to V8 while it is held. The 10,000-cycle soak runs in a child
 * process so its thread count and RSS are its own.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeAddon } from '../lib/backends';
import { defaultModel } from '../lib/data/bundled';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { lowerGraph } from '../lib/engine/lower';
import { fromNative } from '../lib/errors';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { rejectsCode, sameFloats, throwsCode } from './helpers';

const addon = nativeAddon();
const linux = process.platform === 'linux';

test('10,000 load/unload cycles (int8 MLP, LeNet-5, mobilenet-mini) with threads: 16 keep the OS thread count constant and RSS within +50 MB', () => {
  if (!addon || !linux) return;
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'fixtures', 'load-cycles.ts'), '10000', '16'],
    {
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  assert.is(r.status, 0, `${r.signal ?? ''} ${r.stderr}`);
  const { before, after } = JSON.parse(r.stdout) as Record<'before' | 'after', { threads: number; rss: number }>;
  assert.is(after.threads, before.threads, 'OS threads');
  const grown = (after.rss - before.rss) / 2 ** 20;
  assert.ok(grown < 50, `RSS grew by ${grown.toFixed(1)} MB`);
});

test('a native program reports its constant bytes to V8 while it holds them, and release() gives them back', () => {
  if (!addon) return;
  const program = lowerGraph(quantizeGraph(defaultModel()));
  const bytes = program.tensors.reduce((n, t) => n + (t.data ? t.data.byteLength : 0), 0);
  assert.ok(bytes > 100_000, `${bytes} constant bytes`);
  const base = addon.externalMemory();
  const p = new addon.Program(program, undefined, 2);
  assert.is(addon.externalMemory() - base, bytes);
  p.release();
  assert.is(addon.externalMemory(), base);
});

test('unloadModel and dispose release native programs, after the calls in flight have finished', async () => {
  if (!addon) return;
  // 16 MB of fp32 weights: their release stands out from the small arrays the calls allocate.
  const layer = (k: number, n: number) => ({ data: new Float32Array(k * n).fill(1e-3), shape: [k, n] as [number, number] });
  const big = { architecture: 'big', weights: [layer(2048, 2048), layer(2048, 10)] };
  const e = new EdgeInferenceEngine({ device: 'cpu' });
  e.loadModelSync('m', big);
  const x = { data: new Float32Array(64 * 2048).fill(0.25), shape: [64, 2048] };
  const want = e.inferSync('m', x).data;
  const inflight = Array.from({ length: 8 }, () => e.infer('m', x));
  const held = addon.externalMemory();
  e.unloadModel('m');
  assert.is(addon.externalMemory(), held, 'nothing is freed under a running call');
  for (const r of await Promise.all(inflight)) sameFloats(r.data, want, 'in-flight call after unload');
  assert.ok(held - addon.externalMemory() >= 16 * 2 ** 20, `freed ${held - addon.externalMemory()} bytes once the calls were done`);
  await rejectsCode(e.infer('m', x), 'E_NOT_FOUND');
  const small = defaultModel();
  e.loadModelSync('a', big);
  const one = addon.externalMemory();
  e.loadModelSync('a', small); // replacing a model frees the old one
  assert.ok(one - addon.externalMemory() >= 15 * 2 ** 20, `the replaced model is freed: ${one - addon.externalMemory()}`);
  e.loadModelSync('b', big);
  const two = addon.externalMemory();
  e.dispose();
  assert.ok(two - addon.externalMemory() >= 16 * 2 ** 20, 'dispose frees every model');
});

test('a released program refuses to run (E_STATE) instead of touching freed memory', () => {
  if (!addon) return;
  const p = new addon.Program(lowerGraph(defaultModel()));
  const x = [new Float32Array(784)];
  p.release();
  p.release();
  const native = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw fromNative(err);
    }
  };
  throwsCode(() => native(() => p.runSync(x, 1)), 'E_STATE', /released/);
  throwsCode(() => native(() => p.run(x, 1)), 'E_STATE', /released/);
  throwsCode(() => native(() => p.opKernels), 'E_STATE', /released/);
});

test.run();
