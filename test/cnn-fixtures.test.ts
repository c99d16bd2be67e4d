/**
 * The PyTorch-exported CNN fixtures (LeNet-5, three MobileNet-mini variants) on
 * whatever backend this run uses (npm test runs it on the default native table,
 * each other table via EDGEOPT_ISA, and EDGEOPT_FORCE_TS=1): logits within 1e-4
 * of onnxruntime's stored outputs, top-1 on the 2000 bundled test digits equal to
 * onnxruntime's, the arena within 1.1x of the liveness bound, and the named-tensor
 * engine API.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import { mnistTest } from '../lib/data/bundled';
import { referenceNpuPluginPath } from '../lib/backends/npu';
import { EdgeInferenceEngine, type FallbackEvent } from '../lib/engine/engine';
import { loadModel, validateGraph } from '../lib/model';
import { argmaxRows } from '../lib/optimizer/evaluate';
import { closeFloats, FIXTURES, readF32, sameFloats, throwsCode } from './helpers';

const native = backendInfo().native;
const MOBILENET = path.join(FIXTURES, 'mobilenet-mini-1x28x28');
const LENET = path.join(FIXTURES, 'lenet5-1x28x28');
const VARIANTS: Array<[dir: string, suffix: string]> = [
  [MOBILENET, ''],
  [MOBILENET, '-bn'],
  [MOBILENET, '-opset17'],
  [LENET, ''],
  [LENET, '-opset17'],
];

function fixture(dir: string): { accuracy: number; argmax: number[] } {
  const f = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
  return { accuracy: f.accuracy.ort_fp32_test_accuracy, argmax: f.accuracy.expected_argmax_input_batch };
}

for (const [dir, suffix] of VARIANTS) {
  const name = `${path.basename(dir)}/model${suffix}.onnx`;
  test(`${name}: logits within 1e-4 of onnxruntime, every node placed on ${native ? 'native' : 'ts'}, arena within 1.1x of the bound`, () => {
    const e = new EdgeInferenceEngine();
    e.loadModelSync('m', path.join(dir, `model${suffix}.onnx`));
    const y = e.inferSync('m', { data: readF32(path.join(dir, 'input.bin')), shape: [64, 1, 28, 28] });
    assert.equal(y.shape, [64, 10]);
    closeFloats(y.data, readF32(path.join(dir, `ref-output${suffix}.bin`)), { abs: 1e-4 }, name);
    assert.equal(Array.from(argmaxRows(y.data, 64)), fixture(dir).argmax);
    assert.ok(
      e.placement('m').every((p) => p.backend === (native ? 'native' : 'ts')),
      JSON.stringify(e.placement('m')),
    );
    const mem = e.memory('m');
    assert.ok(mem.arenaBytes <= 1.1 * mem.liveBytesBound, JSON.stringify(mem));
    assert.ok(mem.weightBytes > 0 && mem.liveBytesBound > 0);
  });
}

test('top-1 on the 2000 bundled test digits equals onnxruntime (and the stored test logits within 1e-4)', () => {
  const ds = mnistTest();
  // The TS executor is slow (a few hundred ms per MobileNet image on this VM): there the 2000
  // digits run through LeNet; the MobileNet variants are checked on the 64-image batch above and,
  // natively, bit for bit against the scalar table (next test), which runs all 2000 digits.
  const variants = native ? VARIANTS : VARIANTS.filter(([d]) => d === LENET);
  for (const [dir, suffix] of variants) {
    const e = new EdgeInferenceEngine();
    e.loadModelSync('m', path.join(dir, `model${suffix}.onnx`));
    const y = e.inferSync('m', ds.data).data;
    closeFloats(y, readF32(path.join(dir, `test-logits${suffix}.bin`)), { abs: 1e-4 }, `${path.basename(dir)}${suffix} test logits`);
    const pred = argmaxRows(y, ds.shape[0]);
    const correct = pred.reduce((c, p, i) => c + (p === ds.labels![i] ? 1 : 0), 0);
    assert.is(correct / ds.shape[0], fixture(dir).accuracy, `${path.basename(dir)}${suffix}`);
  }
});

test('the TS executor is bit-identical to the native scalar table on the CNN fixtures (and within 1e-5 of the default table)', () => {
  if (!native) return;
  const x8 = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 8 * 784);
  for (const [dir, suffix] of VARIANTS) {
    const outs = [{ kernel: 'scalar' }, { device: 'ts' as const }].map((o) => {
      const e = new EdgeInferenceEngine(o);
      e.loadModelSync('m', path.join(dir, `model${suffix}.onnx`));
      return e.inferSync('m', { data: x8, shape: [8, 1, 28, 28] }).data;
    });
    sameFloats(outs[0], outs[1], `${path.basename(dir)}${suffix}: scalar vs ts`);
  }
  const x = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 5 * 784);
  for (const [dir, suffix] of VARIANTS) {
    const outs = (['cpu', 'ts'] as const).map((device) => {
      const e = new EdgeInferenceEngine({ device });
      e.loadModelSync('m', path.join(dir, `model${suffix}.onnx`));
      return e.inferSync('m', { data: x, shape: [5, 1, 28, 28] }).data;
    });
    closeFloats(outs[0], outs[1], { abs: 1e-5, rel: 1e-5 }, `${path.basename(dir)}${suffix}`);
  }
});

test('runModel / runModelSync / modelInfo: named tensors, batch as null, results equal to infer', async () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', path.join(MOBILENET, 'model.onnx'));
  assert.equal(e.modelInfo('m'), {
    inputs: [{ name: 'input', shape: [null, 1, 28, 28] }],
    outputs: [{ name: 'logits', shape: [null, 10] }],
  });
  const x = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 3 * 784);
  const want = e.inferSync('m', { data: x, shape: [3, 1, 28, 28] }).data;
  const sync = e.runModelSync('m', { input: { data: x, shape: [3, 1, 28, 28] } });
  assert.equal(Object.keys(sync), ['logits']);
  assert.equal(sync.logits.shape, [3, 10]);
  sameFloats(sync.logits.data, want, 'runModelSync');
  const big = readF32(path.join(MOBILENET, 'input.bin'));
  const asyncOut = await e.runModel('m', { input: { data: big, shape: [64, 1, 28, 28] } });
  sameFloats(asyncOut.logits.data, e.inferSync('m', { data: big, shape: [64, 1, 28, 28] }).data, 'runModel');
  throwsCode(() => e.runModelSync('m', {}), 'E_ARGUMENT', /input 'input' is missing/);
  throwsCode(
    () => e.runModelSync('m', { input: { data: x, shape: [3, 1, 28, 28] }, other: { data: x, shape: [3] } }),
    'E_ARGUMENT',
    /no input 'other'/,
  );
  throwsCode(() => e.runModelSync('m', { input: { data: x, shape: [3, 28, 28] } }), 'E_SHAPE', /\[batch, 1, 28, 28\]/);
});

test('two inputs, two outputs: runModel, a session and the batcher name and split them', async () => {
  const g = validateGraph({
    name: 'two',
    inputs: [
      { name: 'a', shape: [null, 2, 3] },
      { name: 'b', shape: [null, 2, 3] },
    ],
    outputs: ['sum', 'gate'],
    tensors: {},
    nodes: [
      { name: 'add', op: 'Add', inputs: ['a', 'b'], outputs: ['sum'], attrs: {} },
      { name: 'sig', op: 'Sigmoid', inputs: ['b'], outputs: ['s'], attrs: {} },
      { name: 'mul', op: 'Mul', inputs: ['a', 's'], outputs: ['gate'], attrs: {} },
    ],
    metadata: {},
  });
  const e = new EdgeInferenceEngine();
  const session = e.loadModelSync('m', g);
  assert.equal(session.inputNames, ['a', 'b']);
  assert.equal(session.outputNames, ['sum', 'gate']);
  const a = Float32Array.from({ length: 12 }, (_, i) => i - 5);
  const b = Float32Array.from({ length: 12 }, (_, i) => Math.cos(i));
  const out = e.runModelSync('m', { a: { data: a, shape: [2, 2, 3] }, b: { data: b, shape: [2, 2, 3] } });
  closeFloats(
    out.sum.data,
    a.map((v, i) => v + b[i]),
    { abs: 1e-6 },
    'sum',
  );
  closeFloats(
    out.gate.data,
    a.map((v, i) => v / (1 + Math.exp(-b[i]))),
    { abs: 1e-5 },
    'gate',
  );
  const viaSession = await session.run({ a: { data: a, dims: [2, 2, 3] }, b: { data: b, dims: [2, 2, 3] } });
  sameFloats(viaSession.gate.data as Float32Array, out.gate.data, 'session');
  const batcher = e.batcher('m', { maxBatch: 4 });
  const rows = await Promise.all(
    [0, 1].map((r) =>
      batcher.run(
        { a: { data: a.subarray(r * 6, r * 6 + 6), shape: [1, 2, 3] }, b: { data: b.subarray(r * 6, r * 6 + 6), shape: [1, 2, 3] } },
        1,
      ),
    ),
  );
  rows.forEach((o, r) => sameFloats(o.sum.data, out.sum.data.subarray(r * 6, r * 6 + 6), `batched row ${r}`));
  throwsCode(() => e.inferSync('m', a), 'E_ARGUMENT', /2 inputs; use runModel/);
});

test('batched results equal one image at a time (no op mixes images; chunked native runs too)', () => {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', path.join(MOBILENET, 'model-bn.onnx'));
  const x = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 7 * 784);
  const all = e.inferSync('m', { data: x, shape: [7, 1, 28, 28] }).data;
  for (let r = 0; r < 7; r++) {
    const one = e.inferSync('m', { data: x.subarray(r * 784, (r + 1) * 784), shape: [1, 1, 28, 28] }).data;
    closeFloats(one, all.subarray(r * 10, (r + 1) * 10), { abs: 1e-6, rel: 1e-6 }, `image ${r}`);
  }
});

test('placement lists every graph node; fused activations name the op that computes them', () => {
  const g = loadModel(path.join(MOBILENET, 'model.onnx'));
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', g);
  const p = e.placement('m');
  assert.equal(
    p.map((x) => x.node),
    g.nodes.map((n) => n.name),
  );
  const clip = p.find((x) => x.op === 'Clip')!;
  assert.is(clip.fusedInto, 'stem.stem.0.Conv');
  if (native) assert.match(p.find((x) => x.op === 'Conv' && x.node.includes('dw'))!.kernel!, /^depthwise-/);
});

test('the NPU partitioner keeps what NPU ABI v1 cannot express (Conv, pooling, residual Add) on the CPU, with reasons', () => {
  if (!native) return;
  const e = new EdgeInferenceEngine({ device: 'npu', npuPlugin: referenceNpuPluginPath() });
  const events: FallbackEvent[] = [];
  e.on('fallback', (ev) => events.push(ev));
  e.loadModelSync('m', path.join(MOBILENET, 'model.onnx'));
  const p = e.placement('m');
  assert.ok(p.every((x) => x.backend === 'native'));
  assert.match(p.find((x) => x.op === 'Conv')!.reason!, /NPU plugin '.*': NPU ABI v1 has no such op/);
  assert.match(p.find((x) => x.op === 'Gemm' || x.op === 'Dense')!.reason!, /float32|int8|Dense/i);
  assert.ok(events.length >= p.filter((x) => !x.fusedInto).length - 2);
  const x = readF32(path.join(MOBILENET, 'input.bin'));
  closeFloats(
    e.inferSync('m', { data: x, shape: [64, 1, 28, 28] }).data,
    readF32(path.join(MOBILENET, 'ref-output.bin')),
    { abs: 1e-4 },
    'npu engine',
  );
});

test.run();
