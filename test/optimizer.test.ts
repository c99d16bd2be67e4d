/** Quantization and pruning passes on the real fixture weights, and the pipeline's report. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, kernels } from '../lib/backends';
import { tsKernels } from '../lib/backends/ts/kernels';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeModelOptimizer } from '../lib/optimizer/optimizer';
import { prune, prunedCount, pruneGraph } from '../lib/optimizer/prune';
import { loadModel } from '../lib/model';
import { quantize, quantizeGraph } from '../lib/optimizer/quantize';
import { denseGraph } from '../lib/model/build';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { FIXTURES, rng, sameFloats, sameInts, throwsCode } from './helpers';
import { multiplyByQuantizedMultiplier, quantizeBias, quantizeMultiplier } from '../lib/backends/ts/requantize';
import { referenceNpuPluginPath } from '../lib/backends/npu';

const fp32 = defaultModel();
const w1 = fp32.tensors['fc1.weight'].data as Float32Array;

test('per-channel int8 on fc1: PyTorch-style scales (max|w| / 127) and round-half-even values', () => {
  const q = quantizeGraph(fp32);
  const t = q.tensors['fc1.weight'];
  assert.is(t.dtype, 'int8');
  assert.is(t.quant!.scale.length, 128);
  for (let r = 0; r < 128; r++) {
    let mx = 0;
    for (let i = 0; i < 784; i++) mx = Math.max(mx, Math.abs(w1[r * 784 + i]));
    assert.is(t.quant!.scale[r], Math.fround(mx / 127), `scale ${r}`);
  }
  const ref = tsKernels.quantizeSymmetric(w1, 128, 784, 8, true);
  sameInts(t.data!, ref.q, 'q');
  assert.is(fp32.tensors['fc1.weight'].dtype, 'float32', 'the input graph is not mutated');
});

test('native and TS quantization give identical bytes on the real weights', () => {
  if (!backendInfo().native) return;
  for (const perChannel of [true, false]) {
    const a = kernels().quantizeSymmetric(w1, 128, 784, 8, perChannel);
    const b = tsKernels.quantizeSymmetric(w1, 128, 784, 8, perChannel);
    sameInts(a.q, b.q, 'q');
    sameFloats(a.scales, b.scales, 'scales');
  }
});

test('per-layer pruning zeroes exactly floor(n * sparsity) weights and keeps a mask', () => {
  const p = pruneGraph(fp32, { sparsity: 0.7 });
  for (const name of ['fc1.weight', 'fc2.weight']) {
    const t = p.tensors[name];
    const zeros = (t.data as Float32Array).filter((v) => v === 0).length;
    assert.is(zeros, Math.floor(t.data!.length * 0.7), name);
    assert.is(t.mask!.filter((v) => v === 0).length, zeros);
  }
  const q = quantizeGraph(p);
  const m = q.tensors['fc1.weight'];
  for (let i = 0; i < m.data!.length; i++) if (!m.mask![i]) assert.is(m.data![i], 0, 'pruned weights stay zero after quantization');
});

test('the pipeline reports size, layers and accuracy for every pass', async () => {
  const evaluation = sliceRows(mnistTest(), 0, 500);
  const opt = new EdgeModelOptimizer().addOptimization('prune', prune({ sparsity: 0.5 })).addOptimization('int8', quantize({ bits: 8 }));
  const { model, report } = await opt.optimize(fp32, { evaluation });
  assert.is(report.passes.length, 2);
  assert.ok(report.bytesAfter < report.bytesBefore * 0.2, `${report.bytesAfter} bytes`);
  assert.is(report.paramsBefore, 101770);
  assert.is(report.compression, report.bytesBefore / report.bytesAfter);
  assert.equal(
    report.layersBefore.map((l) => [l.node, l.shape, l.bits, l.sparsity]),
    [
      ['fc1', [128, 784], 32, 0],
      ['fc2', [10, 128], 32, 0],
    ],
  );
  const [pruned, int8] = report.passes;
  assert.equal(
    pruned.layers.map((l) => l.sparsity),
    [0.5, 0.5],
  );
  assert.equal(
    int8.layers.map((l) => [l.op, l.bits, l.activations]),
    [
      ['QDense', 8, 'dynamic'],
      ['QDense', 8, 'dynamic'],
    ],
  );
  assert.is(int8.bytesAfter, report.bytesAfter);
  for (const p of report.passes) {
    assert.ok(p.after!.accuracy > 0.85, `${p.name}: ${p.after!.accuracy}`);
    assert.ok(p.after!.maxAbsLogitError > 0 && p.after!.meanAbsLogitError < p.after!.maxAbsLogitError);
  }
  assert.type(report.accuracyBefore, 'number');
  assert.equal(report.targetIssues, []);
  assert.is(model.nodes[0].op, 'QDense');
});

test('targets: an npu profile defaults to static activations and flags what will not fit', async () => {
  const calibration = sliceRows(mnistTest(), 0, 200);
  const npu = await new EdgeModelOptimizer().addOptimization('int8', quantize()).optimize(fp32, { target: 'npu', calibration });
  assert.ok(npu.model.nodes.every((n) => n.attrs.activationQuant === 'static'));
  assert.equal(npu.report.targetIssues, []);
  const dynamic = await new EdgeModelOptimizer()
    .addOptimization('int4', quantize({ bits: 4, activations: 'dynamic' }))
    .optimize(fp32, { target: 'npu' });
  const reasons = dynamic.report.targetIssues.map((i) => `${i.node}: ${i.reason}`).join('\n');
  assert.match(reasons, /fc1: 4-bit weights/);
  assert.match(reasons, /fc2: dynamic activation quantization/);
  const narrow = await new EdgeModelOptimizer().optimize(fp32, { target: { kind: 'npu', capabilities: { maxChannels: 64 } } });
  assert.match(narrow.report.targetIssues.map((i) => i.reason).join(' '), /float32 layer/);
  const mcu = await new EdgeModelOptimizer()
    .addOptimization('int8', quantize())
    .optimize(fp32, { target: { kind: 'mcu', ramBytes: 4096, flashBytes: 64 * 1024 } });
  const mcuReasons = mcu.report.targetIssues.map((i) => `${i.node ?? 'model'}: ${i.reason}`).join('\n');
  assert.match(mcuReasons, /model: the model takes \d+ bytes, flash holds 65536/);
  assert.match(mcuReasons, /fc1: needs 4432 bytes of working memory/);
  assert.not.match(mcuReasons, /fc2/);
});

test('static activations from calibration data: PyTorch-level accuracy, identical on every backend', () => {
  const calibration = sliceRows(test2000, 0, 500);
  const q = quantizeGraph(fp32, { activations: 'static', calibration });
  assert.equal(
    q.nodes.map((n) => n.attrs.inputZeroPoint),
    [-128, -128],
    'inputs are non-negative (pixels, post-ReLU)',
  );
  assert.is(q.nodes[0].attrs.inputScale, Math.fround(1 / 255));
  const ev = evaluateModel(q, test2000);
  assert.ok(Math.abs(ev.accuracy - base.accuracy) <= 0.003, `${ev.accuracy}`);
  if (backendInfo().native) {
    const x = sliceRows(test2000, 0, 20);
    const [a, b] = (['cpu', 'ts'] as const).map((device) => {
      const e = new EdgeInferenceEngine({ device });
      e.loadModelSync('s', q);
      return e.inferSync('s', { data: x.data, shape: x.shape }).data;
    });
    sameFloats(a, b, 'static int8 native vs ts');
  }
  const p = quantizeGraph(fp32, { activations: 'static', calibration, observer: { percentile: 99.9 } });
  assert.ok((p.nodes[1].attrs.inputScale as number) < (q.nodes[1].attrs.inputScale as number), 'a percentile clips the range');
  throwsCode(() => quantizeGraph(fp32, { activations: 'static' }), 'E_ARGUMENT', /calibration/);
});

test('pruning removes round(n * sparsity) weights, half to even, as torch.nn.utils.prune does', () => {
  // PyTorch: _compute_nparams_toprune = round(amount * n) with Python's round.
  assert.equal(
    [prunedCount(7, 0.5), prunedCount(5, 0.5), prunedCount(3, 0.9), prunedCount(10, 0.25), prunedCount(100352, 0.9)],
    [4, 2, 3, 2, 90317],
  );
  const g = loadModel({ architecture: 'tiny', weights: [[[0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7]]] }); // one layer, 7 weights
  const zeros = (m: ReturnType<typeof pruneGraph>, mode: 'unstructured' | 'global') => {
    const w = pruneGraph(m, { sparsity: 0.5, mode }).tensors['fc1.weight'].data!;
    return Array.from(w).filter((v) => v === 0).length;
  };
  assert.is(zeros(g, 'unstructured'), 4);
  assert.is(zeros(g, 'global'), 4);
});

test('bad optimizer arguments are E_ARGUMENT', () => {
  throwsCode(() => quantizeGraph(fp32, { bits: 9 }), 'E_ARGUMENT', /bits/);
  throwsCode(() => quantizeGraph(fp32, { granularity: 'row' as never }), 'E_ARGUMENT', /granularity/);
  throwsCode(() => pruneGraph(fp32, { sparsity: 1.5 }), 'E_ARGUMENT', /sparsity/);
  throwsCode(() => pruneGraph(quantizeGraph(fp32), { sparsity: 0.5 }), 'E_ARGUMENT', /already quantized/);
  throwsCode(() => new EdgeModelOptimizer().addOptimization('x', 3 as never), 'E_ARGUMENT', /function/);
});

// Every mode on the real fixture weights, against PyTorch's own figures (fixture results.json).

const torch = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'mlp-784-128-10', 'results.json'), 'utf8'));
const test2000 = mnistTest();
const base = evaluateModel(fp32, test2000);

function changedVsFp32(predictions: Int32Array): number {
  return predictions.reduce((c, p, i) => c + (p !== base.predictions[i] ? 1 : 0), 0);
}

test('weight scales equal PyTorch observers (per-tensor, per-channel, 4-bit, asymmetric)', () => {
  const layers = torch.weight_only;
  const t8 = quantizeGraph(fp32, { granularity: 'tensor' }).tensors;
  assert.is(t8['fc1.weight'].quant!.scale[0], Math.fround(layers.w8_per_tensor_sym_i8.layers.fc1.scale));
  assert.is(t8['fc2.weight'].quant!.scale[0], Math.fround(layers.w8_per_tensor_sym_i8.layers.fc2.scale));
  const c4 = quantizeGraph(fp32, { bits: 4 }).tensors['fc1.weight'].quant!.scale;
  const [lo, hi] = layers.w4_per_channel_sym_i4.layers.fc1.scale_per_channel_min_max;
  assert.is(Math.min(...c4), Math.fround(lo));
  assert.is(Math.max(...c4), Math.fround(hi));
  // The global min/max grid of a one-layer model is PyTorch's per-tensor asymmetric observer.
  const fc1Only = denseGraph('fc1', [{ weight: w1, outFeatures: 128, inFeatures: 784 }]);
  const asym = quantizeGraph(fc1Only, { granularity: 'global' }).tensors['fc1.weight'].quant!;
  assert.is(asym.scale[0], Math.fround(layers.w8_per_tensor_asym_u8.layers.fc1.scale));
  assert.is(asym.zeroPoint! + 128, layers.w8_per_tensor_asym_u8.layers.fc1.zero_point);
});

test('int8 per-channel: within 0.2 points, at most 8 rows change, at most 0.27x bytes', () => {
  const q = quantizeGraph(fp32);
  const ev = evaluateModel(q, test2000);
  assert.ok(Math.abs(ev.accuracy - base.accuracy) <= 0.002, `${ev.accuracy}`);
  assert.ok(changedVsFp32(ev.predictions) <= 8);
});

test('4-bit per-channel and per-tensor reproduce PyTorch exactly (93.25 % / 33 rows, 92.95 % / 45 rows)', () => {
  for (const [granularity, anchor] of [
    ['channel', torch.weight_only.w4_per_channel_sym_i4],
    ['tensor', torch.weight_only.w4_per_tensor_sym_i4],
  ] as const) {
    const ev = evaluateModel(quantizeGraph(fp32, { bits: 4, granularity }), test2000);
    assert.is(Math.round(ev.accuracy * 1e4), Math.round(anchor.accuracy * 1e4), granularity);
    assert.is(changedVsFp32(ev.predictions), anchor.argmax_changed, granularity);
  }
});

test('group-32 4-bit stays within 0.7 points of fp32', () => {
  const ev = evaluateModel(quantizeGraph(fp32, { bits: 4, granularity: { group: 32 } }), test2000);
  assert.ok(Math.abs(ev.accuracy - base.accuracy) <= 0.007, `${ev.accuracy}`);
});

test('the seed global min/max 8-bit scheme runs and is measured honestly', () => {
  const ev = evaluateModel(quantizeGraph(fp32, { granularity: 'global' }), test2000);
  assert.ok(ev.accuracy > 0.9 && ev.accuracy <= base.accuracy + 0.003, `${ev.accuracy}`);
});

test('global pruning 0.5 matches PyTorch: per-layer sparsity 0.5040 / 0.1875 and 93.75 % (21 rows)', () => {
  const p = pruneGraph(fp32, { sparsity: 0.5, mode: 'global' });
  const sparsity = (name: string) => p.tensors[name].mask!.filter((v) => v === 0).length / p.tensors[name].mask!.length;
  assert.is(sparsity('fc1.weight').toFixed(4), '0.5040');
  assert.is(sparsity('fc2.weight').toFixed(4), '0.1875');
  const total = (128 * 784 + 10 * 128) * 0.5;
  assert.is(
    p.tensors['fc1.weight'].mask!.filter((v) => v === 0).length + p.tensors['fc2.weight'].mask!.filter((v) => v === 0).length,
    Math.floor(total),
  );
  const ev = evaluateModel(p, test2000);
  assert.is(Math.round(ev.accuracy * 1e4), 9375);
  assert.is(changedVsFp32(ev.predictions), 21);
});

test('unstructured 0.5 per layer matches PyTorch (92.90 %, 85 rows)', () => {
  const ev = evaluateModel(pruneGraph(fp32, { sparsity: 0.5 }), test2000);
  assert.is(Math.round(ev.accuracy * 1e4), 9290);
  assert.is(changedVsFp32(ev.predictions), 85);
});

test('2:4 holds exactly in every group of four along K', () => {
  const p = pruneGraph(fp32, { mode: '2:4' });
  for (const name of ['fc1.weight', 'fc2.weight']) {
    const [n, k] = p.tensors[name].shape as number[];
    const mask = p.tensors[name].mask!;
    for (let r = 0; r < n; r++)
      for (let s = 0; s < k; s += 4)
        assert.is(mask[r * k + s] + mask[r * k + s + 1] + mask[r * k + s + 2] + mask[r * k + s + 3], 2, `${name} row ${r} group ${s}`);
  }
});

test('neuron pruning 50% halves the hidden layer and runs on every backend', () => {
  const p = pruneGraph(fp32, { sparsity: 0.5, mode: 'neurons' });
  assert.equal(p.tensors['fc1.weight'].shape, [64, 784]);
  assert.equal(p.tensors['fc1.bias'].shape, [64]);
  assert.equal(p.tensors['fc2.weight'].shape, [10, 64]);
  const x = sliceRows(test2000, 0, 16);
  const outs = (['cpu', 'ts'] as const).map((device) => {
    const e = new EdgeInferenceEngine({ device });
    e.loadModelSync('n', quantizeGraph(p));
    return e.inferSync('n', { data: x.data, shape: x.shape }).data;
  });
  if (backendInfo().native) sameFloats(outs[0], outs[1], 'native vs ts');
  const ev = evaluateModel(p, test2000);
  assert.ok(ev.accuracy > 0.5, `${ev.accuracy}`);
});

test('group-wise and asymmetric int8 layers are bit-identical on native and TS', () => {
  if (!backendInfo().native) return;
  const x = sliceRows(test2000, 0, 33);
  for (const q of [
    quantizeGraph(fp32, { bits: 4, granularity: { group: 32 } }),
    quantizeGraph(fp32, { granularity: 'global' }),
    quantizeGraph(fp32, { bits: 3, granularity: { group: 100 } }),
  ]) {
    const [a, b] = (['cpu', 'ts'] as const).map((device) => {
      const e = new EdgeInferenceEngine({ device });
      e.loadModelSync('q', q);
      return e.inferSync('q', { data: x.data, shape: x.shape }).data;
    });
    sameFloats(a, b, q.metadata.quantization);
  }
});

test('integer requantization helpers follow TFLite (Q31 multiplier, rounding shift)', () => {
  assert.equal(quantizeMultiplier(0.5), { m0: 2 ** 30, shift: 0 });
  assert.equal(quantizeMultiplier(0.75), { m0: Math.round(0.75 * 2 ** 31), shift: 0 });
  assert.equal(quantizeMultiplier(3), { m0: Math.round(0.75 * 2 ** 31), shift: 2 });
  assert.equal(quantizeMultiplier(2 ** -40), { m0: 0, shift: 0 });
  assert.is(multiplyByQuantizedMultiplier(100, quantizeMultiplier(0.5)), 50);
  assert.is(multiplyByQuantizedMultiplier(101, quantizeMultiplier(0.5)), 51, 'gemmlowp rounds ties up');
  assert.is(multiplyByQuantizedMultiplier(-101, quantizeMultiplier(0.5)), -50);
  assert.is(multiplyByQuantizedMultiplier(-3, quantizeMultiplier(0.25)), -1, 'the rounding shift rounds ties away from zero');
  const r = rng(5);
  for (let i = 0; i < 2000; i++) {
    const x = Math.floor((r() - 0.5) * 2 ** 24);
    const real = 2 ** (-12 * r()) * (0.5 + r() / 2);
    const got = multiplyByQuantizedMultiplier(x, quantizeMultiplier(real));
    // Two roundings (the high multiply, then the shift), so within one step of the exact product.
    assert.ok(Math.abs(got - x * real) <= 1, `${x} * ${real}: ${got}`);
  }
  assert.is(quantizeBias(-2.5, 1, 1), -3, 'bias rounds half away from zero like std::round');
});

test('static int8 chains requantize between layers, bit-identically on native and TS; the NPU keeps them on CPU', () => {
  const calibration = sliceRows(test2000, 0, 500);
  const q = quantizeGraph(fp32, { activations: 'static', calibration });
  assert.equal(q.nodes[0].attrs.outputScale, q.nodes[1].attrs.inputScale, "fc1 requantizes to fc2's input grid");
  assert.is(q.nodes[1].attrs.outputScale, undefined, 'the last layer keeps float logits');
  const plain = quantizeGraph(fp32, { activations: 'static', calibration, requantize: false });
  assert.is(plain.nodes[0].attrs.outputScale, undefined);
  const ev = evaluateModel(q, test2000);
  assert.ok(Math.abs(ev.accuracy - base.accuracy) <= 0.003, `${ev.accuracy}`);
  const diff = evaluateModel(plain, test2000).logits.some((v, i) => v !== ev.logits[i]);
  assert.ok(diff, 'the integer path is a different computation from the float epilogue');
  if (!backendInfo().native) return;
  const x = sliceRows(test2000, 0, 37);
  const [a, b] = (['cpu', 'ts'] as const).map((device) => {
    const e = new EdgeInferenceEngine({ device });
    e.loadModelSync('r', q);
    return e.inferSync('r', { data: x.data, shape: x.shape }).data;
  });
  sameFloats(a, b, 'requantized chain native vs ts');
  const npu = new EdgeInferenceEngine({ device: 'npu', npuPlugin: referenceNpuPluginPath() });
  npu.loadModelSync('r', q);
  const [fc1, fc2] = npu.placement('r');
  assert.is(fc1.backend, 'native');
  assert.match(fc1.reason!, /integer requantization/);
  assert.is(fc2.backend, 'npu');
  sameFloats(npu.inferSync('r', { data: x.data, shape: x.shape }).data, a, 'NPU + CPU split');
});

test.run();
