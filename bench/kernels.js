// Kernel micro-benchmarks: `npm run bench -- kernels [--json] [--isa=avx2,scalar]
// [--threads=1,2] [--shapes=1x784x512,...] [--kinds=int8,int7,fp32,conv,qconv] [--max-time=0.5]
// [--convs=dw3x3,conv1x1] [--no-ort] [--no-write]`. The conv kind adds fp32
// convolution rows (bench/support/cnn-kernels.js) beside onnxruntime-node on
// the same shapes; a run of all of them is written to bench/results/cnn-kernels.json
// for docs/benchmarks.md. The qconv kind adds int8 depthwise and 3x3 convolution rows
// (bench/support/int8-conv-kernels.js) against the table's int8 peak, written to
// bench/results/int8-conv-kernels.json; kernels.json is written when a GEMM kind ran.
// int7 is the int8 kernel on weights of the 7-bit grid (what `bits: 7`
// quantization stores), which the AVX2/AVX-512 tables pack for vpmaddubsw;
// its fraction of peak is against that sequence's own register-only loop.
//
// Every kernel table of the binary is listed: those this CPU runs are measured,
// the others print "not measured: CPU lacks <features>". For each measured
// table, threads 1 and 2, int8 (u8 x s8 -> s32) and fp32 GEMM: GOP/s (2*M*N*K /
// time) and the fraction of the machine's own peak, measured in the same run by
// the table's register-only loop of its own instruction sequence (addon.peakProbe:
// vpmaddwd, vpdpbusd on ymm or zmm, TDPBUSD, FMA on ymm or zmm): a ratio that
// holds on a noisy or shared machine. With T threads the peak is T x the
// one-core peak; each row divides by the peak probed just before and after it
// (the start-of-run peak is printed too). The memory-bound GEMV is compared with
// one thread's read bandwidth on a buffer the size of its weights
// (addon.readBandwidth), probed the same way. GOP/s and ms are medians. Times are the calling thread's
// CPU time for one thread (the machine's other processes do not count), wall
// time for more (see measure). Only the GEMM is timed: operands
// are made and weights packed once, outside the timing; small shapes run the
// GEMM `repeat` times per call so the JS call does not dominate. Results go to
// bench/results/kernels.json (read by `npm run bench -- report`). Benchmarks
// are never assertions: nothing here fails on a slow result.
'use strict';
const path = require('node:path');
const C = require('./support/common');
const { convRows } = require('./support/cnn-kernels');
const { qconvRows } = require('./support/int8-conv-kernels');

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
const GEMV_MIB = 16; // the 4096 x 4096 int8 weights

// The issue-17 targets, checked on the table each one names (when measured).
const TARGETS = [
  { isa: 'avx512vnni', kind: 'int8', shape: [256, 4096, 4096], ofPeak: 0.7 },
  { isa: 'avx512vnni', kind: 'int8', shape: [64, 1024, 1024], ofPeak: 0.6 },
  { isa: 'avx512vnni', kind: 'int8', shape: [1, 4096, 4096], ofBandwidth: 0.9 },
  { isa: 'avx512', kind: 'fp32', shape: [256, 1024, 1024], ofPeak: 0.7 },
  { isa: 'amx', kind: 'int8', shape: [256, 4096, 4096], over: 'avx512vnni', times: 3 },
];

function parseArgs(argv) {
  const opts = {
    json: false,
    all: false,
    isa: null,
    threads: [1, 2],
    shapes: SHAPES,
    kinds: ['int8', 'int7', 'fp32', 'conv', 'qconv'],
    maxTime: 0.5,
    convs: null,
    ort: true,
    write: true,
  };
  for (const a of argv) {
    const [key, value] = a.split('=');
    if (key === '--json') opts.json = true;
    else if (key === '--all') opts.all = true;
    else if (key === '--no-write') opts.write = false;
    else if (key === '--isa') opts.isa = value.split(',');
    else if (key === '--threads') opts.threads = value.split(',').map(Number);
    else if (key === '--max-time') opts.maxTime = Number(value);
    else if (key === '--kinds') opts.kinds = value.split(',');
    else if (key === '--shapes') opts.shapes = value.split(',').map((s) => s.split('x').map(Number));
    else if (key === '--convs') opts.convs = value.split(',');
    else if (key === '--no-ort') opts.ort = false;
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
// null: the table has no probe.
function probes(addon, kind, isa, rounds) {
  const out = [];
  for (let i = 0; i < rounds; i++) {
    const ops = addon.peakProbe(kind, isa === 'scalar' ? 5e5 : 1e6, isa);
    if (ops === null) return null;
    out.push(ops / 1e9);
  }
  return out;
}
const peak = (addon, kind, isa) => {
  const p = probes(addon, kind, isa, 7);
  return p && Math.max(...p);
};
// GB/s, best of 5 passes over the buffer.
const bandwidth = (addon) => addon.readBandwidth(GEMV_MIB, 5) / 1e9;

// Samples of one call each (`repeat` GEMMs) until maxTime has passed (at
// least 5, 3 for big shapes), in blocks of about a sixth of it, each block
// followed by the probes in `probeFns` (functions returning a rate): a sample
// and its probes see nearly the same moment of the machine, and back-to-back
// calls keep the state a kernel has in a loop (a GEMV's weights in cache,
// which a probe in between would evict). One thread: the calling thread's CPU
// time, so the other processes of a shared machine do not count (a 100 ms
// run is preempted many times); more threads: wall time.
function measure(kb, repeat, threads, maxTime, big, probeFns) {
  const seconds = (t) => (threads === 1 ? t.cpuSeconds : t.wallSeconds);
  const blockMs = (maxTime * 1000) / 6;
  const sample = [];
  const probed = probeFns.map(() => []);
  const end = Date.now() + maxTime * 1000;
  while (sample.length < (big ? 3 : 5) || (Date.now() < end && sample.length < 1000)) {
    kb.run(repeat); // warm up again after the probes
    const blockEnd = Date.now() + blockMs;
    do sample.push(seconds(kb.run(repeat)) / repeat);
    while (Date.now() < blockEnd);
    probeFns.forEach((f, i) => probed[i].push(f()));
  }
  const mean = sample.reduce((a, b) => a + b) / sample.length;
  const sd = Math.sqrt(sample.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, sample.length - 1));
  return { sample, mean, rme: (100 * sd) / Math.sqrt(sample.length) / mean, probed };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const isGemv = (m, k, n) => m === 1 && k * n === GEMV_MIB * 2 ** 20;

async function run(argv) {
  const opts = parseArgs(argv);
  const addon = loadAddon();
  const info = addon.info();
  const wanted = (name) => !opts.isa || opts.isa.includes(name);
  const tables = info.tables.filter((t) => wanted(t.name));
  const isas = tables.filter((t) => t.missing.length === 0).map((t) => t.name);
  const rows = [];
  for (const t of tables.filter((x) => x.missing.length > 0)) {
    rows.push({ bench: 'unavailable', isa: t.name, missing: t.missing });
    if (!opts.json) console.log(`${t.name}: not measured: CPU lacks ${t.missing.join(', ')}`);
  }
  const readGBs = bandwidth(addon);
  rows.push({ bench: 'bandwidth', mib: GEMV_MIB, threads: 1, gbs: round(readGBs) });
  const peaks = {};
  for (const isa of isas) {
    peaks[isa] = {};
    for (const kind of ['int8', 'int7', 'fp32']) {
      peaks[isa][kind] = peak(addon, kind, isa);
      rows.push({ bench: 'peak', isa, kind, threads: 1, gops: peaks[isa][kind] === null ? null : round(peaks[isa][kind]) });
    }
  }
  for (const isa of isas)
    for (const threads of opts.threads)
      for (const kind of opts.kinds.filter((k) => k !== 'conv' && k !== 'qconv'))
        for (const [m, k, n] of opts.shapes) {
          const macs = m * k * n;
          if (isa === 'scalar' && macs > SCALAR_MAX_MACS && !opts.all) continue;
          const kb = new addon.KernelBench(kind, m, k, n, isa, threads);
          const repeat = Math.max(1, Math.round(5e7 / macs));
          // The peak (and for a GEMV the read bandwidth) is probed after every
          // block of samples: on a shared machine the ratio then compares like with like.
          const gemv = kind !== 'fp32' && isGemv(m, k, n);
          const hasProbe = peak(addon, kind, isa) !== null;
          const probeFns = [];
          if (hasProbe) probeFns.push(() => Math.max(...probes(addon, kind, isa, 3)));
          if (gemv) probeFns.push(() => addon.readBandwidth(GEMV_MIB, 3) / 1e9);
          const stats = measure(kb, repeat, threads, opts.maxTime, macs > 1e9, probeFns);
          const peaks = hasProbe ? stats.probed[0] : null;
          const gopsOf = (seconds) => (2 * macs) / seconds / 1e9;
          const gops = gopsOf(median(stats.sample));
          // Best sample against the best probe: the ratio when the machine's
          // other load left both alone (interference only slows).
          const bestGops = gopsOf(Math.min(...stats.sample));
          const row = {
            bench: 'gemm',
            isa,
            kind,
            threads,
            m,
            k,
            n,
            gops: round(gops),
            fractionOfPeak: peaks && round(gops / (median(peaks) * threads), 3),
            localPeakGops: peaks && round(median(peaks)),
            bestGops: round(bestGops),
            bestFractionOfPeak: peaks && round(bestGops / (Math.max(...peaks) * threads), 3),
            msPerGemm: round(median(stats.sample) * 1e3, 4),
            rme: round(stats.rme, 2),
            samples: stats.sample.length,
          };
          if (gemv) {
            const bw = stats.probed[probeFns.length - 1];
            row.weightGBs = round(gops / 2);
            row.fractionOfBandwidth = round(gops / 2 / median(bw), 3);
            row.localBandwidthGBs = round(median(bw));
            row.bestWeightGBs = round(bestGops / 2);
            row.bestFractionOfBandwidth = round(bestGops / 2 / Math.max(...bw), 3);
          }
          rows.push(row);
          if (!opts.json) printRow(row);
        }
  if (opts.kinds.includes('conv')) {
    const started = Date.now();
    const machine = C.machine();
    const conv = await convRows(addon, isas, opts.threads, opts, (isa) => peaks[isa].fp32);
    rows.push(...conv);
    // The conv rows feed docs/benchmarks.md (npm run bench -- report).
    if (opts.write && !opts.convs)
      writeConvResult('cnn-kernels', started, machine, opts, {
        versions: { onnxruntimeNode: C.optional('onnxruntime-node').version ?? null },
        peaks: Object.fromEntries(isas.map((isa) => [isa, peaks[isa].fp32])),
        rows: conv,
      });
  }
  if (opts.kinds.includes('qconv')) {
    const started = Date.now();
    const machine = C.machine();
    const qconv = qconvRows(addon, isas, opts.threads, opts, (isa) => peaks[isa].int8);
    rows.push(...qconv);
    if (opts.write && !opts.convs)
      writeConvResult('int8-conv-kernels', started, machine, opts, {
        peaks: Object.fromEntries(isas.map((isa) => [isa, peaks[isa].int8])),
        rows: qconv,
      });
  }
  const targets = checkTargets(rows);
  if (opts.json) {
    console.log(JSON.stringify({ rows, targets }, null, 1));
  } else {
    printPeaks(rows);
    printSummary(rows, targets);
  }
  if (opts.write && opts.kinds.some((k) => k !== 'conv' && k !== 'qconv')) {
    const file = C.writeResult('kernels', {
      command: `npm run bench -- kernels${argv.length ? ' ' + argv.join(' ') : ''}`,
      machine: C.machine(),
      rows,
      targets,
    });
    if (!opts.json) console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
  }
  return rows;
}

/** A convolution result file for docs/benchmarks.md: the command, the machine with its load at the end, and `fields`. */
function writeConvResult(name, started, machine, opts, fields) {
  C.writeResult(name, {
    command: `npm run bench -- kernels ${process.argv.slice(3).join(' ')}`.trim(),
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    machine: {
      ...machine,
      loadavgEnd: require('node:os')
        .loadavg()
        .map((x) => Math.round(x * 100) / 100),
    },
    settings: { rounds: 5, secondsPerEngine: opts.maxTime },
    ...fields,
  });
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const findGemm = (rows, isa, kind, threads, [m, k, n]) =>
  rows.find((r) => r.bench === 'gemm' && r.isa === isa && r.kind === kind && r.threads === threads && r.m === m && r.k === k && r.n === n);

// One line per target: its value in this run (best sample against the best
// probe, as for bestFractionOfPeak), or why it was not measured.
function checkTargets(rows) {
  return TARGETS.map((t) => {
    const shape = t.shape.join('x');
    const r = findGemm(rows, t.isa, t.kind, 1, t.shape);
    const unavailable = rows.find((x) => x.bench === 'unavailable' && x.isa === t.isa);
    const base = { isa: t.isa, kind: t.kind, shape };
    if (!r) return { ...base, measured: false, why: unavailable ? `CPU lacks ${unavailable.missing.join(', ')}` : 'not in this run' };
    let what, value, mean, target;
    if (t.ofPeak !== undefined)
      [what, value, mean, target] = [`of ${t.isa}'s measured peak`, r.bestFractionOfPeak, r.fractionOfPeak, t.ofPeak];
    else if (t.ofBandwidth !== undefined)
      [what, value, mean, target] = ['of the read bandwidth', r.bestFractionOfBandwidth, r.fractionOfBandwidth, t.ofBandwidth];
    else {
      const other = findGemm(rows, t.over, t.kind, 1, t.shape);
      if (!other) return { ...base, measured: false, why: `${t.over} not measured` };
      [what, value, mean, target] = [`x ${t.over}`, round(r.bestGops / other.bestGops, 2), round(r.gops / other.gops, 2), t.times];
    }
    return { ...base, measured: true, what, value, mean, target, met: value >= target };
  });
}

let headerDone = false;
function printRow(r) {
  if (!headerDone) {
    console.log('isa        kind threads            shape      GOP/s  of peak   ms/GEMM   ±%    best  of peak');
    headerDone = true;
  }
  const shape = `${r.m}x${r.k}x${r.n}`;
  const ofPeak = r.fractionOfPeak === null ? '     -' : `${(r.fractionOfPeak * 100).toFixed(1).padStart(6)}%`;
  const bestOfPeak = r.bestFractionOfPeak === null ? '' : `${(r.bestFractionOfPeak * 100).toFixed(1)}%`;
  const bw =
    r.weightGBs === undefined
      ? ''
      : `  weights ${r.weightGBs} GB/s = ${(r.fractionOfBandwidth * 100).toFixed(1)}% of read bandwidth ` +
        `(best ${(r.bestFractionOfBandwidth * 100).toFixed(1)}%)`;
  console.log(
    `${r.isa.padEnd(10)} ${r.kind.padEnd(4)} ${String(r.threads).padStart(7)} ${shape.padStart(16)} ` +
      `${r.gops.toFixed(1).padStart(10)} ${ofPeak} ${r.msPerGemm.toFixed(4).padStart(9)} ${r.rme.toFixed(1).padStart(4)} ` +
      `${r.bestGops.toFixed(1).padStart(7)} ${bestOfPeak.padStart(6)}${bw}`,
  );
}

function printPeaks(rows) {
  console.log("\nmeasured one-core peak (register-only loop of each table's own instruction sequence):");
  for (const r of rows.filter((x) => x.bench === 'peak'))
    console.log(
      `  ${r.isa.padEnd(10)} ${r.kind.padEnd(4)} ${r.gops === null ? 'no probe' : `${r.gops.toFixed(1)} G${r.kind === 'fp32' ? 'FLOP' : 'OP'}/s`}`,
    );
  for (const r of rows.filter((x) => x.bench === 'bandwidth'))
    console.log(`  read bandwidth, one thread, ${r.mib} MiB buffer: ${r.gbs.toFixed(1)} GB/s`);
}

function printSummary(rows, targets) {
  const best = rows
    .filter((r) => r.bench === 'gemm')
    .map((r) => r.isa)
    .pop();
  if (!best) return;
  console.log(`\nsummary (${best}):`);
  const i8 = findGemm(rows, best, 'int8', 1, [1, 4096, 4096]),
    f32 = findGemm(rows, best, 'fp32', 1, [1, 4096, 4096]);
  if (i8 && f32) console.log(`  1x4096x4096 int8 vs fp32 GEMV, 1 thread: ${(i8.gops / f32.gops).toFixed(2)}x`);
  const i82 = findGemm(rows, best, 'int8', 2, [1, 4096, 4096]);
  if (i8 && i82) console.log(`  1x4096x4096 int8 GEMV, 2 threads vs 1: ${(i82.gops / i8.gops).toFixed(2)}x`);
  console.log('targets (1 thread, best sample against the best probe next to it; mean against mean in brackets):');
  for (const t of targets) {
    const label = `  ${t.isa} ${t.kind} ${t.shape}`;
    if (!t.measured) console.log(`${label}: not measured: ${t.why}`);
    else {
      const times = t.what.startsWith('x ');
      const show = (v) => (times ? `${v}x` : `${(v * 100).toFixed(1)}%`);
      console.log(
        `${label}: ${show(t.value)} (${show(t.mean)}) ${times ? t.what.slice(2) : t.what}, target ${show(t.target)}: ${t.met ? 'met' : 'NOT met'}`,
      );
    }
  }
}

module.exports = { run };

if (require.main === module) {
  run(process.argv.slice(2)).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
