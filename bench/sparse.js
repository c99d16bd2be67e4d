// Sparse int8 kernels vs the dense int8 kernel: `npm run bench -- sparse [--json]
// [--threads=1,2] [--shapes=1x4096x4096,...] [--sparsity=0.5,0.7,2:4] [--isa=avx2] [--max-time=0.3]`.
//
// Each row is one int8 layer (a one-op native Program: quantize, GEMM, epilogue; only the
// GEMM differs) packed dense (`sparse: 'never'`), sparse (`sparse: 'always'`)
// and as the engine's rule picks (`auto`: the sparse table's measured
// crossovers, e.g. the window format below 16 rows and CSR from 16), on the
// same randomly pruned weights, timed back to back in the same run (CPU time
// for one thread, see measure), so the ratios hold on a shared machine. Then end to end: a
// 90%-pruned and a 2:4 mlp-784-256-128-10 through EdgeInferenceEngine with
// sparse 'never' vs 'auto'. Benchmarks are never assertions.
'use strict';
const path = require('node:path');

const SHAPES = [
  [1, 4096, 4096],
  [8, 4096, 4096],
  [64, 1024, 1024],
];
const SPARSITIES = [0.5, 0.7, 0.8, 0.9, 0.95, '2:4'];

function parseArgs(argv) {
  const opts = { json: false, threads: [1, 2], shapes: SHAPES, sparsity: SPARSITIES, isa: undefined, maxTime: 0.3 };
  for (const a of argv) {
    const [key, value] = a.split('=');
    if (key === '--json') opts.json = true;
    else if (key === '--threads') opts.threads = value.split(',').map(Number);
    else if (key === '--shapes') opts.shapes = value.split(',').map((s) => s.split('x').map(Number));
    else if (key === '--sparsity') opts.sparsity = value.split(',').map((s) => (s === '2:4' ? s : Number(s)));
    else if (key === '--isa') opts.isa = value;
    else if (key === '--max-time') opts.maxTime = Number(value);
    else throw new Error(`sparse bench: unknown argument ${a}`);
  }
  return opts;
}

// Deterministic pruned int8 weights [n][k]: a uniform random mask at `sparsity`, or 2 of every 4 along K.
function prunedWeights(n, k, sparsity, seed) {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const w = new Int8Array(n * k);
  for (let j = 0; j < n; j++)
    for (let i = 0; i < k; i++) {
      const keep = sparsity === '2:4' ? (i + j) % 4 < 2 : next() >= sparsity;
      if (keep) w[j * k + i] = (Math.floor(next() * 255) - 127) | 1;
    }
  return w;
}

// Samples of one call each until maxTime has passed (at least 5), after one
// to warm up. One thread: the process's CPU time, so the other processes of a
// shared machine do not count (a long run is preempted many times); more
// threads: wall time.
function measure(fn, maxTime, threads = 1) {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const clock = threads === 1 ? cpu : () => performance.now() / 1e3;
  fn();
  const sample = [];
  const end = Date.now() + maxTime * 1000;
  while (sample.length < 5 || (Date.now() < end && sample.length < 1000)) {
    const t0 = clock();
    fn();
    sample.push(clock() - t0);
  }
  return { sample, mean: sample.reduce((a, b) => a + b) / sample.length };
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** One int8 layer as a one-op Program (lib/engine/program.ts): x [k] -> qdense -> y [n]. */
function layer(addon, w, n, k, sparse, isa, threads) {
  const program = {
    name: 'layer',
    tensors: [
      { name: 'x', dtype: 'float32', shape: [k], layout: 'plain', bytes: 4 * k },
      { name: 'y', dtype: 'float32', shape: [n], layout: 'plain', bytes: 4 * n },
      { name: 'w', dtype: 'int8', shape: [n, k], layout: 'plain', data: w },
      { name: 's', dtype: 'float32', shape: [n], layout: 'plain', data: new Float32Array(n).fill(0.01) },
    ],
    ops: [{ op: 'qdense', node: 'fc', x: 0, y: 1, weight: 2, scales: 3, m: 1, n, k, zeroPoint: 0, groupSize: 0, act: { kind: 'none' } }],
    inputs: [{ name: 'x', tensor: 0, shape: [k] }],
    outputs: [{ name: 'y', tensor: 1, shape: [n] }],
    arenaBytes: 0,
    liveBytesBound: 0,
  };
  const p = new addon.Program(program, isa, threads, sparse);
  return { layerKernels: p.opKernels, runSync: (x, m) => p.runSync([x], m)[0] };
}

function kernelRows(addon, opts) {
  const rows = [];
  for (const [m, k, n] of opts.shapes)
    for (const sparsity of opts.sparsity) {
      const w = prunedWeights(n, k, sparsity, 7);
      const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
      for (const threads of opts.threads) {
        const dense = layer(addon, w, n, k, 'never', opts.isa, threads);
        const sparse = layer(addon, w, n, k, 'always', opts.isa, threads);
        const autoPlan = layer(addon, w, n, k, 'auto', opts.isa, threads);
        const auto = autoPlan.layerKernels[0];
        const repeat = Math.max(1, Math.round(2e7 / (m * k * n)));
        const run = (p) => () => {
          for (let i = 0; i < repeat; i++) p.runSync(x, m);
        };
        const d = measure(run(dense), opts.maxTime, threads).mean / repeat;
        const s = measure(run(sparse), opts.maxTime, threads).mean / repeat;
        const a = measure(run(autoPlan), opts.maxTime, threads).mean / repeat;
        const row = {
          bench: 'layer',
          m,
          k,
          n,
          sparsity,
          threads,
          sparseKernel: sparse.layerKernels[0],
          auto,
          autoKernel: kernelAt(auto, m),
          denseMs: round(d * 1e3, 4),
          sparseMs: round(s * 1e3, 4),
          speedup: round(d / s, 2),
          autoMs: round(a * 1e3, 4),
          autoSpeedup: round(d / a, 2),
        };
        rows.push(row);
        if (!opts.json) printRow(row);
      }
    }
  return rows;
}

function endToEnd(opts) {
  // dist/ (built by `npm run build:ts` / `npm test`): the package as users get it.
  const edgeopt = require(path.resolve(__dirname, '..', 'dist', 'index.js'));
  const { mlp } = require(path.resolve(__dirname, '..', 'dist', 'train', 'init.js'));
  const base = mlp([784, 256, 128, 10], { seed: 1 });
  const rows = [];
  for (const [label, prune] of [
    ['unstructured 0.9', { sparsity: 0.9 }],
    ['2:4', { mode: '2:4' }],
  ]) {
    const pruned = edgeopt.pruneGraph
      ? edgeopt.pruneGraph(base, prune)
      : require(path.resolve(__dirname, '..', 'dist', 'optimizer', 'prune.js')).pruneGraph(base, prune);
    const model = edgeopt.quantizeGraph(pruned, { bits: 8, granularity: 'channel' });
    for (const batch of [1, 64]) {
      const x = Float32Array.from({ length: batch * 784 }, (_, i) => (Math.sin(i) + 1) / 2);
      const times = {};
      let kernels;
      for (const sparse of ['never', 'auto']) {
        const e = new edgeopt.EdgeInferenceEngine({ device: 'cpu', sparse, threads: 1, kernel: opts.isa });
        e.loadModelSync('m', model);
        if (sparse === 'auto')
          kernels = e
            .placement('m')
            .filter((p) => p.op === 'QDense')
            .map((p) => p.kernel);
        times[sparse] = measure(() => e.inferSync('m', { data: x, shape: [batch, 784] }), opts.maxTime).mean;
      }
      const row = {
        bench: 'mlp-784-256-128-10',
        pruning: label,
        batch,
        threads: 1,
        kernels,
        denseUs: round(times.never * 1e6, 1),
        autoUs: round(times.auto * 1e6, 1),
        speedup: round(times.never / times.auto, 2),
      };
      rows.push(row);
      if (!opts.json)
        console.log(
          `mlp-784-256-128-10 ${label.padEnd(16)} batch ${String(batch).padStart(2)}: dense ${row.denseUs} us, auto ${row.autoUs} us (${row.speedup}x) [${kernels.join(', ')}]`,
        );
    }
  }
  return rows;
}

// The kernel a placement string ('sparsewin-avx2<16/sparse-avx2') runs for m rows.
function kernelAt(placement, m) {
  const split = /^(.*)<(\d+)\/(.*)$/.exec(placement);
  return split ? (m < Number(split[2]) ? split[1] : split[3]) : placement;
}

let headerDone = false;
function printRow(r) {
  if (!headerDone) {
    console.log(
      '           shape  sparsity thr   dense ms  always ms  speed-up  always kernel                    auto ms  speed-up  auto runs',
    );
    headerDone = true;
  }
  console.log(
    `${`${r.m}x${r.k}x${r.n}`.padStart(16)} ${String(r.sparsity).padStart(9)} ${String(r.threads).padStart(3)} ` +
      `${r.denseMs.toFixed(4).padStart(10)} ${r.sparseMs.toFixed(4).padStart(10)} ${r.speedup.toFixed(2).padStart(8)}x  ${r.sparseKernel.padEnd(30)} ` +
      `${r.autoMs.toFixed(4).padStart(10)} ${r.autoSpeedup.toFixed(2).padStart(8)}x  ${r.autoKernel} (${r.auto})`,
  );
}

async function run(argv) {
  const opts = parseArgs(argv);
  let addon;
  try {
    addon = require('node-gyp-build')(path.resolve(__dirname, '..'));
  } catch (e) {
    throw new Error(`the native addon did not load (${e.message}); build it with \`npm run build:native\``);
  }
  const rows = [...kernelRows(addon, opts), ...endToEnd(opts)];
  if (opts.json) console.log(JSON.stringify(rows, null, 1));
  return rows;
}

module.exports = { run };

if (require.main === module) {
  run(process.argv.slice(2)).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
