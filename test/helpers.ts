/** Shared test helpers: seeded random data, fixtures, error assertions. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { EdgeOptError } from '../lib/errors';
import { validateGraph, type Graph } from '../lib/model/graph';

export const FIXTURES = path.join(__dirname, 'fixtures');

/** mulberry32: a small deterministic PRNG so every run sees the same data (the one training uses). */
export { seededRandom as rng } from '../lib/train/random';

export function randomU8(n: number, r: () => number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}
export function randomS8(n: number, r: () => number): Int8Array {
  return Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
}
export function randomF32(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Float32 arrays equal bit for bit (+0 and -0 count as equal). */
export function sameFloats(a: Float32Array, b: Float32Array, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) assert.unreachable(`${what}: element ${i}: ${a[i]} !== ${b[i]}`);
  }
}

export function closeFloats(a: ArrayLike<number>, b: ArrayLike<number>, tol: { abs?: number; rel?: number }, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    const lim = (tol.abs ?? 0) + (tol.rel ?? 0) * Math.max(Math.abs(a[i]), Math.abs(b[i]));
    if (!(d <= lim)) assert.unreachable(`${what}: element ${i}: ${a[i]} vs ${b[i]} (diff ${d} > ${lim})`);
  }
}

export function sameInts(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.unreachable(`${what}: element ${i}: ${a[i]} !== ${b[i]}`);
}

/** Asserts that fn throws (or rejects with) an EdgeOptError of this code whose message matches. */
export function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, EdgeOptError, `expected EdgeOptError, got ${String(err)}`);
    assert.is((err as EdgeOptError).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}, nothing was thrown`);
}

export async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, EdgeOptError, `expected EdgeOptError, got ${String(err)}`);
    assert.is((err as EdgeOptError).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}, the promise resolved`);
}

export function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Runs a graph once on a fresh engine (default device) and returns its output. */
export function inferOnce(g: Graph, x: Float32Array, shape: number[]): Float32Array {
  const engine = new EdgeInferenceEngine();
  try {
    engine.loadModelSync('m', g);
    return engine.inferSync('m', { data: x, shape }).data;
  } finally {
    engine.dispose();
  }
}

/** One static-int8 QDense layer of 4 inputs and 3 outputs: the smallest graph an NPU plugin compiles. */
export function staticInt8Layer(activation?: 'relu'): Graph {
  return validateGraph({
    name: 'fc',
    inputs: [{ name: 'x', shape: [null, 4] }],
    outputs: ['y'],
    tensors: {
      w: {
        name: 'w',
        dtype: 'int8',
        shape: [3, 4],
        data: new Int8Array([1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12]),
        quant: { bits: 8, scheme: 'symmetric', scale: new Float32Array([0.1, 0.2, 0.3]), axis: 0 },
      },
    },
    nodes: [
      {
        name: 'fc',
        op: 'QDense',
        inputs: ['x', 'w'],
        outputs: ['y'],
        attrs: { ...(activation ? { activation } : {}), activationQuant: 'static', inputScale: 0.02, inputZeroPoint: -5 },
      },
    ],
    metadata: {},
  });
}

/**
 * Central differences of `loss` over up to `samples` entries of `data` (changed in place and put
 * back) against the analytic gradient `grad`: ‖a - fd‖ / (‖a‖ + ‖fd‖), or the absolute ‖a - fd‖
 * where both are about zero (gradients that are exactly zero in theory, such as a conv bias before BN).
 */
export function finiteDifferenceError(data: Float32Array, grad: Float32Array, loss: () => number, samples = 24): number {
  let diff = 0;
  let norm = 0;
  const step = Math.max(1, Math.floor(data.length / samples));
  for (let i = 0; i < data.length; i += step) {
    const v = data[i];
    const eps = 2e-3 * Math.max(1, Math.abs(v));
    data[i] = v + eps;
    const up = loss();
    data[i] = v - eps;
    const down = loss();
    data[i] = v;
    const fd = (up - down) / (2 * eps);
    diff += (fd - grad[i]) ** 2;
    norm += (Math.abs(fd) + Math.abs(grad[i])) ** 2;
  }
  return norm > 1e-6 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
}

export type Ort = typeof import('onnxruntime-node');

/**
 * onnxruntime-node, the interop peer, or undefined with a note naming the
 * skipped checks: when the package is not installed, and under
 * EDGEOPT_TEST_NO_ORT (test:arm64 sets it: the arm64 onnxruntime binary dies
 * with SIGSEGV on load under qemu-user, which no try/catch can catch).
 */
export function optionalOrt(what: string): Ort | undefined {
  if (process.env.EDGEOPT_TEST_NO_ORT) {
    console.log(`note: EDGEOPT_TEST_NO_ORT is set; skipping ${what}`);
    return undefined;
  }
  try {
    return require('onnxruntime-node') as Ort;
  } catch {
    console.log(`note: onnxruntime-node is not installed; skipping ${what} (npm install --save-dev onnxruntime-node)`);
    return undefined;
  }
}
