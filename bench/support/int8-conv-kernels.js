// The int8 convolution rows of `npm run bench -- kernels` (kind qconv): depthwise 3x3 (stride 1
// and 2) and a dense 3x3 convolution on MobileNetV2-224 shapes, as the engine runs them. Each case
// is a one-conv graph (seeded weights, ReLU6 fused) quantized to static int8 the way
// quantize({ activations: 'static' }) does it, lowered, and compiled once per kernel table
// (addon.Program with the table's name); the conv op's own time comes from the program's per-op
// profile (wall clock around the op, so the quantize/transpose ops at the graph's edges do not
// count). GOP/s is 2 * MACs / time; "of peak" divides by the table's measured one-core int8 peak
// (the register-only vpdpbusd / vpmaddwd loop of the kernels bench), times the threads. Tables
// run in interleaved rounds; medians. Measurements, never assertions.
'use strict';
const C = require('./common');

const CASES = [
  { name: 'int8 dw3x3 112x112x32', h: 112, inC: 32, outC: 32, k: 3, stride: 1, groups: 32 },
  { name: 'int8 dw3x3 s2 112x112x96', h: 112, inC: 96, outC: 96, k: 3, stride: 2, groups: 96 },
  { name: 'int8 dw3x3 56x56x144', h: 56, inC: 144, outC: 144, k: 3, stride: 1, groups: 144 },
  { name: 'int8 dw3x3 14x14x576', h: 14, inC: 576, outC: 576, k: 3, stride: 1, groups: 576 },
  { name: 'int8 conv3x3 56x56x64->64', h: 56, inC: 64, outC: 64, k: 3, stride: 1, groups: 1 },
  { name: 'int8 conv3x3 28x28x128->128', h: 28, inC: 128, outC: 128, k: 3, stride: 1, groups: 1 },
];
const ROUNDS = 5;

/** The lowered one-conv int8 program of case `c`, its qconv op index and MACs. */
function qconvProgram(E, c) {
  const b = new E.GraphBuilder('qconv', [c.inC, c.h, c.h], { seed: 3 });
  const y = b.relu6(b.conv(b.input, c.outC, c.k, { pad: Math.floor(c.k / 2), stride: c.stride, groups: c.groups, bias: true }));
  const g = b.build(y);
  const per = c.inC * c.h * c.h;
  const calibration = { data: C.randomRows(2, per, 5).map((v) => v * 2 - 1), shape: [2, c.inC, c.h, c.h] };
  const program = E.lowerGraph(E.quantizeGraph(g, { activations: 'static', calibration }));
  const at = program.ops.findIndex((o) => o.op === 'qconv');
  const op = program.ops[at];
  const macs = op.outH * op.outW * op.outC * op.kh * op.kw * (op.inC / op.groups);
  return { program, at, macs, x: calibration.data.subarray(0, per) };
}

/** Rows for every case x threads x table; `peakOf(isa)` is the table's one-core int8 peak (GOP/s) or null. */
function qconvRows(addon, isas, threadsList, opts, peakOf) {
  const E = C.loadEdgeopt();
  const rows = [];
  for (const c of CASES.filter((x) => !opts.convs || opts.convs.some((f) => x.name.includes(f)))) {
    const { program, at, macs, x } = qconvProgram(E, c);
    for (const threads of threadsList) {
      const engines = isas
        .filter((isa) => isa !== 'scalar' || macs <= 2e7 || opts.all)
        .map((isa) => {
          const p = new addon.Program(program, isa, threads);
          return { isa, p, method: p.opKernels[at] || 'qconv', repeat: Math.max(1, Math.round(2e6 / macs)), times: [] };
        });
      for (const e of engines) e.p.profile([x], 1, 1); // warm-up: scratch and packed weights
      for (let round = 0; round < ROUNDS; round++)
        for (const e of engines) {
          const end = C.now() + (opts.maxTime * 1000) / ROUNDS;
          do e.times.push((e.p.profile([x], 1, e.repeat)[at] / e.repeat) * 1000);
          while (C.now() < end);
        }
      for (const e of engines) {
        const ms = C.summarize(e.times).median;
        const gops = (2 * macs) / (ms / 1e3) / 1e9;
        const peak = peakOf(e.isa);
        rows.push({
          bench: 'qconv',
          isa: e.isa,
          threads,
          name: c.name,
          method: e.method,
          macs,
          ms: C.round(ms, 4),
          gops: C.round(gops, 1),
          fractionOfPeak: peak ? C.round(gops / (peak * threads), 3) : null,
          samples: e.times.length,
        });
        e.p.release();
        if (!opts.json) printRow(rows[rows.length - 1]);
      }
    }
  }
  return rows;
}

let headerDone = false;
function printRow(r) {
  if (!headerDone) {
    console.log('\nisa        threads int8 conv                              method                        ms     GOP/s  of int8 peak');
    headerDone = true;
  }
  console.log(
    `${r.isa.padEnd(10)} ${String(r.threads).padStart(7)} ${r.name.padEnd(38)} ${r.method.padEnd(24)} ${r.ms.toFixed(4).padStart(9)} ` +
      `${r.gops.toFixed(1).padStart(9)} ${r.fractionOfPeak === null ? '           -' : `${(r.fractionOfPeak * 100).toFixed(1).padStart(11)}%`}`,
  );
}

module.exports = { qconvRows };
