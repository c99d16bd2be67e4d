/**
 * Folding the input normalization into the first layer: raw uint8 bytes into the
 * folded model give what normalized floats give the original (MNIST /255, and
 * per-channel mean/std on an NCHW input); accuracy is unchanged before and after
 * int8 quantization; sessions take Uint8Array; .eom, ONNX export (uint8 input +
 * Cast, run by onnxruntime) and import keep the uint8 input; bad uses are refused.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { modelRows, sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { decodeEom, encodeEom } from '../lib/model';
import { validateGraph, type Graph } from '../lib/model/graph';
import { encodeOnnx, importOnnx, loadOnnx } from '../lib/model/onnx';
import { applyStaticActivations, observeActivations } from '../lib/optimizer/calibrate';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { foldInputNormalization, inputNormalization } from '../lib/optimizer/input-normalization';
import { EdgeModelOptimizer } from '../lib/optimizer/optimizer';
import { quantize, quantizeGraph } from '../lib/optimizer/quantize';
import { train } from '../lib/train';
import { closeFloats, FIXTURES, inferOnce, randomF32, randomU8, rejectsCode, rng, sameFloats, throwsCode, optionalOrt } from './helpers';

const mnist = mnistTest();
const fp32 = defaultModel();
const folded = foldInputNormalization(fp32);

const ort = optionalOrt('the onnxruntime check of the uint8 export');

test('MNIST: raw bytes into the folded model = bytes / 255 into the original (logits within 1e-5, same accuracy)', () => {
  assert.is(folded.inputs[0].dtype, 'uint8');
  assert.is(fp32.inputs[0].dtype, undefined, 'the source graph is not modified');
  const rows = sliceRows(mnist, 0, 500);
  const want = inferOnce(fp32, rows.data, rows.shape);
  const got = inferOnce(folded, Float32Array.from(rows.raw!), rows.shape);
  closeFloats(got, want, { abs: 1e-5, rel: 1e-5 }, 'folded vs original');
  assert.is(evaluateModel(folded, mnist).accuracy, evaluateModel(fp32, mnist).accuracy);
  // Quantized after the fold: the same accuracy as quantizing the original (93.95 %).
  assert.is(evaluateModel(quantizeGraph(folded), mnist).accuracy, evaluateModel(quantizeGraph(fp32), mnist).accuracy);
});

test('per-channel mean/std on an NCHW input [N, 3, 2, 2] through Flatten', () => {
  const r = rng(4);
  const g: Graph = validateGraph({
    name: 'nchw',
    inputs: [{ name: 'image', shape: [null, 3, 2, 2] }],
    outputs: ['y'],
    tensors: {
      w: { name: 'w', dtype: 'float32', shape: [5, 12], data: randomF32(60, r) },
      b: { name: 'b', dtype: 'float32', shape: [5], data: randomF32(5, r) },
    },
    nodes: [
      { name: 'flat', op: 'Flatten', inputs: ['image'], outputs: ['f'], attrs: {} },
      { name: 'fc', op: 'Dense', inputs: ['f', 'w', 'b'], outputs: ['y'], attrs: { activation: 'none' } },
    ],
    metadata: {},
  });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const f = foldInputNormalization(g, { mean, std });
  const raw = randomU8(7 * 12, r);
  const normalized = Float32Array.from(raw, (v, i) => (v / 255 - mean[Math.floor((i % 12) / 4)]) / std[Math.floor((i % 12) / 4)]);
  closeFloats(
    inferOnce(f, Float32Array.from(raw), [7, 3, 2, 2]),
    inferOnce(g, normalized, [7, 3, 2, 2]),
    { abs: 1e-4, rel: 1e-5 },
    'per-channel',
  );
  // A model without a bias gets one (the mean shift lives there).
  const noBias = { ...g, nodes: g.nodes.map((n) => (n.op === 'Dense' ? { ...n, inputs: ['f', 'w'] } : n)) };
  const fb = foldInputNormalization(noBias, { mean: 0.5 });
  assert.ok(fb.tensors['fc.bias'], 'bias created');
  const half = Float32Array.from(raw, (v) => v / 255 - 0.5);
  closeFloats(
    inferOnce(fb, Float32Array.from(raw), [7, 3, 2, 2]),
    inferOnce(noBias, half, [7, 3, 2, 2]),
    { abs: 1e-5 },
    'scalar mean, no bias',
  );
});

test('a session of a folded int8 model takes Uint8Array (camera bytes), and refuses Float32Array', async () => {
  const q = quantizeGraph(folded);
  const s = await EdgeInferenceEngine.create(q);
  assert.equal(s.inputMetadata, [{ name: 'input', dtype: 'uint8', shape: [null, 784] }]);
  const rows = sliceRows(mnist, 0, 9);
  const out = await s.run({ input: { data: rows.raw!, dims: [9, 784] } });
  sameFloats(out['fc2.out'].data, inferOnce(q, Float32Array.from(rows.raw!), [9, 784]), 'uint8 feed');
  const clamped = await s.run({ input: { data: new Uint8ClampedArray(rows.raw!.buffer, rows.raw!.byteOffset, 784), dims: [1, 784] } });
  assert.equal(clamped['fc2.out'].dims, [1, 10]);
  await rejectsCode(s.run({ input: { data: rows.data, dims: [9, 784] } }), 'E_DTYPE', /takes a Uint8Array/);
  await s.release();
});

test('the optimizer pipeline: fold then quantize; evaluation and calibration read the raw bytes', async () => {
  const { model, report } = await new EdgeModelOptimizer()
    .addOptimization('uint8 input', inputNormalization())
    .addOptimization('int8', quantize({ activations: 'static' }))
    .optimize(fp32, { evaluation: mnist, calibration: sliceRows(mnist, 0, 256) });
  assert.is(model.inputs[0].dtype, 'uint8');
  assert.is(report.passes[0].after?.accuracy, report.accuracyBefore);
  assert.is(report.passes[0].after?.changedPredictions, 0);
  const after = report.passes[1].after!.accuracy;
  // The first layer's static input scale comes from bytes 0..255: (255 - 0) / 255 = 1.
  const fc1 = model.nodes.find((n) => n.name === 'fc1')!;
  assert.is(fc1.attrs.inputScale, 1);
  assert.ok(after >= 0.93, `static int8 on raw bytes: ${after}`);
  // Same static calibration, same rows, in the float domain: identical accuracy.
  const floatStatic = applyStaticActivations(quantizeGraph(fp32), observeActivations(fp32, sliceRows(mnist, 0, 256)));
  assert.ok(Math.abs(evaluateModel(floatStatic, mnist).accuracy - after) <= 0.002);
});

test('.eom keeps the uint8 input; ONNX export declares uint8 + Cast, onnxruntime runs it, import reads it back', async () => {
  const q = quantizeGraph(folded);
  assert.is(decodeEom(encodeEom(q), 'x.eom').inputs[0].dtype, 'uint8');
  const bytes = encodeOnnx(q);
  const back = importOnnx(bytes, 'u8.onnx');
  assert.is(back.inputs[0].dtype, 'uint8');
  const rows = sliceRows(mnist, 0, 16);
  const x = Float32Array.from(rows.raw!);
  sameFloats(inferOnce(back, x, [16, 784]), inferOnce(q, x, [16, 784]), 'import of the export');
  if (!ort) return;
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('uint8', rows.raw!.slice(), [16, 784]) });
  const fpBytes = encodeOnnx(folded);
  const fpSession = await ort.InferenceSession.create(fpBytes, { intraOpNumThreads: 1 });
  const fpOut = await fpSession.run({ [fpSession.inputNames[0]]: new ort.Tensor('uint8', rows.raw!.slice(), [16, 784]) });
  closeFloats(
    fpOut[fpSession.outputNames[0]].data as Float32Array,
    inferOnce(folded, x, [16, 784]),
    { abs: 1e-4 },
    'onnxruntime fp32 uint8 export',
  );
  assert.is((out[session.outputNames[0]].data as Float32Array).length, 160);
});

test('loadOnnx of a float model is unchanged (no dtype on its input)', () => {
  assert.is(loadOnnx(path.join(FIXTURES, 'mlp-784-128-10', 'model.onnx')).inputs[0].dtype, undefined);
});

test('refusals: quantized first layer, already uint8, bad mean/std/divisor, data without raw bytes, training', () => {
  throwsCode(
    () => foldInputNormalization(quantizeGraph(fp32)),
    'E_UNSUPPORTED_OP',
    /already quantized; fold the normalization before quantizing/,
  );
  throwsCode(() => foldInputNormalization(folded), 'E_ARGUMENT', /already takes uint8/);
  throwsCode(() => foldInputNormalization(fp32, { std: 0 }), 'E_ARGUMENT', /std must be finite and > 0/);
  throwsCode(() => foldInputNormalization(fp32, { mean: [1, 2] }), 'E_ARGUMENT', /1 or 784 values/);
  throwsCode(() => foldInputNormalization(fp32, { divisor: -1 }), 'E_ARGUMENT', /divisor/);
  throwsCode(() => evaluateModel(folded, { data: mnist.data, shape: mnist.shape, labels: mnist.labels }), 'E_DTYPE', /no raw bytes/);
  throwsCode(() => modelRows({ data: mnist.data, shape: mnist.shape }, folded), 'E_DTYPE');
  throwsCode(() => train(folded, sliceRows(mnist, 0, 32), { epochs: 1 }), 'E_UNSUPPORTED_OP', /train the float model, then fold/);
  const relu: Graph = {
    ...fp32,
    nodes: [
      { name: 'r', op: 'Relu', inputs: ['input'], outputs: ['r0'], attrs: {} },
      ...fp32.nodes.map((n) => (n.name === 'fc1' ? { ...n, inputs: ['r0', ...n.inputs.slice(1)] } : n)),
    ],
  };
  throwsCode(() => foldInputNormalization(validateGraph(relu)), 'E_UNSUPPORTED_OP', /is Relu; the fold needs a Dense/);
  throwsCode(
    () => validateGraph({ ...fp32, inputs: [{ name: 'input', shape: [null, 784], dtype: 'int8' as never }] }),
    'E_FORMAT',
    /dtype 'int8'/,
  );
});

test.run();
