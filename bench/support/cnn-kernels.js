// The convolution rows of `npm run bench -- kernels`: fp32 conv 3x3 / 1x1 and
// depthwise 3x3 (stride 1 and 2) on MobileNetV2-224 and mobilenet-mini shapes,
// GFLOP/s (2 * MACs / time) and the fraction of the table's measured fp32 FMA
// peak, next to onnxruntime-node running a one-op ONNX model of the same shape
// (Conv, plus Clip when the row fuses ReLU6) in the same run. ORT gets an NCHW
// input and is timed per awaited run() (its per-call overhead is in its
// figure; the shapes are chosen big enough that it is small, and the tiny
// mobilenet-mini rows say so). Both run one thread unless asked otherwise.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** ConvOp geometry for a square kernel with "same" padding (k/2 each side). */
function conv(h, w, inC, outC, k, stride = 1, groups = 1) {
  const pad = Math.floor(k / 2);
  return {
    inH: h,
    inW: w,
    inC,
    outH: Math.floor((h + 2 * pad - k) / stride) + 1,
    outW: Math.floor((w + 2 * pad - k) / stride) + 1,
    outC,
    kh: k,
    kw: k,
    strideH: stride,
    strideW: stride,
    dilationH: 1,
    dilationW: 1,
    padTop: pad,
    padLeft: pad,
    padBottom: pad,
    padRight: pad,
    groups,
  };
}

const RELU6 = { kind: 'clip', min: 0, max: 6 };
const NONE = { kind: 'none' };

const CASES = [
  { name: 'conv3x3 56x56x64->64', shape: conv(56, 56, 64, 64, 3), act: NONE },
  { name: 'conv3x3 s2 224x224x3->32 (v2 stem)', shape: conv(224, 224, 3, 32, 3, 2), act: RELU6 },
  { name: 'conv1x1 56x56x64->64', shape: conv(56, 56, 64, 64, 1), act: NONE },
  { name: 'conv1x1 56x56x24->144 (v2 expand)', shape: conv(56, 56, 24, 144, 1), act: RELU6 },
  { name: 'conv1x1 28x28x192->32 (v2 project)', shape: conv(28, 28, 192, 32, 1), act: NONE },
  { name: 'conv1x1 14x14x96->576 (v2 expand)', shape: conv(14, 14, 96, 576, 1), act: RELU6 },
  { name: 'conv1x1 7x7x320->1280 (v2 head)', shape: conv(7, 7, 320, 1280, 1), act: RELU6 },
  { name: 'dw3x3 112x112x32', shape: conv(112, 112, 32, 32, 3, 1, 32), act: RELU6 },
  { name: 'dw3x3 s2 112x112x96', shape: conv(112, 112, 96, 96, 3, 2, 96), act: RELU6 },
  { name: 'dw3x3 56x56x144', shape: conv(56, 56, 144, 144, 3, 1, 144), act: RELU6 },
  { name: 'dw3x3 s2 56x56x144', shape: conv(56, 56, 144, 144, 3, 2, 144), act: RELU6 },
  { name: 'dw3x3 14x14x576', shape: conv(14, 14, 576, 576, 3, 1, 576), act: RELU6 },
  { name: 'dw5x5 28x28x120', shape: conv(28, 28, 120, 120, 5, 1, 120), act: RELU6 },
  { name: 'mini conv1x1 28x28x16->48', shape: conv(28, 28, 16, 48, 1), act: RELU6 },
  { name: 'mini dw3x3 s2 28x28x48', shape: conv(28, 28, 48, 48, 3, 2, 48), act: RELU6 },
  { name: 'mini conv3x3 28x28x1->16 (stem)', shape: conv(28, 28, 1, 16, 3), act: RELU6 },
];

const macsOf = (s) => s.outH * s.outW * s.outC * s.kh * s.kw * (s.inC / s.groups);

// --- onnxruntime-node: a one-op model of the same shape ---

let proto;
function onnxProto() {
  if (!proto) {
    require('tsx/cjs/api').register();
    proto = require(path.join(__dirname, '..', '..', 'lib', 'model', 'onnx', 'proto.ts'));
  }
  return proto;
}

/** Conv (+ Clip for ReLU6) in opset 13 with seeded weights; input NCHW [1, inC, inH, inW]. */
function convModel(s, act) {
  const { AttrType, DataType, encodeModelProto } = onnxProto();
  let seed = 7;
  const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  const w = Float32Array.from({ length: s.outC * (s.inC / s.groups) * s.kh * s.kw }, rand);
  const b = Float32Array.from({ length: s.outC }, rand);
  const tensor = (name, dims, data) => ({ name, dims, data_type: DataType.FLOAT, raw_data: new Uint8Array(data.buffer) });
  const ints = (name, v) => ({ name, type: AttrType.INTS, ints: v });
  const nodes = [
    {
      op_type: 'Conv',
      input: ['x', 'w', 'b'],
      output: [act.kind === 'none' ? 'y' : 'c'],
      attribute: [
        ints('kernel_shape', [s.kh, s.kw]),
        ints('strides', [s.strideH, s.strideW]),
        ints('pads', [s.padTop, s.padLeft, s.padBottom, s.padRight]),
        ints('dilations', [s.dilationH, s.dilationW]),
        { name: 'group', type: AttrType.INT, i: s.groups },
      ],
    },
  ];
  const inits = [tensor('w', [s.outC, s.inC / s.groups, s.kh, s.kw], w), tensor('b', [s.outC], b)];
  if (act.kind === 'clip') {
    nodes.push({ op_type: 'Clip', input: ['c', 'lo', 'hi'], output: ['y'] });
    inits.push(tensor('lo', [], new Float32Array([act.min])), tensor('hi', [], new Float32Array([act.max])));
  }
  const info = (name, dims) => ({
    name,
    type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  });
  return encodeModelProto({
    ir_version: 8,
    producer_name: 'edgeopt-bench',
    opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'conv',
      node: nodes,
      initializer: inits,
      input: [info('x', [1, s.inC, s.inH, s.inW])],
      output: [info('y', [1, s.outC, s.outH, s.outW])],
    },
  });
}

/** Appends per-call times (ms) of `fn` for about `seconds` to `into`. */
async function sample(fn, seconds, into) {
  const end = performance.now() + seconds * 1000;
  do {
    const t0 = performance.now();
    await fn();
    into.push(performance.now() - t0);
  } while (performance.now() < end);
}

const median = (times) => {
  const t = [...times].sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
};

/**
 * A profiled onnxruntime-node session of the one-op model. Two figures come
 * out of it: the per-call time of an awaited run() (what a caller sees,
 * including the hop to libuv's pool and back, which on a loaded machine can
 * dwarf a small kernel), and ORT's own per-node kernel time from its profile
 * (the conv node and a fused or separate Clip, without the NCHWc reorders
 * that a one-op model adds around the conv and a whole network would not):
 * the like-for-like figure for a kernel.
 */
async function ortProfiled(ort, s, act, threads, level) {
  const prefix = path.join(os.tmpdir(), `edgeopt-bench-ort-${process.pid}-${level}`);
  const session = await ort.InferenceSession.create(convModel(s, act), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: level,
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const data = Float32Array.from({ length: s.inC * s.inH * s.inW }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const x = new ort.Tensor('float32', data, [1, s.inC, s.inH, s.inW]);
  const run = () => session.run({ x });
  await run();
  return {
    level,
    run,
    times: [],
    /** Releases the session and reads its profile: the median per-run kernel time (ms). */
    async kernelMs() {
      await session.release();
      const dir = path.dirname(prefix);
      const files = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)));
      const events = files.flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
      for (const f of files) fs.rmSync(path.join(dir, f));
      const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => ({ ts: e.ts, end: e.ts + e.dur, us: 0 }));
      for (const e of events.filter((x) => x.cat === 'Node' && !/^Reorder/.test(x.args?.op_name ?? ''))) {
        const r = runs.find((q) => e.ts >= q.ts && e.ts <= q.end);
        if (r) r.us += e.dur;
      }
      return median(runs.slice(1).map((r) => r.us / 1000));
    },
  };
}

/**
 * Rows for every case x threads x table; `peakOf(isa)` is the table's one-core
 * fp32 peak (GFLOP/s). On a shared machine the engines run in interleaved
 * rounds (each round samples every engine in turn), so a load change hits all
 * alike; medians over all rounds are reported. ORT runs with all graph
 * optimizations (its NCHWc kernels) and with basic ones (plain NCHW); the
 * faster kernel time is its figure.
 */
async function convRows(addon, isas, threadsList, opts, peakOf) {
  let ort = null;
  if (opts.ort) {
    try {
      ort = require('onnxruntime-node');
    } catch (e) {
      console.error(`kernels bench: onnxruntime-node not loaded (${String(e.message).split('\n')[0]}); conv rows without it`);
    }
  }
  const rounds = 5;
  const rows = [];
  for (const c of CASES.filter((x) => !opts.convs || opts.convs.some((f) => x.name.includes(f)))) {
    const macs = macsOf(c.shape);
    for (const threads of threadsList) {
      const engines = [];
      for (const isa of isas) {
        if (isa === 'scalar' && macs > 2e7 && !opts.all) continue;
        const cb = new addon.ConvBench(c.shape, c.act, isa, threads);
        const repeat = Math.max(1, Math.round(2e6 / macs));
        engines.push({ isa, method: cb.method, repeat, run: () => cb.run(repeat), times: [] });
      }
      const orts = ort
        ? [await ortProfiled(ort, c.shape, c.act, threads, 'all'), await ortProfiled(ort, c.shape, c.act, threads, 'basic')]
        : [];
      for (let round = 0; round < rounds; round++)
        for (const e of [...engines, ...orts]) await sample(e.run, opts.maxTime / rounds, e.times);
      let ortKernel = null;
      for (const o of orts) {
        const ms = await o.kernelMs();
        if (!ortKernel || ms < ortKernel.ms) ortKernel = { ms, level: o.level, callMs: median(o.times) };
      }
      for (const e of engines) {
        const ms = median(e.times) / e.repeat;
        const gflops = (2 * macs) / (ms / 1e3) / 1e9;
        rows.push({
          bench: 'conv',
          isa: e.isa,
          threads,
          name: c.name,
          method: e.method,
          macs,
          ms: round(ms, 4),
          gflops: round(gflops),
          fractionOfPeak: round(gflops / (peakOf(e.isa) * threads), 3),
          samples: e.times.length,
          ortKernelMs: ortKernel ? round(ortKernel.ms, 4) : null,
          ortCallMs: ortKernel ? round(ortKernel.callMs, 4) : null,
          ortLevel: ortKernel ? ortKernel.level : null,
          vsOrt: ortKernel ? round(ortKernel.ms / ms, 2) : null,
        });
        if (!opts.json) printConvRow(rows[rows.length - 1]);
      }
    }
  }
  return rows;
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

let headerDone = false;
function printConvRow(r) {
  if (!headerDone) {
    console.log(
      '\nisa     threads conv                                   method        ms    GFLOP/s  of peak  ORT kernel ms  ORT/edgeopt  ORT call ms',
    );
    headerDone = true;
  }
  console.log(
    `${r.isa.padEnd(7)} ${String(r.threads).padStart(7)} ${r.name.padEnd(38)} ${r.method.padEnd(9)} ${r.ms.toFixed(4).padStart(9)} ` +
      `${r.gflops.toFixed(1).padStart(9)} ${(r.fractionOfPeak * 100).toFixed(1).padStart(7)}% ` +
      `${r.ortKernelMs === null ? '            -' : `${r.ortKernelMs.toFixed(4)} ${r.ortLevel.padEnd(5)}`.padStart(14)} ` +
      `${r.vsOrt === null ? '' : `${r.vsOrt.toFixed(2)}x`.padStart(12)} ${r.ortCallMs === null ? '' : r.ortCallMs.toFixed(4).padStart(12)}`,
  );
}

module.exports = { convRows, CASES, _convModel: convModel };
