// Kernel micro-benchmarks: `npm run bench -- kernels [--json] [--isa=avx2,scalar]
// [--threads=1,2] [--shapes=1x784x512,...] [--kinds=int8,int7,fp32,conv] [--max-time=0.5]
// [--convs=dw3x3,conv1x1] [--no-ort] [--no-write]`. The conv kind adds fp32
// convolution rows (bench/support/cnn-kernels.js) beside onnxruntime-node on
// the same shapes; a run of all of them is written to bench/results/cnn-kernels.json
// for docs/benchmarks.md.
// int7 is the int8 kernel on weights of the 7-bit grid (what `bits: 7`
// quantization stores), which AVX2 packs for vpmaddubsw; its fraction of peak
// is against that sequence's own register-only loop (the int7 peak line).
//
// For every kernel table this CPU runs, threads 1 and 2, int8 (u8 x s8 -> s32)
// and fp32 GEMM, prints GOP/s (2*M*N*K / time) and the fraction of the machine's
// own peak, measured in the same run by the table's register-only throughput
// loop (addon.peakProbe): a ratio that holds on a noisy or shared machine.
// With T threads the peak is T x the one-core peak; each row divides by the
// peak probed just before and after it (the start-of-run peak is printed too). Only the GEMM is timed:
// operands are made and weights packed once, outside the timing; small shapes
// run the GEMM `repeat` times per call so the JS call does not dominate.
// Benchmarks are never assertions: nothing here fails on a slow result.
'use strict';
const path = require('node:path');
const Benchmark = require('benchmark');
const C = require('./support/common');
const { convRows } = require('./support/cnn-kernels');

const SHAPES = [
  [1, 784, 512],
  [1, 1024, 1024],
  [1, 4096, 4096],
  [8, 1024, 1024],
  [64, 1024, 1024],
  [256, 1024, 1024],
  [256, 4096, 4096],
];
// The scalar reference takes seconds per call on the big shapes; skip them
// unless --all (they say nothing about the SIMD kernels).
const SCALAR_MAX_MACS = 3e8;

function parseArgs(argv) {
  const opts = {
    json: false,
    all: false,
    isa: null,
    threads: [1, 2],
    shapes: SHAPES,
    kinds: ['int8', 'int7', 'fp32', 'conv'],
    maxTime: 0.5,
    convs: null,
    ort: true,
    write: true,
  };
  for (const a of argv) {
    const [key, value] = a.split('=');
    if (key === '--json') opts.json = true;
    else if (key === '--all') opts.all = true;
    else if (key === '--isa') opts.isa = value.split(',');
    else if (key === '--threads') opts.threads = value.split(',').map(Number);
    else if (key === '--max-time') opts.maxTime = Number(value);
    else if (key === '--kinds') opts.kinds = value.split(',');
    else if (key === '--shapes') opts.shapes = value.split(',').map((s) => s.split('x').map(Number));
    else if (key === '--convs') opts.convs = value.split(',');
    else if (key === '--no-ort') opts.ort = false;
    else if (key === '--no-write') opts.write = false;
    else throw new Error(`kernels bench: unknown argument ${a}`);
  }
  return opts;
}

function loadAddon() {
  const root = path.resolve(__dirname, '..');
  try {
    return require('node-gyp-build')(root);
  } catch (e) {
    throw new Error(`the native addon did not load (${e.message}); build it with \`npm run build:native\``);
  }
}

// Short probe runs (~5 ms each for AVX2). The machine's peak is the best of
// them (interference only ever lowers a sample); the peak next to a row is
// their mean, since the row's own timing is an average over the same load.
function probes(addon, kind, isa, rounds) {
  const out = [];
  for (let i = 0; i < rounds; i++) out.push(addon.peakProbe(kind, isa === 'scalar' ? 5e5 : 1e6, isa) / 1e9);
  return out;
}
const peak = (addon, kind, isa) => Math.max(...probes(addon, kind, isa, 7));
const meanPeak = (addon, kind, isa) => probes(addon, kind, isa, 4).reduce((a, b) => a + b) / 4;

function measure(fn, maxTime, big) {
  const bench = new Benchmark('gemm', fn, { maxTime, minSamples: big ? 3 : 5, initCount: 1 });
  bench.run({ async: false });
  if (bench.error) throw bench.error;
  return bench.stats;
}

async function run(argv) {
  const opts = parseArgs(argv);
  const addon = loadAddon();
  const info = addon.info();
  const isas = (opts.isa || info.kernels).filter((k) => info.kernels.includes(k));
  const rows = [];
  const peaks = {};
  for (const isa of isas) {
    peaks[isa] = { int8: peak(addon, 'int8', isa), int7: peak(addon, 'int7', isa), fp32: peak(addon, 'fp32', isa) };
    for (const kind of ['int8', 'int7', 'fp32']) rows.push({ bench: 'peak', isa, kind, threads: 1, gops: round(peaks[isa][kind]) });
  }
  for (const isa of isas)
    for (const threads of opts.threads)
      for (const kind of opts.kinds.filter((k) => k !== 'conv'))
        for (const [m, k, n] of opts.shapes) {
          const macs = m * k * n;
          if (isa === 'scalar' && macs > SCALAR_MAX_MACS && !opts.all) continue;
          const kb = new addon.KernelBench(kind, m, k, n, isa, threads);
          const repeat = Math.max(1, Math.round(5e7 / macs));
          // The peak is probed right before and after the row as well: on a
          // shared machine the ratio then compares like with like.
          const before = meanPeak(addon, kind, isa);
          const stats = measure(() => kb.run(repeat), opts.maxTime, macs > 1e9);
          const localPeak = (before + meanPeak(addon, kind, isa)) / 2;
          const seconds = stats.mean / repeat;
          const gops = (2 * macs) / seconds / 1e9;
          rows.push({
            bench: 'gemm',
            isa,
            kind,
            threads,
            m,
            k,
            n,
            gops: round(gops),
            fractionOfPeak: round(gops / (localPeak * threads), 3),
            localPeakGops: round(localPeak),
            msPerGemm: round(seconds * 1e3, 4),
            rme: round(stats.rme, 2),
            samples: stats.sample.length,
          });
          if (!opts.json) printRow(rows[rows.length - 1]);
        }
  if (opts.kinds.includes('conv')) {
    const started = Date.now();
    const machine = C.machine();
    const conv = await convRows(addon, isas, opts.threads, opts, (isa) => peaks[isa].fp32);
    rows.push(...conv);
    // The conv rows feed docs/benchmarks.md (npm run bench -- report).
    if (opts.write && !opts.convs)
      C.writeResult('cnn-kernels', {
        command: `npm run bench -- kernels ${process.argv.slice(3).join(' ')}`.trim(),
        durationSeconds: Math.round((Date.now() - started) / 100) / 10,
        machine: {
          ...machine,
          loadavgEnd: require('node:os')
            .loadavg()
            .map((x) => Math.round(x * 100) / 100),
        },
        versions: { onnxruntimeNode: C.optional('onnxruntime-node').version ?? null },
        settings: { rounds: 5, secondsPerEngine: opts.maxTime },
        peaks: Object.fromEntries(isas.map((isa) => [isa, peaks[isa].fp32])),
        rows: conv,
      });
  }
  if (opts.json) {
    console.log(JSON.stringify(rows, null, 1));
  } else {
    printPeaks(rows);
    printSummary(rows);
  }
  return rows;
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

let headerDone = false;
function printRow(r) {
  if (!headerDone) {
    console.log('isa     kind threads            shape      GOP/s  of peak   ms/GEMM   ±%');
    headerDone = true;
  }
  const shape = `${r.m}x${r.k}x${r.n}`;
  console.log(
    `${r.isa.padEnd(7)} ${r.kind.padEnd(4)} ${String(r.threads).padStart(7)} ${shape.padStart(16)} ` +
      `${r.gops.toFixed(1).padStart(10)} ${(r.fractionOfPeak * 100).toFixed(1).padStart(7)}% ` +
      `${r.msPerGemm.toFixed(4).padStart(9)} ${r.rme.toFixed(1).padStart(4)}`,
  );
}

function printPeaks(rows) {
  console.log('\nmeasured one-core peak (register-only loop of the kernel arithmetic):');
  for (const r of rows.filter((x) => x.bench === 'peak'))
    console.log(`  ${r.isa.padEnd(7)} ${r.kind.padEnd(4)} ${r.gops.toFixed(1)} G${r.kind === 'fp32' ? 'FLOP' : 'OP'}/s`);
}

function printSummary(rows) {
  const find = (isa, kind, threads, m, k, n) =>
    rows.find(
      (r) => r.bench === 'gemm' && r.isa === isa && r.kind === kind && r.threads === threads && r.m === m && r.k === k && r.n === n,
    );
  const best = rows
    .filter((r) => r.bench === 'gemm')
    .map((r) => r.isa)
    .pop();
  if (!best) return;
  console.log(`\nsummary (${best}):`);
  const i8 = find(best, 'int8', 1, 1, 4096, 4096),
    f32 = find(best, 'fp32', 1, 1, 4096, 4096);
  if (i8 && f32) console.log(`  1x4096x4096 int8 vs fp32 GEMV, 1 thread: ${(i8.gops / f32.gops).toFixed(2)}x`);
  const i82 = find(best, 'int8', 2, 1, 4096, 4096);
  if (i8 && i82) console.log(`  1x4096x4096 int8 GEMV, 2 threads vs 1: ${(i82.gops / i8.gops).toFixed(2)}x`);
  for (const [kind, m, k, n] of [
    ['int8', 256, 1024, 1024],
    ['int8', 256, 4096, 4096],
    ['int8', 64, 1024, 1024],
    ['fp32', 256, 1024, 1024],
  ]) {
    const r = find(best, kind, 1, m, k, n);
    if (r) console.log(`  ${kind} ${m}x${k}x${n}, 1 thread: ${r.gops.toFixed(1)} GOP/s = ${(r.fractionOfPeak * 100).toFixed(1)}% of peak`);
  }
}

module.exports = { run };

if (require.main === module) {
  run(process.argv.slice(2)).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
