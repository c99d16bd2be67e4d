/** The rest of the house on CNNs: .eom round trips, pruning of Conv weights, the dynamic int8 refusal, ONNX export run by onnxruntime. */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeEom, encodeEom, encodeOnnx, loadModel, loadOnnx, pruneGraph, quantizeGraph } from '../lib';
import { mobileNetV2, resNet18 } from '../lib/model/builder';
import { prunedCount } from '../lib/optimizer/prune';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { FIXTURES, inferOnce, readF32, sameFloats, throwsCode, optionalOrt } from './helpers';

const ort = optionalOrt('the onnxruntime checks');

const MOBILENET = path.join(FIXTURES, 'mobilenet-mini-1x28x28');
const x = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 4 * 784);

test('.eom stores CNN graphs: the round trip gives identical outputs (BatchNormalization nodes kept)', () => {
  for (const file of ['model.onnx', 'model-bn.onnx']) {
    const g = loadModel(path.join(MOBILENET, file));
    const back = decodeEom(encodeEom(g));
    assert.equal(
      back.nodes.map((n) => n.op),
      g.nodes.map((n) => n.op),
    );
    sameFloats(inferOnce(back, x, [4, 1, 28, 28]), inferOnce(g, x, [4, 1, 28, 28]), file);
  }
});

test('pruning: unstructured and global rank Conv and Dense weights; masks survive .eom; 2:4/neurons refuse CNNs', () => {
  const g = loadModel(path.join(MOBILENET, 'model.onnx'));
  const weights = (m: typeof g) => m.nodes.filter((n) => n.op === 'Conv' || n.op === 'Dense').map((n) => m.tensors[n.inputs[1]]);
  const u = pruneGraph(g, { sparsity: 0.3, mode: 'unstructured' });
  for (const w of weights(u)) {
    const zeros = (w.data as Float32Array).filter((v) => v === 0).length;
    assert.is(zeros, prunedCount(w.data!.length, 0.3), w.name);
    assert.ok(w.mask);
  }
  const gl = pruneGraph(g, { sparsity: 0.3, mode: 'global' });
  const all = weights(gl).reduce((s, w) => s + w.data!.length, 0);
  const zeros = weights(gl).reduce((s, w) => s + (w.data as Float32Array).filter((v) => v === 0).length, 0);
  assert.is(zeros, prunedCount(all, 0.3));
  const back = decodeEom(encodeEom(u));
  sameFloats(inferOnce(back, x, [4, 1, 28, 28]), inferOnce(u, x, [4, 1, 28, 28]), 'pruned .eom');
  throwsCode(() => pruneGraph(g, { mode: '2:4' }), 'E_UNSUPPORTED_OP', /Conv/);
  throwsCode(() => pruneGraph(g, { sparsity: 0.2, mode: 'neurons' }), 'E_UNSUPPORTED_OP', /Conv/);
});

test('int8 quantization of Conv layers needs static activations (dynamic int8 CNNs are refused clearly)', () => {
  throwsCode(
    () => quantizeGraph(loadModel(path.join(MOBILENET, 'model.onnx'))),
    'E_UNSUPPORTED_OP',
    /Conv layers.*'stem\.stem\.0\.Conv'.*static/,
  );
});

test('ONNX export: the fixture and built MobileNetV2/ResNet-18 re-import identically and onnxruntime agrees within 1e-4 of the output range', async () => {
  const models = [
    loadModel(path.join(MOBILENET, 'model-bn.onnx')),
    mobileNetV2({ size: 64, classes: 17 }),
    resNet18({ size: 40, classes: 13 }),
  ];
  for (const g of models) {
    const bytes = encodeOnnx(g);
    const shape = [2, ...(g.inputs[0].shape.slice(1) as number[])];
    const input = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37));
    const e = new EdgeInferenceEngine();
    e.loadModelSync('m', loadOnnx(bytes));
    const mine = e.inferSync('m', { data: input, shape }).data;
    sameFloats(inferOnce(g, input, shape), mine, `${g.name} re-imported`);
    if (!ort) continue;
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const ref = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, shape) }))[s.outputNames[0]].data as Float32Array;
    const range = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const diff = ref.reduce((m, v, i) => Math.max(m, Math.abs(v - mine[i])), 0);
    assert.ok(diff <= 1e-4 * range, `${g.name}: ${diff} > 1e-4 x ${range}`);
  }
});

test.run();
