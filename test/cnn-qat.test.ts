/**
 * Quantization-aware training of static int8 CNNs: fake quantization rounds as the int8 ops do,
 * the straight-through gradients against central differences of the frozen-rounding surrogate,
 * the fake-quant plan reproducing the int8 model's outputs, and quantize({ qat }) giving an
 * ordinary int8 model (same grids, native = TS bit for bit, .eom and QDQ export) that is no
 * worse than post-training quantization; bad options are refused with their codes.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeEom, encodeEom, encodeOnnx, loadModel, quantizeGraph } from '../lib';
import { kernels, nativeAddon } from '../lib/backends';
import { int8 } from '../lib/backends/ts/cnn';
import { mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows, type Dataset } from '../lib/data/dataset';
import { writeNpy } from '../lib/data/npy';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { foldConvBatchNorms, lowerGraph } from '../lib/engine/lower';
import { GraphBuilder } from '../lib/model/builder';
import type { ActivationQuant, Graph } from '../lib/model/graph';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { fakeQuantPlan } from '../lib/optimizer/qat';
import { type FakeQuantSpec, fakeQuantize, fakeQuantizeBias, fakeQuantizeWeights, fakeQuantOp } from '../lib/train/graph/fake-quant';
import type { Forward, TrainOp } from '../lib/train/graph/op';
import { GraphNetwork } from '../lib/train/graph-network';
import { FIXTURES, finiteDifferenceError, inferOnce, randomF32, rng, sameFloats, throwsCode } from './helpers';

const MOBILENET = path.join(FIXTURES, 'mobilenet-mini-1x28x28', 'model.onnx');
const calibration = sliceRows(mnistTrain(), 0, 100);
const testRows = sliceRows(mnistTest(), 0, 300);

test('fake quantization rounds as the int8 quantize/dequantize ops do; the gradient passes inside the grid only', () => {
  const r = rng(2);
  const grids: ActivationQuant[] = [
    { scale: 0.05, zeroPoint: -3 },
    { scale: 0.0123, zeroPoint: -128 },
    { scale: 1.5, zeroPoint: 100 },
  ];
  for (const n of [1, 3, 17, 63, 65])
    for (const q of grids) {
      const x = randomF32(n, r, 300 * q.scale); // about half the values beyond the grid's range
      const { y, pass } = fakeQuantize(x, q);
      const levels = new Int8Array(n);
      const back = new Float32Array(n);
      int8.quantizeS8(x, levels, q.scale, q.zeroPoint);
      int8.dequantizeS8(levels, back, q.scale, q.zeroPoint);
      sameFloats(y, back, `n ${n} grid ${JSON.stringify(q)}`);
      const [lo, hi] = [(-128 - q.zeroPoint) * q.scale, (127 - q.zeroPoint) * q.scale];
      for (let i = 0; i < n; i++) {
        // Values within half a step of the ends round onto them and still pass; beyond, the grid clamps.
        const inside = x[i] > lo - q.scale / 2 + 1e-6 && x[i] < hi + q.scale / 2 - 1e-6;
        const outside = x[i] < lo - q.scale / 2 - 1e-6 || x[i] > hi + q.scale / 2 + 1e-6;
        if (inside) assert.is(pass[i], 1, `${x[i]} inside [${lo}, ${hi}]`);
        if (outside) assert.is(pass[i], 0, `${x[i]} outside [${lo}, ${hi}]`);
      }
    }
  for (const [rows, k, bits] of [
    [1, 1, 8],
    [3, 17, 8],
    [17, 9, 4],
    [5, 65, 8],
  ]) {
    const w = randomF32(rows * k, r);
    const { q, scales } = kernels().quantizeSymmetric(w, rows, k, bits, true);
    const expected = Float32Array.from(q, (v, i) => Math.fround(v * scales[Math.floor(i / k)]));
    sameFloats(fakeQuantizeWeights(w, rows, bits), expected, `weights ${rows}x${k} int${bits}`);
  }
});

/**
 * The straight-through surrogate of fakeQuantOp with the rounding frozen at the first call: a
 * value inside the grid moves one for one (its rounding offset kept), a clamped one stays put,
 * and rounded weights keep their offsets from the float weights. Its exact derivative is what
 * the STE promises, so central differences of it check fakeQuantOp's backward. (Weights and bias
 * with frozen offsets: their scales, set by max|w|, get no gradient.)
 */
function frozenSurrogate(op: TrainOp, spec: FakeQuantSpec): TrainOp {
  const frozen = new Map<string, { offset: Float32Array; pass: Uint8Array; y: Float32Array }>();
  const apply = (key: string, x: Float32Array, q: ActivationQuant) => {
    let f = frozen.get(key);
    if (!f) {
      const { y, pass } = fakeQuantize(x, q);
      frozen.set(key, (f = { y, pass, offset: Float32Array.from(y, (v, i) => v - x[i]) }));
    }
    return Float32Array.from(x, (v, i) => (f.pass[i] ? v + f.offset[i] : f.y[i]));
  };
  // Offsets of the rounded weights and bias from the float ones, taken at the first call.
  const offsets = new Map<string, Float32Array>();
  const freezeOffsets = () => {
    const param = (name: string) => op.params.find((p) => p.name === name)!;
    for (const [name, bits] of spec.weights) {
      const p = param(name);
      offsets.set(
        name,
        fakeQuantizeWeights(p.data, p.shape[0], bits).map((v, i) => v - p.data[i]),
      );
    }
    if (spec.bias) {
      const w = param(spec.bias.weight);
      const { scales } = kernels().quantizeSymmetric(w.data, w.shape[0], w.data.length / w.shape[0], spec.weights.get(w.name)!, true);
      const b = param(spec.bias.name);
      offsets.set(
        b.name,
        fakeQuantizeBias(b.data, spec.bias.inputScale, scales).map((v, i) => v - b.data[i]),
      );
    }
  };
  const withWeights = <T>(body: () => T): T => {
    if (!offsets.size) freezeOffsets();
    const floats = op.params.map((p) => p.data.slice());
    for (const p of op.params) {
      const off = offsets.get(p.name);
      if (off) for (let i = 0; i < p.data.length; i++) p.data[i] += off[i];
    }
    try {
      return body();
    } finally {
      op.params.forEach((p, i) => p.data.set(floats[i]));
    }
  };
  return {
    ...op,
    forward(xs, n, ctx): Forward {
      const ins = xs.map((x, j) => (spec.inputs[j] ? apply(`${op.node.name}/in${j}`, x, spec.inputs[j]!) : x));
      const f = withWeights(() => op.forward(ins, n, ctx));
      return { y: spec.output ? apply(`${op.node.name}/out`, f.y, spec.output) : f.y };
    },
  };
}

/** input [2, 7, 6]: conv+ReLU (fused), depthwise + HardSwish, residual Add, a 1x1 conv, GAP, Dense(3). */
function smallCnn(): { g: Graph; data: Dataset } {
  const b = new GraphBuilder('qat-small', [2, 7, 6], { seed: 7 });
  const c1 = b.relu(b.conv(b.input, 5, 3, { pad: 1, bias: true }));
  const dw = b.hardSwish(b.conv(c1, 5, 3, { pad: 1, groups: 5, bias: true }));
  const res = b.add(c1, dw);
  const head = b.relu6(b.conv(res, 6, 1, { bias: true }));
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(head)), 3));
  const r = rng(4);
  const rows = 24;
  return { g, data: { data: Float32Array.from({ length: rows * 84 }, () => r() * 2 - 0.5), shape: [rows, 2, 7, 6] } };
}

test('gradient check: fake-quantized convolutions, activations, Add, pool and Dense give the straight-through gradients', () => {
  const { g, data } = smallCnn();
  const q = quantizeGraph(g, { activations: 'static', calibration: sliceRows(data, 0, 12) });
  const plan = fakeQuantPlan(q);
  const folded = foldConvBatchNorms(g);
  const wrap = (surrogate: boolean) => (op: TrainOp) => {
    const spec = plan.get(op.node.name);
    return !spec ? op : surrogate ? frozenSurrogate(op, spec) : fakeQuantOp(op, spec);
  };
  const qat = new GraphNetwork(folded, { wrapOp: wrap(false) });
  const surrogate = new GraphNetwork(folded, { wrapOp: wrap(true) });
  const batch = 3;
  // Inputs off the calibration range, so some values are clamped by the input grid.
  const x = randomF32(batch * qat.inFeatures, rng(6), 1.5);
  const r = randomF32(batch * qat.outFeatures, rng(8));
  const loss = () => surrogate.forward(x, batch).logits.reduce((s, v, i) => s + v * r[i], 0);
  const base = loss(); // freezes the surrogate's rounding here
  const { logits, cache } = qat.forward(x, batch);
  closeTo(
    logits.reduce((s, v, i) => s + v * r[i], 0),
    base,
    1e-4,
    'the surrogate starts where the fake-quantized network is',
  );
  const grads = qat.backward(cache, r);
  let checked = 0;
  surrogate.params.forEach((p, k) => {
    const rel = finiteDifferenceError(p.data, grads[k], loss);
    assert.ok(rel < 1e-2, `${p.name}: relative error ${rel}`);
    checked++;
  });
  assert.ok(checked === qat.params.length && checked >= 8, `${checked} parameters checked`);
  // And the STE is not the float gradient: rounding and clamping change it.
  const plain = new GraphNetwork(folded);
  const f = plain.forward(x, batch);
  const floatGrads = plain.backward(f.cache, r);
  assert.ok(
    floatGrads.some((gr, k) => gr.some((v, i) => Math.abs(v - grads[k][i]) > 1e-3 * (Math.abs(v) + 1e-3))),
    'fake quantization changes the gradients',
  );
});

function closeTo(a: number, b: number, rel: number, what: string): void {
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('the fake-quant plan of the MobileNet fixture reproduces its int8 outputs (rounding where the int8 Program rounds)', () => {
  const fp32 = loadModel(MOBILENET);
  const q = quantizeGraph(fp32, { activations: 'static', calibration });
  const plan = fakeQuantPlan(q);
  // Conv + ReLU6 lowers to one qconv clamped on the ReLU6 grid: only the activation's output is rounded.
  const fusedConv = q.nodes.find((n) => n.op === 'Conv' && q.nodes.some((m) => m.op === 'Clip' && m.inputs[0] === n.outputs[0]))!;
  assert.is(plan.get(fusedConv.name)!.output, undefined);
  assert.ok(plan.get(q.nodes[0].name)!.inputs[0], 'the model input is rounded onto its grid');
  assert.ok(plan.get(q.nodes[0].name)!.weights.size === 1);
  const n = 64;
  const x = testRows.data.subarray(0, n * 784);
  const net = new GraphNetwork(foldConvBatchNorms(fp32), {
    wrapOp: (op) => (plan.has(op.node.name) ? fakeQuantOp(op, plan.get(op.node.name)!) : op),
  });
  const { logits: simulated, cache } = net.forward(x, n, false);
  // The first int8 tensor (stem conv + ReLU6): the int8 model cut there, against the fake-quantized values.
  // Integer requantization rounds a few near-ties differently (by one level); those flips then compound layer
  // after layer, so deeper tensors and the logits agree only statistically.
  const stem = q.nodes.findIndex((node) => plan.get(node.name)?.output);
  const stemOut = q.nodes[stem].outputs[0];
  const kept = q.nodes.slice(0, stem + 1);
  const names = new Set([q.inputs[0].name, ...kept.flatMap((node) => node.outputs)]);
  const grids = Object.entries(q.activationQuant!).filter(([name]) => names.has(name));
  const cut: Graph = { ...q, nodes: kept, outputs: [stemOut], activationQuant: Object.fromEntries(grids) };
  const exact = inferOnce(cut, x, [n, 1, 28, 28]);
  const sim = (cache as unknown as { values: Map<string, Float32Array> }).values.get(stemOut)!;
  const step = q.activationQuant![stemOut].scale;
  let flips = 0;
  exact.forEach((v, i) => {
    const d = Math.abs(v - sim[i]);
    if (d > 1e-6) flips++;
    assert.ok(d < 1.01 * step, `stem value ${i}: ${sim[i]} vs int8 ${v}`);
  });
  assert.ok(flips < exact.length / 1000, `${flips} of ${exact.length} stem values one level apart`);
  const int8Out = inferOnce(q, x, [n, 1, 28, 28]);
  const floatOut = inferOnce(fp32, x, [n, 1, 28, 28]);
  const meanDiff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
  const simError = meanDiff(simulated, int8Out);
  const ptqError = meanDiff(floatOut, int8Out);
  assert.ok(simError < 0.75 * ptqError, `fake quantization is ${simError} from int8, float32 is ${ptqError}`);
});

let qatModel: Graph | undefined;
const qatOptions = () => ({ data: sliceRows(mnistTrain(), 0, 384), epochs: 1, lr: 2e-4, seed: 3 });
/** The MobileNet fixture with 4-bit weights (post-training loses points there), then one short epoch of QAT. */
const quantized = (qat: boolean) =>
  quantizeGraph(loadModel(MOBILENET), { bits: 4, activations: 'static', calibration, ...(qat ? { qat: qatOptions() } : {}) });
const trainedModel = () => (qatModel ??= quantized(true));

test('quantize({ qat }): an ordinary static int8 model on the calibrated grids, no worse than post-training', () => {
  const fp32 = loadModel(MOBILENET);
  const ptq = quantized(false);
  const q = trainedModel();
  assert.equal(q.activationQuant, ptq.activationQuant, 'grids frozen at calibration');
  assert.equal(
    lowerGraph(q).ops.map((o) => o.op),
    lowerGraph(ptq).ops.map((o) => o.op),
  );
  assert.match(q.metadata['quantization.qat'], /1 epochs of quantization-aware training on 384 rows/);
  const changed = q.nodes
    .filter((n) => n.op === 'Conv')
    .some((n) => {
      const [a, b] = [q.tensors[n.inputs[1]].data as Int8Array, ptq.tensors[n.inputs[1]].data as Int8Array];
      return a.some((v, i) => v !== b[i]);
    });
  assert.ok(changed, 'training moved some int8 weights');
  const acc = (g: Graph) => evaluateModel(g, testRows).accuracy;
  const [fAcc, pAcc, qAcc] = [acc(fp32), acc(ptq), acc(q)];
  assert.ok(pAcc < fAcc, `4-bit post-training loses accuracy here (${pAcc} vs ${fAcc})`);
  assert.ok(qAcc >= pAcc, `QAT ${qAcc} is no worse than post-training ${pAcc} (fp32 ${fAcc})`);
  const eom = decodeEom(encodeEom(q));
  const x = testRows.data.subarray(0, 16 * 784);
  sameFloats(inferOnce(eom, x, [16, 1, 28, 28]), inferOnce(q, x, [16, 1, 28, 28]), '.eom round trip');
});

test('a QAT model runs bit-identically on the native int8 ops and the TS twin, and exports as QDQ ONNX', async () => {
  const q = trainedModel();
  const n = 24;
  const x = testRows.data.subarray(0, n * 784);
  const run = (device: 'cpu' | 'ts') => {
    const engine = new EdgeInferenceEngine({ device });
    try {
      engine.loadModelSync('m', q);
      if (device === 'cpu') assert.ok(engine.placement('m').every((p) => p.backend === 'native'));
      return engine.inferSync('m', { data: x, shape: [n, 1, 28, 28] }).data;
    } finally {
      engine.dispose();
    }
  };
  if (nativeAddon()) sameFloats(run('cpu'), run('ts'), 'native vs TS');
  const bytes = encodeOnnx(q);
  const text = new TextDecoder('latin1').decode(bytes);
  for (const op of ['QuantizeLinear', 'DequantizeLinear']) assert.ok(text.includes(op), op);
  let ort: typeof import('onnxruntime-node');
  try {
    ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  } catch {
    return;
  }
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
  const theirs = out[session.outputNames[0]].data as Float32Array;
  const ours = inferOnce(q, x, [n, 1, 28, 28]);
  const argmax = (y: Float32Array, row: number) => y.subarray(row * 10, row * 10 + 10).reduce((b, v, j, a) => (v > a[b] ? j : b), 0);
  let agree = 0;
  for (let i = 0; i < n; i++) if (argmax(theirs, i) === argmax(ours, i)) agree++;
  assert.ok(agree >= n - 1, `onnxruntime agrees on ${agree} of ${n}`);
});

test('bad QAT settings are refused with their codes', () => {
  const fp32 = loadModel(MOBILENET);
  const data = sliceRows(mnistTrain(), 0, 8);
  const q = (qat: unknown) => () => quantizeGraph(fp32, { activations: 'static', calibration, qat: qat as never });
  throwsCode(q({ data: { data: data.data, shape: data.shape }, epochs: 1 }), 'E_ARGUMENT', /labelled/);
  throwsCode(q({ data, epochs: 0 }), 'E_ARGUMENT', /epochs/);
  throwsCode(q({ data, epochs: 1.5 }), 'E_ARGUMENT', /epochs/);
  throwsCode(q({ data, epochs: 1, lr: -1 }), 'E_ARGUMENT', /lr/);
  throwsCode(q({ data, epochs: 1, optimizer: 'lbfgs' }), 'E_ARGUMENT', /optimizer/);
  throwsCode(q(null), 'E_ARGUMENT', /qat/);
  throwsCode(q({ data: sliceRows(mnistTrain(), 0, 4).data, epochs: 1 }), 'E_ARGUMENT', /labelled/);
  const mlp = loadModel(path.join(FIXTURES, 'mlp-784-128-10', 'model.onnx'));
  throwsCode(
    () => quantizeGraph(mlp, { activations: 'static', calibration, qat: { data, epochs: 1 } }),
    'E_UNSUPPORTED_OP',
    /convolutional/,
  );
  throwsCode(() => quantizeGraph(fp32, { qat: { data, epochs: 1 } }), 'E_UNSUPPORTED_OP', /static/);
});

test('edgeopt optimize --qat-epochs trains on the labelled --calibration rows and writes a static int8 model', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-qat-'));
  const rows = sliceRows(mnistTrain(), 0, 96);
  writeNpy(path.join(dir, 'images.npy'), rows.data, rows.shape);
  writeNpy(path.join(dir, 'labels.npy'), rows.labels!, [96]);
  const root = path.resolve(__dirname, '..');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'lib', 'cli', 'index.ts'), 'optimize', MOBILENET, ...args], {
      cwd: root,
      encoding: 'utf8',
    });
  const out = path.join(dir, 'q.eom');
  const base = ['-o', out, '--quantize', 'int8', '--activations', 'static', '--calibration', path.join(dir, 'images.npy')];
  const r = cli(...base, '--calibration-rows', '32', '--qat-epochs', '1', '--qat-lr', '0.0002', '--seed', '4', '--json');
  assert.is(r.status, 0, r.stderr);
  const q = loadModel(out);
  assert.match(q.metadata['quantization.qat'], /1 epochs of quantization-aware training on 96 rows/);
  assert.ok(lowerGraph(q).ops.some((o) => o.op === 'qconv'));
  for (const [args, message] of [
    [['--qat-lr', '0.001'], /--qat-lr goes with --qat-epochs/],
    [['--qat-epochs', '0'], /--qat-epochs must be an integer/],
    [['--qat-epochs', '2', '--budget', '1'], /does not go with --budget/],
  ] as const) {
    const bad = cli(...base, ...args);
    assert.is.not(bad.status, 0);
    assert.match(bad.stderr, message);
  }
  const noStatic = cli('-o', out, '--quantize', 'int8', '--qat-epochs', '1');
  assert.match(noStatic.stderr, /--qat-epochs needs --activations static/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
