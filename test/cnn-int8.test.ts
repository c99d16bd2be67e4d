/**
 * Static int8 CNNs: the integer kernels of the TS twin against independent
 * references on odd shapes, quantizeGraph on the MobileNet fixture and on a
 * built graph with every int8 op, the observers, exclusion with Q/DQ
 * boundaries, and every bad input refused with its code.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeEom, encodeEom, encodeOnnx, loadModel, quantizeGraph, validateGraph } from '../lib';
import { nativeAddon } from '../lib/backends';
import { int8 } from '../lib/backends/ts/cnn';
import { multiplyByQuantizedMultiplier, quantizeBias, quantizeMultiplier } from '../lib/backends/ts/requantize';
import { mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows, type Dataset } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { lowerGraph } from '../lib/engine/lower';
import type { Program } from '../lib/engine/program';
import { fromNative } from '../lib/errors';
import { activationTable } from '../lib/engine/lower-int8';
import { GraphBuilder } from '../lib/model/builder';
import type { Graph, GraphNode } from '../lib/model/graph';
import { entropyThreshold, observeTensors } from '../lib/optimizer/observe';
import { FIXTURES, inferOnce, rng, randomS8, sameFloats, sameInts, throwsCode, optionalOrt } from './helpers';

const MOBILENET = path.join(FIXTURES, 'mobilenet-mini-1x28x28', 'model.onnx');
const calibration = sliceRows(mnistTrain(), 0, 100);
const testRows = sliceRows(mnistTest(), 0, 64);

const argmax = (y: Float32Array, row: number, n: number) => {
  let best = 0;
  for (let j = 1; j < n; j++) if (y[row * n + j] > y[row * n + best]) best = j;
  return best;
};

test('requantize: the split-product twin equals the BigInt definition on random and extreme values', () => {
  const r = rng(3);
  const xs = [0, 1, -1, 2147483647, -2147483648, 1 << 30, -(1 << 30)];
  for (let i = 0; i < 20000; i++) xs.push(Math.floor((r() - 0.5) * 2 ** (i % 3 === 0 ? 32 : i % 3 === 1 ? 18 : 9)));
  const reals = [1e-9, 3.7e-5, 0.0123, 0.5, 0.75, 0.999999, 1, 1.5, 3, 1000];
  for (let i = 0; i < 40; i++) reals.push(Math.exp((r() - 0.7) * 20));
  for (const real of reals) {
    const qm = quantizeMultiplier(real);
    for (const x of xs) {
      if (int8.requantize(x, qm.m0, qm.shift) !== multiplyByQuantizedMultiplier(x, qm))
        assert.unreachable(`x ${x} real ${real}: ${int8.requantize(x, qm.m0, qm.shift)} != ${multiplyByQuantizedMultiplier(x, qm)}`);
    }
  }
});

/** qconv2d's definition written another way: padded taps read the input zero point; BigInt requantization. */
function referenceQConv(
  s: Parameters<typeof int8.qconv2d>[0],
  x: Int8Array,
  w: Int8Array,
  bias: Int32Array,
  m: Int32Array,
  sh: Int32Array,
): Int8Array {
  const y = new Int8Array(s.outH * s.outW * s.outC);
  const icg = s.inC / s.groups;
  for (let oy = 0; oy < s.outH; oy++)
    for (let ox = 0; ox < s.outW; ox++)
      for (let oc = 0; oc < s.outC; oc++) {
        let acc = bias[oc];
        const g = Math.floor(oc / (s.outC / s.groups));
        for (let ky = 0; ky < s.kh; ky++)
          for (let kx = 0; kx < s.kw; kx++)
            for (let ci = 0; ci < icg; ci++) {
              const iy = oy * s.strideH - s.padTop + ky * s.dilationH;
              const ix = ox * s.strideW - s.padLeft + kx * s.dilationW;
              const inside = iy >= 0 && iy < s.inH && ix >= 0 && ix < s.inW;
              const v = inside ? x[(iy * s.inW + ix) * s.inC + g * icg + ci] : s.inputZeroPoint;
              acc += (v - s.inputZeroPoint) * w[((oc * s.kh + ky) * s.kw + kx) * icg + ci];
            }
        const q = multiplyByQuantizedMultiplier(acc, { m0: m[oc], shift: sh[oc] }) + s.outputZeroPoint;
        y[(oy * s.outW + ox) * s.outC + oc] = Math.min(s.max, Math.max(s.min, q));
      }
  return y;
}

test('qconv2d: exact against the reference on odd shapes (1x1, 3x3, 5x5, strides, dilation, groups, depthwise)', () => {
  const r = rng(11);
  const cases = [
    { inH: 1, inW: 1, inC: 1, outC: 1, k: 1, stride: 1, pad: 0, dil: 1, groups: 1 },
    { inH: 3, inW: 17, inC: 3, outC: 5, k: 3, stride: 1, pad: 1, dil: 1, groups: 1 },
    { inH: 17, inW: 3, inC: 17, outC: 17, k: 3, stride: 2, pad: 1, dil: 1, groups: 17 },
    { inH: 9, inW: 11, inC: 65, outC: 65, k: 5, stride: 1, pad: 2, dil: 1, groups: 65 },
    { inH: 7, inW: 7, inC: 6, outC: 9, k: 3, stride: 2, pad: 2, dil: 2, groups: 3 },
    { inH: 5, inW: 6, inC: 63, outC: 3, k: 1, stride: 1, pad: 0, dil: 1, groups: 1 },
  ];
  for (const c of cases) {
    const outH = Math.floor((c.inH + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride) + 1;
    const outW = Math.floor((c.inW + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride) + 1;
    const s = {
      inH: c.inH,
      inW: c.inW,
      inC: c.inC,
      outH,
      outW,
      outC: c.outC,
      kh: c.k,
      kw: c.k,
      strideH: c.stride,
      strideW: c.stride,
      dilationH: c.dil,
      dilationW: c.dil,
      padTop: c.pad,
      padLeft: c.pad,
      padBottom: c.pad,
      padRight: c.pad,
      groups: c.groups,
      inputZeroPoint: Math.floor(r() * 255) - 128,
      outputZeroPoint: Math.floor(r() * 255) - 128,
      min: -100,
      max: 120,
    };
    const x = randomS8(c.inH * c.inW * c.inC * 2, r);
    const w = randomS8(c.outC * c.k * c.k * (c.inC / c.groups), r);
    w[0] = -127; // full-range weights (no saturation shortcuts)
    const bias = Int32Array.from({ length: c.outC }, () => Math.floor((r() - 0.5) * 20000));
    const qm = Array.from({ length: c.outC }, () => quantizeMultiplier(0.0005 + r() * 0.01));
    const m = Int32Array.from(qm, (q) => q.m0);
    const sh = Int32Array.from(qm, (q) => q.shift);
    const y = int8.qconv2d(s, x, w, bias, m, sh, new Int8Array(2 * outH * outW * c.outC), 2);
    const per = c.inH * c.inW * c.inC;
    for (let n = 0; n < 2; n++) {
      const want = referenceQConv(s, x.subarray(n * per, (n + 1) * per), w, bias, m, sh);
      sameInts(y.subarray(n * want.length, (n + 1) * want.length), want, `${JSON.stringify(c)} image ${n}`);
    }
  }
});

test('int8 pooling, add, concat and tables follow TFLite rounding', () => {
  assert.equal(
    [int8.roundedDivide(5, 2), int8.roundedDivide(-5, 2), int8.roundedDivide(4, 3), int8.roundedDivide(-4, 3), int8.roundedDivide(7, 0)],
    [3, -3, 1, -1, 0],
  );
  // A 3x3 average over a 3x3 image with pad 1 (count excludes pads): the corner averages 4 taps.
  const x = Int8Array.from([1, 2, 3, 4, 5, 6, 7, 8, -128]);
  const s = {
    op: 'qavgpool' as const,
    inH: 3,
    inW: 3,
    c: 1,
    outH: 1,
    outW: 1,
    kh: 2,
    kw: 2,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    padTop: 1,
    padLeft: 1,
    padBottom: 0,
    padRight: 0,
    countIncludePad: false,
  };
  assert.equal(Array.from(int8.qpool2d(s, x, new Int8Array(1))), [1]);
  assert.equal(Array.from(int8.qpool2d({ ...s, countIncludePad: true }, x, new Int8Array(1))), [0]); // 1 / 4 rounds to 0
  assert.equal(Array.from(int8.qpool2d({ ...s, op: 'qmaxpool', kh: 3, kw: 3, padTop: 0, padLeft: 0 }, x, new Int8Array(1))), [8]);
  // Add: equal grids double the value; identical scales with a zero point shift it.
  const add = { fn: 'add' as const, aZeroPoint: 0, bZeroPoint: 0, outputZeroPoint: 0, leftShift: 20, min: -128, max: 127 };
  const half = quantizeMultiplier(0.5);
  const out = quantizeMultiplier(1 / 2 ** 20);
  const y = new Int8Array(3);
  int8.qbinary(
    {
      ...add,
      aMultiplier: half.m0,
      aShift: half.shift,
      bMultiplier: half.m0,
      bShift: half.shift,
      multiplier: out.m0,
      shift: out.shift + 1,
    },
    Int8Array.from([3, -7, 100]),
    Int8Array.from([4, 2, 100]),
    y,
  );
  assert.equal(Array.from(y), [7, -5, 127]);
  // Concat: a rescaled input is requantized, an input on the output grid copied.
  const yc = new Int8Array(6);
  const m = quantizeMultiplier(0.5);
  int8.qconcat(
    {
      outer: 2,
      sizes: [2, 1],
      rescale: [false, true],
      zeroPoints: [0, 10],
      inputMultipliers: [0, m.m0],
      inputShifts: [0, m.shift],
      outputZeroPoint: -1,
    },
    [Int8Array.from([1, 2, 3, 4]), Int8Array.from([20, 0])],
    yc,
    2,
  );
  assert.equal(Array.from(yc), [1, 2, 4, 3, 4, -6]);
  // A ReLU table between grids is the clamp.
  const t = activationTable({ kind: 'relu' }, { scale: 0.1, zeroPoint: -20 }, { scale: 0.1, zeroPoint: -20 });
  for (let q = -128; q < 128; q++) assert.is(t[q + 128], Math.max(q, -20));
});

test('observers: entropy and percentile ranges sit inside min/max; the KL threshold clips a long tail and keeps a flat histogram', () => {
  const flat = new Float64Array(2048).fill(10);
  assert.is(entropyThreshold(flat), 2048);
  const tail = new Float64Array(2048);
  for (let i = 0; i < 2048; i++) tail[i] = i < 200 ? 100000 * Math.exp(-i / 40) : 1;
  assert.ok(entropyThreshold(tail) < 1500, String(entropyThreshold(tail)));
  const g = loadModel(MOBILENET);
  const small = sliceRows(calibration, 0, 32);
  const mm = observeTensors(g, small, 'minmax');
  for (const ob of ['entropy', { percentile: 99.9 }] as const) {
    const r = observeTensors(g, small, ob);
    assert.equal([...r.keys()], [...mm.keys()]);
    for (const [name, range] of r) {
      assert.ok(
        range.lo <= 0 && range.hi >= 0 && range.lo >= mm.get(name)!.lo - 1e-6 && range.hi <= mm.get(name)!.hi * (1 + 1e-6) + 1e-6,
        `${JSON.stringify(ob)} ${name}`,
      );
    }
  }
  throwsCode(() => observeTensors(g, small, 'kl' as never), 'E_ARGUMENT', /observer/);
  throwsCode(() => observeTensors(g, small, { percentile: 40 }), 'E_ARGUMENT', /observer/);
});

let mobilenetInt8: Graph | undefined;
const quantizedMobilenet = () => (mobilenetInt8 ??= quantizeGraph(loadModel(MOBILENET), { activations: 'static', calibration }));

test('MobileNet fixture: every Conv, activation, Add and the pool run in int8; predictions agree with fp32; .eom keeps it bit for bit', () => {
  const fp32 = loadModel(MOBILENET);
  const q = quantizedMobilenet();
  const program = lowerGraph(q);
  const kinds = program.ops.map((o) => o.op);
  assert.is(kinds.filter((k) => k === 'qconv').length, fp32.nodes.filter((n) => n.op === 'Conv').length);
  assert.is(kinds.filter((k) => k === 'qbinary').length, 2);
  assert.is(kinds.filter((k) => k === 'qlut').length, 5); // the HardSwish layers
  assert.ok(kinds.includes('qglobalavgpool'));
  assert.equal(
    kinds.filter((k) => k === 'quantize' || k === 'dequantize'),
    ['quantize', 'dequantize'],
  ); // only at the edges
  assert.not.ok(kinds.includes('conv'));
  assert.is(q.metadata['quantization.float32'], undefined);
  const n = testRows.shape[0];
  const want = inferOnce(fp32, testRows.data, [n, 1, 28, 28]);
  const got = inferOnce(q, testRows.data, [n, 1, 28, 28]);
  let agree = 0;
  for (let i = 0; i < n; i++) if (argmax(want, i, 10) === argmax(got, i, 10)) agree++;
  assert.ok(agree >= n - 2, `${agree} of ${n} argmaxes agree`);
  const back = decodeEom(encodeEom(q));
  assert.equal(back.activationQuant, q.activationQuant);
  sameFloats(inferOnce(back, testRows.data, [n, 1, 28, 28]), got, '.eom round trip');
  assert.ok(encodeEom(q).length < 0.45 * encodeEom(fp32).length);
});

test('MobileNet and LeNet-5 int8: the compressed .eom is smaller and runs bit for bit as the model did', () => {
  for (const [name, model] of [
    ['mobilenet-mini', quantizedMobilenet()],
    ['lenet5', quantizeGraph(loadModel(path.join(FIXTURES, 'lenet5-1x28x28', 'model.onnx')), { activations: 'static', calibration })],
  ] as const) {
    const plain = encodeEom(model).length;
    const z = encodeEom(model, { compress: true });
    // int8 weights hardly compress (LeNet-5 is mostly weights); the graph description, scales and biases do.
    assert.ok(z.length < 0.9 * plain, `${name}: ${z.length} vs ${plain} bytes`);
    const back = decodeEom(z);
    assert.equal(back.activationQuant, model.activationQuant, name);
    const n = testRows.shape[0];
    const want = inferOnce(model, testRows.data, [n, 1, 28, 28]);
    sameFloats(inferOnce(back, testRows.data, [n, 1, 28, 28]), want, `${name} compressed round trip`);
    const ts = new EdgeInferenceEngine({ device: 'ts' });
    ts.loadModelSync('m', back);
    sameFloats(ts.inferSync('m', { data: testRows.data, shape: [n, 1, 28, 28] }).data, want, `${name}: the TS twin`);
    ts.dispose();
  }
});

test('int8 Conv biases are snapped onto their int32 grid (same integers) and stored as int32; compressed MobileNet <= 0.27x fp32', () => {
  const fp32 = loadModel(MOBILENET);
  const q = quantizedMobilenet();
  const convs = q.nodes.filter((n) => n.op === 'Conv');
  let moved = 0;
  for (const node of convs) {
    const [x, w, b] = node.inputs;
    const snapped = q.tensors[b].data as Float32Array;
    const original = fp32.tensors[b].data as Float32Array;
    const ws = q.tensors[w].quant!.scale;
    const s = q.activationQuant![x].scale;
    snapped.forEach((v, c) => {
      assert.is(quantizeBias(v, s, ws[c]), quantizeBias(original[c], s, ws[c]), `${b}[${c}]`);
      if (v !== original[c]) moved++;
    });
  }
  assert.ok(moved > 0, 'the snap moved some biases');
  sameFloats(
    fp32.tensors[convs[0].inputs[2]].data as Float32Array,
    loadModel(MOBILENET).tensors[convs[0].inputs[2]].data as Float32Array,
    'fp32 model untouched',
  );

  const plain = encodeEom(q);
  const header = JSON.parse(plain.toString('utf8', 8, 8 + Number(plain.readBigUInt64LE(0))));
  for (const node of convs) assert.is(header[node.inputs[2]].dtype, 'I32', node.inputs[2]);
  for (const bytes of [plain, encodeEom(q, { compress: true })]) {
    const back = decodeEom(bytes);
    for (const t of Object.values(q.tensors))
      if (t.data instanceof Float32Array) sameFloats(back.tensors[t.name].data as Float32Array, t.data, t.name);
  }
  const ratio = encodeEom(q, { compress: true }).length / encodeEom(fp32).length;
  assert.ok(ratio <= 0.27, `compressed int8 / fp32 = ${ratio.toFixed(4)}`);

  // A bias off its grid (edited after quantization) is written as float32, bit for bit.
  const edited = { ...q, tensors: { ...q.tensors } };
  const b0 = convs[0].inputs[2];
  const off = Float32Array.from(q.tensors[b0].data as Float32Array);
  off[3] += 1e-3;
  edited.tensors[b0] = { ...q.tensors[b0], data: off };
  const offBytes = encodeEom(edited);
  assert.is(JSON.parse(offBytes.toString('utf8', 8, 8 + Number(offBytes.readBigUInt64LE(0))))[b0].dtype, 'F32');
  sameFloats(decodeEom(offBytes).tensors[b0].data as Float32Array, off, 'off-grid bias');
});

test('a bias stored on its int32 grid with a missing input grid, weight scales or a wrong dtype is E_FORMAT', () => {
  const bytes = encodeEom(quantizedMobilenet());
  type Meta = { nodes: GraphNode[]; tensors: Record<string, Record<string, unknown>>; activationQuant: Record<string, unknown> };
  const rewrite = (edit: (meta: Meta) => void) => {
    const len = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + len));
    const meta = JSON.parse(header.__metadata__.edgeopt_graph);
    edit(meta);
    header.__metadata__.edgeopt_graph = JSON.stringify(meta);
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    return Buffer.concat([head, Buffer.from(json), bytes.subarray(8 + len)]);
  };
  const conv = (meta: Meta) => meta.nodes.find((n) => n.op === 'Conv' && meta.tensors[n.inputs[2]]?.biasGrid)!;
  throwsCode(() => decodeEom(rewrite((m) => delete m.activationQuant[conv(m).inputs[0]])), 'E_FORMAT', /not the bias of one Conv/);
  throwsCode(() => decodeEom(rewrite((m) => m.nodes.push({ ...conv(m), name: 'twin' }))), 'E_FORMAT', /not the bias of one Conv/);
  throwsCode(() => decodeEom(rewrite((m) => delete m.tensors[conv(m).inputs[1]].quant)), 'E_FORMAT', /no scales/);
  throwsCode(() => decodeEom(rewrite((m) => (m.tensors[conv(m).inputs[2]].dtype = 'int32'))), 'E_FORMAT', /plain float32 bias/);
  throwsCode(() => decodeEom(rewrite((m) => (m.tensors[conv(m).inputs[2]].shape = [1000]))), 'E_FORMAT', /stored values|scales/);
});

/** A built CNN with every int8 op: pools, a residual Add, Mul, Concat, Sigmoid, HardSwish, BatchNorm to fold. */
function allOps(): { g: Graph; data: Dataset } {
  const b = new GraphBuilder('int8-ops', [3, 13, 11], { seed: 5 });
  const c1 = b.relu(b.batchNorm(b.conv(b.input, 8, 3, { pad: 1, bias: true })));
  const p1 = b.maxPool(c1, 2, 2, 0, true);
  const dw = b.hardSwish(b.conv(p1, 8, 3, { pad: 1, groups: 8, bias: true }));
  const res = b.add(p1, dw);
  const gate = b.sigmoid(b.conv(res, 8, 1, { bias: true }));
  const mul = b.mul(res, gate);
  const cat = b.concat([mul, b.conv(res, 4, 1, { bias: true })]);
  const avg = b.averagePool(cat, 3, 2, 1);
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(avg)), 5));
  const r = rng(9);
  const rows = 40;
  const data = Float32Array.from({ length: rows * 3 * 13 * 11 }, () => r() * 2 - 0.5);
  return { g, data: { data, shape: [rows, 3, 13, 11] } };
}

test('a built CNN with every int8 op quantizes, runs each op in int8 and stays close to fp32', () => {
  const { g, data } = allOps();
  const q = quantizeGraph(g, { activations: 'static', calibration: data });
  const kinds = new Set(lowerGraph(q).ops.map((o) => o.op));
  for (const k of ['qconv', 'qmaxpool', 'qavgpool', 'qlut', 'qbinary', 'qconcat', 'qglobalavgpool', 'qdense'])
    assert.ok(kinds.has(k as never), `${k} in ${[...kinds]}`);
  assert.not.ok(kinds.has('conv'));
  const x = data.data.subarray(0, 8 * 3 * 13 * 11);
  const want = inferOnce(g, x, [8, 3, 13, 11]);
  const got = inferOnce(q, x, [8, 3, 13, 11]);
  const range = Math.max(...want) - Math.min(...want);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(want[i] - got[i]) < 0.1 * range, `output ${i}: ${got[i]} vs ${want[i]}`);
});

test('exclude keeps named layers in float32 with quantize/dequantize at the boundaries and says why', () => {
  const fp32 = loadModel(MOBILENET);
  const name = 'blocks.blocks.1.dw.dw.0.Conv';
  const q = quantizeGraph(fp32, { activations: 'static', calibration: sliceRows(calibration, 0, 16), exclude: [name] });
  assert.equal(JSON.parse(q.metadata['quantization.float32']), { [name]: 'excluded by the caller' });
  const program = lowerGraph(q);
  const i = program.ops.findIndex((o) => o.node === name && o.op === 'conv');
  assert.ok(i > 0, 'the excluded conv runs in float32');
  assert.is(program.ops[i - 1].op, 'dequantize');
  assert.is(program.ops[i + 1].op, 'quantize');
  throwsCode(() => quantizeGraph(fp32, { activations: 'static', calibration, exclude: ['nope'] }), 'E_NOT_FOUND', /'nope'/);
});

test('bad settings and broken grids are refused with their codes', () => {
  const fp32 = loadModel(MOBILENET);
  throwsCode(() => quantizeGraph(fp32), 'E_UNSUPPORTED_OP', /Conv layers.*'stem\.stem\.0\.Conv'.*static/);
  throwsCode(() => quantizeGraph(fp32, { activations: 'static', calibration, granularity: 'tensor' }), 'E_UNSUPPORTED_OP', /per-channel/);
  throwsCode(() => quantizeGraph(fp32, { activations: 'static' }), 'E_ARGUMENT', /calibration/);
  throwsCode(
    () => quantizeGraph(fp32, { activations: 'static', calibration: { data: new Float32Array(0), shape: [0, 1, 28, 28] } }),
    'E_ARGUMENT',
    /non-empty/,
  );
  const q = quantizedMobilenet();
  const first = q.nodes[0].outputs[0];
  for (const [grid, why] of [
    [{ scale: 0, zeroPoint: 0 }, /scale/],
    [{ scale: NaN, zeroPoint: 0 }, /scale/],
    [{ scale: 0.1, zeroPoint: 128 }, /zeroPoint/],
    [{ scale: 0.1, zeroPoint: 1.5 }, /zeroPoint/],
  ] as const)
    throwsCode(() => validateGraph({ ...q, activationQuant: { ...q.activationQuant, [first]: grid } }), 'E_FORMAT', why);
  throwsCode(
    () => validateGraph({ ...q, activationQuant: { ...q.activationQuant, [q.nodes[0].inputs[1]]: { scale: 1, zeroPoint: 0 } } }),
    'E_FORMAT',
    /not an activation/,
  );
  // int8 Conv weights with no grids have no kernel: lowering says so instead of guessing.
  const { activationQuant: _drop, ...noGrids } = q;
  throwsCode(() => lowerGraph(noGrids), 'E_UNSUPPORTED_OP', /int8 weights and no static int8 activation grids/);
});

/** Runs a graph on one device ('cpu' is native when the addon loads). */
function runOn(g: Graph, device: 'cpu' | 'ts', x: Float32Array, shape: number[], threads?: number): Float32Array {
  const engine = new EdgeInferenceEngine({ device, threads });
  try {
    engine.loadModelSync('m', g);
    if (device === 'cpu')
      assert.ok(
        engine.placement('m').every((p) => p.backend === 'native'),
        'every int8 node runs natively',
      );
    return engine.inferSync('m', { data: x, shape }).data;
  } finally {
    engine.dispose();
  }
}

test('native int8 ops are bit-identical to the TS twin (MobileNet fixture and the every-op graph)', () => {
  if (!nativeAddon()) return;
  const n = 24;
  sameFloats(
    runOn(quantizedMobilenet(), 'cpu', testRows.data.subarray(0, n * 784), [n, 1, 28, 28]),
    runOn(quantizedMobilenet(), 'ts', testRows.data.subarray(0, n * 784), [n, 1, 28, 28]),
    'mobilenet',
  );
  const { g, data } = allOps();
  const q = quantizeGraph(g, { activations: 'static', calibration: data });
  const x = data.data.subarray(0, 5 * 3 * 13 * 11);
  sameFloats(runOn(q, 'cpu', x, [5, 3, 13, 11]), runOn(q, 'ts', x, [5, 3, 13, 11]), 'every int8 op');
});

test('native qconv on the GEMM is bit-identical to the TS twin on odd shapes (1x1 rows, 3x3/5x5 im2col, strides, dilation, padding)', () => {
  if (!nativeAddon()) return;
  const cases = [
    { c: 1, h: 1, w: 1, outC: 1, k: 1 },
    { c: 1, h: 13, w: 11, outC: 16, k: 3, pad: 1 },
    { c: 2, h: 9, w: 10, outC: 5, k: 5, stride: 2, pad: 2, dilation: 2 },
    { c: 3, h: 17, w: 3, outC: 17, k: 3, stride: 2, pad: 1 },
    { c: 17, h: 5, w: 9, outC: 63, k: 1 },
    { c: 65, h: 3, w: 4, outC: 65, k: 1 },
    { c: 5, h: 9, w: 7, outC: 3, k: 5, pad: 2, dilation: 1 },
    { c: 6, h: 8, w: 9, outC: 17, k: 3, stride: 2, pad: 2, dilation: 2 },
    { c: 63, h: 6, w: 5, outC: 65, k: 3, pad: 1 },
    { c: 4, h: 7, w: 7, outC: 9, k: 1, stride: 2 },
  ];
  cases.forEach((c, i) => {
    const b = new GraphBuilder(`qconv-${i}`, [c.c, c.h, c.w], { seed: 20 + i });
    const g = b.build(b.relu(b.conv(b.input, c.outC, c.k, { stride: c.stride, pad: c.pad, dilation: c.dilation, bias: true })));
    const r = rng(30 + i);
    const rows = 13; // a batch of 13 images: pixel blocks cross image boundaries
    const data = Float32Array.from({ length: rows * c.c * c.h * c.w }, () => r() * 3 - 1);
    const q = quantizeGraph(g, { activations: 'static', calibration: { data, shape: [rows, c.c, c.h, c.w] } });
    assert.ok(
      lowerGraph(q).ops.some((o) => o.op === 'qconv'),
      `${JSON.stringify(c)} runs qconv`,
    );
    const shape = [rows, c.c, c.h, c.w];
    sameFloats(runOn(q, 'cpu', data, shape), runOn(q, 'ts', data, shape), JSON.stringify(c));
  });
});

test('native depthwise and grouped qconv are bit-identical to the TS twin on odd shapes, 1 and 2 threads', () => {
  if (!nativeAddon()) return;
  // Channel counts below, at and above the SIMD blocks; 3x3/5x5, strides 1/2, padding, dilation;
  // inputs spread past the calibration range so zero points sit near the ends and values clamp.
  const cases = [
    { c: 1, h: 5, w: 4, k: 3, stride: 1, pad: 1 },
    { c: 3, h: 7, w: 9, k: 3, stride: 2, pad: 1 },
    { c: 17, h: 9, w: 8, k: 5, stride: 1, pad: 2 },
    { c: 63, h: 6, w: 7, k: 3, stride: 2, pad: 0 },
    { c: 65, h: 7, w: 5, k: 5, stride: 2, pad: 2 },
    { c: 33, h: 8, w: 8, k: 3, stride: 1, pad: 2, dilation: 2 },
    { c: 12, h: 6, w: 5, k: 3, stride: 1, pad: 1, groups: 4, outC: 8 },
    // rows whose every column touches the padding; strided and dilated at once
    { c: 40, h: 4, w: 2, k: 3, stride: 1, pad: 1 },
    { c: 24, h: 11, w: 13, k: 3, stride: 2, pad: 2, dilation: 2 },
  ];
  cases.forEach((c, i) => {
    const b = new GraphBuilder(`qdw-${i}`, [c.c, c.h, c.w], { seed: 40 + i });
    const conv = b.conv(b.input, c.outC ?? c.c, c.k, {
      stride: c.stride,
      pad: c.pad,
      dilation: c.dilation,
      groups: c.groups ?? c.c,
      bias: true,
    });
    const g = b.build(i % 2 ? b.relu(conv) : conv);
    const r = rng(50 + i);
    const rows = 5;
    const shape = [rows, c.c, c.h, c.w];
    const calibrate = Float32Array.from({ length: rows * c.c * c.h * c.w }, () => (i % 3 === 0 ? r() * 2 : r() * 3 - 1));
    const data = calibrate.map((v, j) => (j % 7 === 0 ? v * 4 - 2 : v));
    const q = quantizeGraph(g, { activations: 'static', calibration: { data: calibrate, shape } });
    assert.ok(
      lowerGraph(q).ops.some((o) => o.op === 'qconv'),
      `${JSON.stringify(c)} runs qconv`,
    );
    const ts = runOn(q, 'ts', data, shape);
    for (const threads of [1, 2]) sameFloats(runOn(q, 'cpu', data, shape, threads), ts, `${JSON.stringify(c)}, ${threads} threads`);
  });
});

test('team runs (one image split over 2-4 threads) are bit-identical to the TS twin at any batch; MobileNet meets at its 4 depthwise convolutions only', () => {
  const addon = nativeAddon();
  if (!addon) return;
  const mobilenet = quantizedMobilenet();
  const barriers = (g: Graph, threads: number) => new addon.Program(lowerGraph(g), undefined, threads).teamBarriers;
  // Every other op reads only the pixels its own thread wrote. One thread, and more than twice as
  // many threads as the CPU has (they would take turns at every barrier), run op by op.
  const cores = os.cpus().length;
  assert.is(barriers(mobilenet, 2), 2 <= 2 * cores ? 4 : -1);
  assert.is(barriers(mobilenet, 3), 3 <= 2 * cores ? 4 : -1);
  assert.is(barriers(mobilenet, 1), -1);
  assert.is(barriers(mobilenet, 2 * cores + 1), -1);
  const { g, data } = allOps();
  const every = quantizeGraph(g, { activations: 'static', calibration: data });
  assert.ok(barriers(every, 2) >= 0, 'the every-op graph runs as a team (pools and concat on the first thread)');
  for (const n of [1, 5, 24]) {
    const x = testRows.data.subarray(0, n * 784);
    const want = runOn(mobilenet, 'ts', x, [n, 1, 28, 28]);
    for (const threads of [2, 3, 4])
      sameFloats(runOn(mobilenet, 'cpu', x, [n, 1, 28, 28], threads), want, `mobilenet, batch ${n}, ${threads} threads`);
  }
  for (const n of [1, 3]) {
    const x = data.data.subarray(0, n * 3 * 13 * 11);
    const want = runOn(every, 'ts', x, [n, 3, 13, 11]);
    for (const threads of [2, 3])
      sameFloats(runOn(every, 'cpu', x, [n, 3, 13, 11], threads), want, `every int8 op, batch ${n}, ${threads} threads`);
  }
  // A classifier too large to run on one thread comes after the team and splits itself.
  const b = new GraphBuilder('big-head', [3, 10, 9], { seed: 8 });
  const body = b.conv(b.relu(b.conv(b.conv(b.input, 24, 3, { pad: 1, bias: true }), 24, 3, { pad: 1, groups: 24, bias: true })), 72, 1);
  const head = b.build(b.dense(b.flatten(b.globalAveragePool(body)), 1000));
  const r = rng(12);
  const x = Float32Array.from({ length: 4 * 3 * 10 * 9 }, () => r() * 2 - 1);
  const qh = quantizeGraph(head, { activations: 'static', calibration: { data: x, shape: [4, 3, 10, 9] } });
  assert.ok(barriers(qh, 2) >= 0, 'a large Dense after the convolutions keeps the team');
  sameFloats(runOn(qh, 'cpu', x, [4, 3, 10, 9], 2), runOn(qh, 'ts', x, [4, 3, 10, 9]), 'big head, 2 threads');
});

test('a team whose second thread is asleep (calls far apart) runs on without it, bit for bit', async () => {
  const addon = nativeAddon();
  if (!addon) return;
  const mobilenet = quantizedMobilenet();
  const x = testRows.data.subarray(0, 784);
  const want = runOn(mobilenet, 'ts', x, [1, 1, 28, 28]);
  const program = new addon.Program(lowerGraph(mobilenet), undefined, 2);
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 3)); // the worker sleeps after 50 µs idle
    sameFloats(program.runSync([x], 1)[0], want, `call ${i} after a pause`);
  }
  program.release();
});

test('hand-broken int8 Programs are refused natively with a code naming the op', () => {
  const addon = nativeAddon();
  if (!addon) return;
  const program = lowerGraph(quantizedMobilenet());
  const at = (kind: string) => program.ops.findIndex((o) => o.op === kind);
  const cases: Array<[string, (p: Record<string, unknown>, t: Program['tensors']) => void, RegExp]> = [
    ['shift out of range', (o) => (o.shift = 40), /shift/],
    ['clamp upside down', (o) => ((o.min = 10), (o.max = -10)), /min\/max/],
    ['zero point out of range', (o) => (o.outputZeroPoint = 300), /outputZeroPoint/],
    [
      'float weights',
      (o, t) =>
        (t[o.weight as number] = {
          ...t[o.weight as number],
          dtype: 'float32',
          data: new Float32Array(t[o.weight as number].data!.length),
        }),
      /weight has the wrong dtype/,
    ],
    ['a float32 input', (o) => (o.x = 0), /x has the wrong dtype/],
  ];
  const targets = ['qglobalavgpool', 'qconv', 'qconv', 'qconv', 'qconv'];
  cases.forEach(([what, breakIt, message], i) => {
    const p: Program = { ...program, tensors: program.tensors.map((t) => ({ ...t })), ops: program.ops.map((o) => ({ ...o })) };
    breakIt(p.ops[at(targets[i])] as unknown as Record<string, unknown>, p.tensors);
    throwsCode(
      () => {
        try {
          new addon.Program(p, undefined, 1);
        } catch (err) {
          throw fromNative(err);
        }
      },
      'E_FORMAT',
      message,
    );
    void what;
  });
});

test('QDQ export: onnxruntime runs the int8 MobileNet and agrees with edgeopt on the argmaxes; static Dense models export as QDQ too', async () => {
  const ort = optionalOrt('the QDQ export check with onnxruntime');
  if (!ort) return;
  const q = quantizedMobilenet();
  const bytes = encodeOnnx(q);
  const session = await ort.InferenceSession.create(bytes);
  const n = testRows.shape[0];
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', testRows.data, [n, 1, 28, 28]) });
  const theirs = out[session.outputNames[0]].data as Float32Array;
  const ours = inferOnce(q, testRows.data, [n, 1, 28, 28]);
  let agree = 0;
  for (let i = 0; i < n; i++) if (argmax(theirs, i, 10) === argmax(ours, i, 10)) agree++;
  assert.ok(agree >= n - 1, `${agree} of ${n}`);
  const text = new TextDecoder('latin1').decode(bytes);
  for (const op of ['QuantizeLinear', 'DequantizeLinear']) assert.ok(text.includes(op), op);
  assert.not.ok(text.includes('DynamicQuantizeLinear'));
  // A static Dense model (no Conv): QDQ with its calibrated input grid, not dynamic quantization.
  const mlp = loadModel(path.join(FIXTURES, 'mlp-784-128-10', 'model.onnx'));
  const qd = quantizeGraph(mlp, { activations: 'static', calibration });
  const dense = new TextDecoder('latin1').decode(encodeOnnx(qd));
  assert.ok(dense.includes('QuantizeLinear'));
  assert.not.ok(dense.includes('DynamicQuantizeLinear'));
  const s2 = await ort.InferenceSession.create(encodeOnnx(qd));
  const y2 = (await s2.run({ [s2.inputNames[0]]: new ort.Tensor('float32', testRows.data, [n, 784]) }))[s2.outputNames[0]]
    .data as Float32Array;
  const mine = inferOnce(qd, testRows.data, [n, 784]);
  let agree2 = 0;
  for (let i = 0; i < n; i++) if (argmax(y2, i, 10) === argmax(mine, i, 10)) agree2++;
  assert.ok(agree2 >= n - 1, `dense ${agree2} of ${n}`);
});

test.run();
