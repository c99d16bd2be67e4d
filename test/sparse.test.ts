/**
 * Sparse int8 kernels: the TS CSR kernel equals the dense TS GEMM bit for bit
 * on odd shapes and densities 0..1; the engine picks sparse kernels for a
 * 90%-pruned model and dense ones for an unpruned one, and the outputs are
 * identical whatever it picks (native and TS). Never asserts times.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { gemmU8S8 } from '../lib/backends/ts/kernels';
import { gemmCsrU8S8, packCsrS8 } from '../lib/backends/ts/sparse';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { pruneGraph } from '../lib/optimizer/prune';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { mlp } from '../lib/train/init';
import { seededRandom } from '../lib/train/random';
import { randomF32, randomU8, sameFloats, sameInts, throwsCode } from './helpers';

const native = backendInfo().native;

/** Int8 weights with each kept with probability `density`; every third row and fifth column empty when `holes`. */
function prunedS8(n: number, k: number, density: number, holes: boolean, r: () => number): Int8Array {
  const w = new Int8Array(n * k);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < k; i++) {
      const keep = r() < density && !(holes && (j % 3 === 1 || i % 5 === 2));
      if (keep) w[j * k + i] = (Math.floor(r() * 256) - 128) | 1;
    }
  }
  return w;
}

test('TS CSR GEMM equals the dense TS GEMM bit for bit (odd shapes, densities 0..1, empty rows/columns)', () => {
  const r = seededRandom(8);
  for (const [m, k, n] of [
    [1, 1, 1],
    [3, 17, 5],
    [7, 65, 33],
    [2, 784, 17],
    [17, 129, 64],
  ]) {
    for (const density of [0, 0.05, 0.3, 0.5, 0.9, 1]) {
      for (const holes of [false, true]) {
        const w = prunedS8(n, k, density, holes, r);
        const a = randomU8(m * k, r);
        const zp = Int32Array.from({ length: m }, () => Math.floor(r() * 256));
        sameInts(gemmCsrU8S8(a, zp, m, packCsrS8(w, n, k)), gemmU8S8(a, zp, m, k, w, n), `m=${m} k=${k} n=${n} density=${density}`);
      }
    }
  }
  // Extreme values: a = 255 against w = -128 everywhere it is kept.
  const w = new Int8Array(31 * 200).map((_, i) => (i % 3 ? -128 : 0));
  const a = new Uint8Array(2 * 200).fill(255);
  const zp = new Int32Array([0, 255]);
  sameInts(gemmCsrU8S8(a, zp, 2, packCsrS8(w, 31, 200)), gemmU8S8(a, zp, 2, 200, w, 31), 'extreme values');
});

// A pruned, int8-quantized mlp-784-256-128-10 (seeded weights).
function prunedModel(sparsity: number, mode: 'unstructured' | '2:4' = 'unstructured') {
  const g = mlp([784, 256, 128, 10], { seed: 3 });
  const pruned = sparsity > 0 || mode === '2:4' ? pruneGraph(g, { sparsity, mode }) : g;
  return quantizeGraph(pruned, { bits: 8, granularity: 'channel' });
}

const pruned90 = prunedModel(0.9);
const dense = prunedModel(0);
const twoFour = prunedModel(0.5, '2:4');

function run(engine: EdgeInferenceEngine, id: string, rows: number): Float32Array {
  const x = randomF32(rows * 784, seededRandom(rows), 1);
  return engine.inferSync(id, { data: x, shape: [rows, 784] }).data;
}

const qdenseKernels = (e: EdgeInferenceEngine, id: string) =>
  e
    .placement(id)
    .filter((p) => p.op === 'QDense')
    .map((p) => p.kernel ?? '');

test('placement: sparse kernels for a 90%-pruned model, dense for an unpruned one', () => {
  const e = new EdgeInferenceEngine({ device: native ? 'cpu' : 'ts' });
  e.loadModelSync('p90', pruned90);
  e.loadModelSync('dense', dense);
  const sparse = qdenseKernels(e, 'p90');
  assert.ok(
    sparse.slice(0, 2).every((k) => k.startsWith('sparse')),
    `90% pruned: ${sparse.join(', ')}`,
  );
  assert.ok(
    qdenseKernels(e, 'dense').every((k) => k.startsWith('dense')),
    `unpruned: ${qdenseKernels(e, 'dense').join(', ')}`,
  );
  const never = new EdgeInferenceEngine({ device: native ? 'cpu' : 'ts', sparse: 'never' });
  never.loadModelSync('p90', pruned90);
  assert.ok(
    qdenseKernels(never, 'p90').every((k) => k.startsWith('dense')),
    'sparse: never',
  );
  const always = new EdgeInferenceEngine({ device: native ? 'cpu' : 'ts', sparse: 'always' });
  always.loadModelSync('dense', dense);
  assert.ok(
    qdenseKernels(always, 'dense').every((k) => k.startsWith('sparse')),
    'sparse: always',
  );
});

test('outputs are identical with sparse auto / always / never, native and TS, 2:4 too', () => {
  const devices = native ? (['cpu', 'ts'] as const) : (['ts'] as const);
  for (const [name, model] of [
    ['p90', pruned90],
    ['2:4', twoFour],
    ['dense', dense],
  ] as const) {
    for (const rows of [1, 5, 40]) {
      let reference: Float32Array | undefined;
      for (const device of devices) {
        for (const sparse of ['never', 'auto', 'always'] as const) {
          const e = new EdgeInferenceEngine({ device, sparse, threads: 2 });
          e.loadModelSync(name, model);
          const y = run(e, name, rows);
          if (reference) sameFloats(y, reference, `${name} rows=${rows} ${device} sparse=${sparse}`);
          else reference = y;
        }
      }
    }
  }
});

test('the sparse option is validated', () => {
  throwsCode(() => new EdgeInferenceEngine({ sparse: 'sometimes' as never }), 'E_ARGUMENT', /sparse/);
});

test.run();
