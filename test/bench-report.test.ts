/** The benchmark page generator (bench/report.js) turns a small result JSON into markdown tables and well-formed SVG. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const { render } = require('../bench/report.js');

const machine = {
  date: '2025-01-01T00:00:00Z',
  cpu: 'Test CPU',
  cores: 2,
  simdFlags: ['avx2'],
  platform: 'linux-x64',
  node: 'v20',
  memoryGiB: 1,
  loadavg: [0, 0, 0],
  edgeopt: { kernel: 'avx2', kernels: ['avx2'] },
};
const row = (engine: string, ms: number) => ({
  engine,
  samples: 5,
  medianMs: ms,
  p10Ms: ms,
  p90Ms: ms,
  rowsPerSec: 1000 / ms,
  vsOrtInt8: 0.5 / ms,
});
const compare = {
  command: 'npm run bench -- compare',
  durationSeconds: 1,
  machine,
  versions: { onnxruntimeNode: '1', tfjs: null },
  settings: { rounds: 1, budgetSecondsPerEngine: 0.1 },
  notes: ['a <note> & more'],
  models: [
    {
      model: 'm<1>',
      describe: 'tiny',
      onnxBytes: { fp32: 1, int8: 1 },
      accuracyCheck: [],
      configs: [
        {
          threads: 1,
          batch: 1,
          rows: [row('edgeopt-native-int8', 0.1), row('ort-int8', 0.5)],
          skipped: [{ engine: 'tfjs-cpu', reason: 'skipped: slow' }],
        },
      ],
      eventLoop: [{ engine: 'idle', batch: 1, calls: 3, p50Ms: 0.1, p99Ms: 0.2, maxMs: 0.3 }],
    },
  ],
  summary: [{ target: 'x', ratio: 5, met: true }],
};
const table = {
  command: 'npm run bench -- table',
  durationSeconds: 1,
  machine,
  model: 'm',
  evaluation: 'e',
  baseline: { bytes: 100, accuracy: 90 },
  notes: [],
  skipped: [],
  rows: [
    {
      key: 'fp32',
      label: 'fp32',
      seedClaim: 'baseline',
      bytes: 100,
      compression: 1,
      accuracy: 90,
      lossPoints: 0,
      speedupBatch1: 1,
      speedupBatch64: 1,
    },
    {
      key: 'int8',
      label: 'int8',
      seedClaim: 'q',
      bytes: 25,
      compression: 4,
      accuracy: 89.5,
      lossPoints: 0.5,
      speedupBatch1: 2,
      speedupBatch64: 3,
    },
  ],
  best: { key: 'int8', rule: 'r' },
};

test('markdown has the tables, targets and notes; every SVG is balanced and escaped', () => {
  const { markdown, svgs } = render(compare, table);
  assert.match(markdown, /\| edgeopt native int8 \| 0\.1000 \(/);
  assert.match(markdown, /\| target \| ratio \(same run\) \| met \|/);
  assert.match(markdown, /\| int8 \*\*\(best\)\*\* \|/);
  assert.match(markdown, /a <note> & more/);
  const names = Object.keys(svgs);
  assert.is(names.length, 2);
  for (const n of names) {
    const svg: string = svgs[n];
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), n);
    assert.ok(svg.trim().endsWith('</svg>'), n);
    assert.not.match(svg, /m<1>/, 'model name escaped');
    assert.not.match(svg, /NaN|undefined/, n);
    assert.is((svg.match(/<text/g) || []).length, (svg.match(/<\/text>/g) || []).length);
  }
});

const kernels = {
  command: 'npm run bench -- kernels',
  machine,
  rows: [
    { bench: 'unavailable', isa: 'amx', missing: ['amx-tile', 'amx-int8'] },
    { bench: 'bandwidth', mib: 16, threads: 1, gbs: 40 },
    { bench: 'peak', isa: 'avx512vnni', kind: 'int8', threads: 1, gops: 800 },
    { bench: 'peak', isa: 'scalar', kind: 'int8', threads: 1, gops: null },
    { bench: 'gemm', isa: 'avx512vnni', kind: 'int8', threads: 1, m: 64, k: 1024, n: 1024, gops: 560, fractionOfPeak: 0.7 },
    {
      bench: 'gemm',
      isa: 'avx512vnni',
      kind: 'int8',
      threads: 1,
      m: 1,
      k: 4096,
      n: 4096,
      gops: 70,
      fractionOfPeak: 0.1,
      weightGBs: 35,
      fractionOfBandwidth: 0.875,
    },
  ],
  targets: [
    {
      isa: 'avx512vnni',
      kind: 'int8',
      shape: '64x1024x1024',
      measured: true,
      what: "of avx512vnni's measured peak",
      value: 0.7,
      target: 0.6,
      met: true,
    },
    {
      isa: 'avx512vnni',
      kind: 'int8',
      shape: '1x4096x4096',
      measured: true,
      what: 'of the read bandwidth',
      value: 0.875,
      target: 0.9,
      met: false,
    },
    { isa: 'amx', kind: 'int8', shape: '256x4096x4096', measured: false, why: 'CPU lacks amx-tile, amx-int8' },
  ],
};

test('the kernel section lists what this CPU lacks, the peaks, the rows and each target', () => {
  const { markdown } = render(null, null, { kernels });
  assert.match(markdown, /`amx` \(CPU lacks amx-tile, amx-int8\)/);
  assert.match(markdown, /avx512vnni int8 800 GOP\/s; read bandwidth of one thread over a 16 MiB buffer/);
  assert.match(markdown, /\| avx512vnni \| int8 \| 560 \(70\.0 %\) \| 70\.0 \(10\.0 %\) \|/);
  assert.match(markdown, /avx512vnni int8 35\.0 GB\/s \(87\.5 %\)/);
  assert.match(markdown, /\| avx512vnni int8 1x4096x4096, 1 thread \(target 90 %\) \| 87\.5 % of the read bandwidth \| \*\*no\*\* \|/);
  assert.match(markdown, /\| amx int8 256x4096x4096, 1 thread \| not measured: CPU lacks amx-tile, amx-int8 \| - \|/);
  assert.not.match(markdown, /NaN|undefined|null/);
});

const count = {
  sent: 10,
  answered: 9,
  duplicates: 0,
  unknownIds: 0,
  wrongArgmax: 0,
  inFlightAtStop: 1,
  serverReceived: 10,
  serverAnswered: 10,
};
const serveRun = (mode: string, rps: number) => ({
  round: 0,
  mode,
  connections: 64,
  requestsPerSec: rps,
  status: { 200: 9 },
  errors: 0,
  timeouts: 0,
  count,
});
const serve = {
  command: 'npm run bench -- serve',
  durationSeconds: 1,
  machine,
  autocannon: '8.0.0',
  settings: {
    seconds: 10,
    rounds: 1,
    levels: [64],
    threads: 1,
    batching: { maxBatch: 64, maxDelayMs: 2, maxQueue: 1024 },
    burst: { connections: 256, pipelining: 8, maxQueue: 128, seconds: 10 },
  },
  models: [
    {
      key: 'mnist',
      describe: 'mlp <m>',
      runs: [serveRun('off', 1000), serveRun('on', 3500)],
      summary: [
        {
          connections: 64,
          offRequestsPerSec: 1000,
          onRequestsPerSec: 3500,
          ratios: [3.5],
          offP99Ms: 80,
          onP99Ms: 20,
          onServerRunP99Ms: 5,
          p99BoundMs: 4.6,
          onMeanBatchRows: 30,
          lost: 0,
          duplicates: 0,
          wrong: 0,
          non200: 0,
        },
      ],
    },
  ],
  burst: {
    status: { 200: 5, 503: 900 },
    errors: 0,
    timeouts: 0,
    rssIdleBytes: 2 ** 26,
    rssBeforeBytes: 2 ** 26,
    rssPeakBytes: 2 ** 27,
    rssAfterBytes: 2 ** 26,
    healthzAfter: 200,
    count,
  },
  shutdown: { code: 0, signal: null },
};

test('the serving section: the table per model, the accounting, the burst, and a requests/s chart', () => {
  const { markdown, svgs } = render(null, null, { serve });
  assert.match(markdown, /## Serving over HTTP/);
  assert.match(markdown, /\| 64 \| 1000 \| 3500 \| 3\.50 \| 80\.0 \| 20\.0 \| <= 5\.000 \| 4\.600 \| 30\.0 \| 0 \/ 0 \/ 0 \/ 0 \|/);
  assert.match(markdown, /sent 20 requests and got 18 answers/);
  assert.match(markdown, /answers 5 x 200, 900 x 503/);
  assert.match(markdown, /peak 128\.0 MiB/);
  const svg: string = svgs['img/bench-serve-mnist.svg'];
  assert.match(svg, /64 connections/);
  assert.match(svg, /batching on, 64 connections: 3500 req\/s/);
  assert.not.match(svg, /<m>/, 'escaped');
});

const cnnRow = (engine: string, ms: number, cpu: number) => ({ engine, samples: 5, medianMs: ms, p10Ms: ms, p90Ms: ms, cpuMedianMs: cpu });
const ratio = (wall: number, cpu: number) => ({ wall, cpu });
const compareCnn = {
  command: 'npm run bench -- compare --models=mobilenet-mini',
  durationSeconds: 2,
  machine,
  cnn: [
    {
      model: 'mini',
      describe: 'mini',
      memory: { arenaBytes: 2048, liveBytesBound: 1024 },
      maxRelDiff: 1e-6,
      int8: {
        kernel: 'qconv-gemm-avx2',
        bytes: { fp32Eom: 1000, int8Eom: 400, int8EomCompressed: 250, qdqOnnx: 600 },
        accuracy: { rows: 2000, fp32: 96.85, int8: 96.7, ortInt8: 96.6, argmaxAgreementWithOrt: 0.9955, maxAbsDiffVsOrt: 1.0235 },
        profile: { opsMs: 1, runMs: 1.1, byKernel: { 'qconv-gemm-avx2': 0.6 }, top: [] },
      },
      configs: [
        {
          threads: 1,
          batch: 1,
          edgeoptVsOrt: 1.1,
          rows: [
            cnnRow('edgeopt-native-fp32', 0.2, 0.2),
            cnnRow('edgeopt-native-fp32-sync', 0.15, 0.16),
            cnnRow('ort-fp32', 0.17, 0.18),
            cnnRow('edgeopt-native-int8-sync', 0.1, 0.09),
            cnnRow('edgeopt-native-int8-sync-2t', 0.06, 0.1),
            cnnRow('ort-int8-qdq', 0.2, 0.21),
          ],
          int8: {
            int8VsFp32: ratio(1.5, 1.78),
            int8VsOrtInt8: ratio(2, 2.33),
            int8AsyncVsOrtInt8: ratio(1, 1),
            ortInt8VsOrtFp32: ratio(0.85, 0.86),
            twoThreadsVsOne: ratio(1.67, 0.9),
          },
        },
      ],
      profile: { opsMs: 1, runMs: 1.1, byKernel: { gemm: 0.5 }, top: [] },
    },
  ],
  cnnSummary: [{ target: 'mini, batch 1: edgeopt int8 >= 1.8x edgeopt fp32 (inferSync, CPU time)', ratio: 1.78, need: 1.8, met: false }],
};
const eomSize = {
  command: 'npm run bench -- eom-size',
  durationSeconds: 1,
  machine,
  rows: [
    {
      model: 'mini',
      files: {
        fp32: {
          total: 121368,
          header: { bytes: 15056, alone: 1400 },
          int8Weights: { bytes: 0, alone: 0 },
          float32: { bytes: 106312, alone: 90159 },
          int32Biases: { bytes: 0, alone: 0 },
          scales: { bytes: 0, alone: 0 },
          compressed: 91566,
          decodeMs: { plain: 0.4, compressed: 1.5 },
        },
        int8: {
          total: 53648,
          header: { bytes: 21176, alone: 2129 },
          int8Weights: { bytes: 25736, alone: 25119 },
          float32: { bytes: 40, alone: 43 },
          int32Biases: { bytes: 3328, alone: 1598 },
          scales: { bytes: 3368, alone: 2788 },
          compressed: 33125,
          decodeMs: { plain: 0.4, compressed: 0.9 },
        },
      },
      ratios: { int8VsFp32: 0.442, int8CompressedVsFp32: 0.273, int8CompressedVsFp32Compressed: 0.362 },
    },
  ],
};
const int8ConvKernels = {
  command: 'npm run bench -- kernels --kinds=qconv',
  durationSeconds: 1,
  machine,
  settings: { rounds: 5, secondsPerEngine: 0.5 },
  peaks: { avx2: 186, scalar: null },
  rows: [
    {
      bench: 'qconv',
      isa: 'avx2',
      threads: 1,
      name: 'int8 dw3x3 56x56x144',
      method: 'qdepthwise',
      macs: 1,
      ms: 0.8175,
      gops: 9.9,
      fractionOfPeak: 0.053,
    },
    {
      bench: 'qconv',
      isa: 'scalar',
      threads: 1,
      name: 'int8 dw3x3 56x56x144',
      method: 'qdepthwise',
      macs: 1,
      ms: 6.4,
      gops: 1.3,
      fractionOfPeak: null,
    },
  ],
};

test('the CNN int8 rows, the .eom size breakdown and the int8 convolution kernels render from their own result files', () => {
  const { markdown } = render(null, null, { compareCnn, eomSize, int8ConvKernels });
  assert.match(markdown, /## Convolutional networks: edgeopt vs onnxruntime-node \(fp32 and int8\)/);
  assert.match(markdown, /Command: `npm run bench -- compare --models=mobilenet-mini`/);
  assert.match(
    markdown,
    /\| mini \| 0\.150 \(0\.160\) \| 0\.100 \(0\.090\) \| 0\.060 \(0\.100\) \| 0\.170 \(0\.180\) \| 0\.200 \(0\.210\) \| \*\*1\.50x\*\* \(1\.78x\) \| \*\*2\.00x\*\* \(2\.33x\) \| \*\*1\.67x\*\* \(0\.90x\) \|/,
  );
  assert.match(
    markdown,
    /\| mini \| qconv-gemm-avx2 \| 96\.85 \/ 96\.70 \/ 96\.60 % \| 99\.55 % \(1\.024\) \| 1,000 \/ 400 \(0\.400x\) \/ 250 \(0\.250x\) \| 600 \|/,
  );
  assert.match(markdown, /- mini, batch 1: edgeopt int8 >= 1\.8x edgeopt fp32 \(inferSync, CPU time\): 1\.78x, \*\*not met\*\*/);
  assert.match(markdown, /- mini int8: ops 1\.000 ms of a 1\.100 ms run\. By kernel: qconv-gemm-avx2 0\.600 ms\./);
  assert.match(
    markdown,
    /\| mini \| int8 \| 53,648 \| 21,176 \(2,129\) \| 25,736 \(25,119\) \| 40 \(43\) \| 3,328 \(1,598\) \| 3,368 \(2,788\) \| 33,125 \| 0\.400 \/ 0\.900 \|/,
  );
  assert.match(markdown, /\| mini \| fp32 \| 121,368 \| 15,056 \(1,400\) \| - \| 106,312 \(90,159\) \| - \| - \| 91,566 \|/);
  assert.match(markdown, /\| mini \| 0\.442x \| 0\.273x \| 0\.362x \|/);
  assert.match(markdown, /avx2 186 GOP\/s, scalar no probe/);
  assert.match(markdown, /\| avx2 \| 1 \| int8 dw3x3 56x56x144 \| qdepthwise \| 0\.8175 \| 9\.9 \| 5\.3 % \|/);
  assert.match(markdown, /\| scalar \| 1 \| int8 dw3x3 56x56x144 \| qdepthwise \| 6\.4000 \| 1\.3 \| - \|/);
  assert.not.match(markdown, /NaN|undefined/);
});

test('without results the page says how to produce them', () => {
  const { markdown, svgs } = render(null, null);
  assert.match(markdown, /No compare results yet/);
  assert.match(markdown, /No table results yet/);
  assert.match(markdown, /No kernel results yet/);
  assert.match(markdown, /No serve results yet/);
  assert.equal(Object.keys(svgs), []);
});

test.run();
