/**
 * Training CNN graphs: every op's backward against central finite differences (float32, relative
 * error of the gradient vector below 1e-2), BatchNormalization's running statistics and its folding
 * for inference, Dropout, schedules, augmentation, masks and filter-pruned shapes through training,
 * trainAsync yielding, and the refusals.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCnn, mnistTest, mnistTrain } from '../lib/data/bundled';
import { distill } from '../lib/optimizer/distill';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { mlp } from '../lib/train/init';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { GraphBuilder, mobileNetMini } from '../lib/model/builder';
import type { Graph } from '../lib/model/graph';
import { pruneGraph } from '../lib/optimizer/prune';
import { shiftImages } from '../lib/train/augment';
import { GraphNetwork } from '../lib/train/graph-network';
import { Network } from '../lib/train/network';
import { scheduledLr } from '../lib/train/schedule';
import { train, trainAsync } from '../lib/train/trainer';
import { closeFloats, finiteDifferenceError, randomF32, rng, throwsCode } from './helpers';

/**
 * Checks dL/dparam of L = Σ logits·r for every parameter of `g` (up to `samples` entries each)
 * against central differences. Returns the worst relative error ‖a - fd‖ / (‖a‖ + ‖fd‖).
 */
function gradientCheck(g: Graph, batch: number, samples = 24, tolerance = 1e-2): number {
  const net = Network.fromGraph(g);
  const random = rng(5);
  const x = randomF32(batch * net.inFeatures, random);
  const r = randomF32(batch * net.outFeatures, random);
  const loss = () => {
    const { logits } = net.forward(x, batch);
    let s = 0;
    for (let i = 0; i < logits.length; i++) s += logits[i] * r[i];
    return s;
  };
  const { cache } = net.forward(x, batch);
  const grads = net.backward(cache, r);
  let worst = 0;
  net.params.forEach((p, k) => {
    const rel = finiteDifferenceError(p.data, grads[k], loss, samples);
    assert.ok(rel < tolerance, `${g.name}: ${p.name}: relative error ${rel}`);
    worst = Math.max(worst, rel);
  });
  return worst;
}

/** A graph: input [c, h, w] -> body -> GlobalAveragePool -> Flatten -> Dense(3). */
function withHead(name: string, input: number[], body: (b: GraphBuilder, x: string) => string): Graph {
  const b = new GraphBuilder(name, input, { seed: 11 });
  const x = body(b, b.input);
  return b.build(b.dense(b.flatten(b.globalAveragePool(x)), 3));
}

const CONVS: Array<[string, (b: GraphBuilder, x: string) => string]> = [
  ['conv 3x3 stride 2 pad 1', (b, x) => b.conv(x, 4, 3, { stride: 2, pad: 1, bias: true })],
  ['conv 3x3 dilation 2 asymmetric pad', (b, x) => b.conv(x, 5, 3, { dilation: 2, pad: [2, 1, 0, 2], bias: true })],
  ['conv 1x1', (b, x) => b.conv(x, 4, 1, { bias: true })],
  ['grouped conv (3 groups)', (b, x) => b.conv(b.conv(x, 6, 1), 9, 3, { groups: 3, pad: 1, bias: true })],
  ['depthwise conv stride 2', (b, x) => b.conv(x, 3, 3, { groups: 3, stride: 2, pad: 1, bias: true })],
  ['depthwise conv multiplier 2', (b, x) => b.conv(x, 6, 3, { groups: 3, pad: 1 })],
];
for (const [name, body] of CONVS) {
  test(`gradient check: ${name}`, () => {
    gradientCheck(withHead(name, [3, 9, 7], body), 3);
  });
}

const OPS: Array<[string, (b: GraphBuilder, x: string) => string]> = [
  ['BatchNormalization (training)', (b, x) => b.batchNorm(b.conv(x, 4, 3, { pad: 1, bias: true }))],
  ['Relu', (b, x) => b.relu(b.conv(x, 4, 3, { bias: true }))],
  ['Clip (ReLU6)', (b, x) => b.relu6(b.conv(x, 4, 3, { bias: true, weight: randomF32(108, rng(3), 3) }))],
  ['HardSwish', (b, x) => b.hardSwish(b.conv(x, 4, 3, { bias: true, weight: randomF32(108, rng(3), 3) }))],
  ['HardSigmoid', (b, x) => b.op('HardSigmoid', [b.conv(x, 4, 3, { bias: true })], { alpha: 0.3, beta: 0.4 })[0]],
  ['Sigmoid', (b, x) => b.sigmoid(b.conv(x, 4, 3, { bias: true }))],
  ['Tanh', (b, x) => b.op('Tanh', [b.conv(x, 4, 3, { bias: true })])[0]],
  ['LeakyRelu', (b, x) => b.op('LeakyRelu', [b.conv(x, 4, 3, { bias: true })], { alpha: 0.1 })[0]],
  ['MaxPool 3x3 stride 2 pad 1', (b, x) => b.maxPool(b.conv(x, 4, 1, { bias: true }), 3, 2, 1)],
  ['MaxPool ceil mode', (b, x) => b.maxPool(b.conv(x, 4, 1, { bias: true }), 2, 2, 0, true)],
  ['AveragePool (padding not counted)', (b, x) => b.averagePool(b.conv(x, 4, 1, { bias: true }), 3, 2, 1)],
  ['AveragePool (padding counted)', (b, x) => b.averagePool(b.conv(x, 4, 1, { bias: true }), 3, 2, 1, true)],
  ['residual Add', (b, x) => b.add(b.conv(x, 3, 3, { pad: 1 }), b.conv(x, 3, 1, { bias: true }))],
  [
    'Mul broadcast [C,H,W] x [C,1,1] (squeeze-excite)',
    (b, x) => {
      const y = b.conv(x, 4, 3, { pad: 1, bias: true });
      return b.mul(y, b.sigmoid(b.conv(b.globalAveragePool(y), 4, 1, { bias: true })));
    },
  ],
  ['Sub and Div by constants', (b, x) => divByConstant(b, subConstant(b, b.conv(x, 4, 1, { bias: true })))],
  ['Concat on channels', (b, x) => b.concat([b.conv(x, 2, 3, { pad: 1 }), b.conv(x, 3, 1, { bias: true }), x])],
  ['Transpose H and W', (b, x) => b.conv(b.op('Transpose', [b.conv(x, 4, 1)], { perm: [0, 1, 3, 2] })[0], 3, 3, { bias: true })],
];
for (const [name, body] of OPS) {
  test(`gradient check: ${name}`, () => {
    gradientCheck(withHead(name, [3, 9, 7], body), 3);
  });
}

function subConstant(b: GraphBuilder, x: string): string {
  const name = 'shift.value';
  (b as unknown as { tensors: Graph['tensors'] }).tensors[name] = {
    name,
    dtype: 'float32',
    shape: [4, 1, 1],
    data: Float32Array.from([0.5, -1, 2, 0.25]),
  };
  return b.op('Sub', [x, name])[0];
}

function divByConstant(b: GraphBuilder, x: string): string {
  const name = 'divisor.value';
  (b as unknown as { tensors: Graph['tensors'] }).tensors[name] = { name, dtype: 'float32', shape: [1], data: Float32Array.from([1.7]) };
  return b.op('Div', [x, name])[0];
}

test('gradient check: Flatten and Reshape into Dense with a fused activation', () => {
  const b = new GraphBuilder('flat', [2, 5, 4], { seed: 2 });
  const x = b.conv(b.input, 3, 3, { pad: 1, bias: true });
  const y = b.op('Reshape', [x], { shape: [0, -1] })[0];
  const h = b.op('Dense', [y, ...denseParams(b, 'h', 7, 60)], { activation: 'tanh' })[0];
  gradientCheck(b.build(b.dense(h, 4)), 3);
});

function denseParams(b: GraphBuilder, base: string, n: number, k: number): string[] {
  const tensors = (b as unknown as { tensors: Graph['tensors'] }).tensors;
  tensors[`${base}.weight`] = { name: `${base}.weight`, dtype: 'float32', shape: [n, k], data: randomF32(n * k, rng(8), 0.3) };
  tensors[`${base}.bias`] = { name: `${base}.bias`, dtype: 'float32', shape: [n], data: randomF32(n, rng(9), 0.3) };
  return [`${base}.weight`, `${base}.bias`];
}

test('gradient check: the whole mobilenet-mini architecture (BN in training mode, residuals, HardSwish)', () => {
  // 14 clamped layers put kinks within any finite-difference step, so central differences themselves
  // move by a few percent with the step; a wrong gradient is off by far more.
  gradientCheck(mobileNetMini({ seed: 3 }), 2, 6, 5e-2);
});

test('BatchNormalization: running statistics move by momentum 0.1 toward the batch mean and unbiased variance', () => {
  const b = new GraphBuilder('bn', [2, 3, 3], { seed: 1 });
  const g = b.build(b.flatten(b.batchNorm(b.input, { fresh: true })));
  const net = new GraphNetwork(g);
  const x = randomF32(4 * 18, rng(2), 2);
  net.forward(x, 4);
  for (let c = 0; c < 2; c++) {
    const vals: number[] = [];
    for (let n = 0; n < 4; n++) for (let i = 0; i < 9; i++) vals.push(x[(n * 2 + c) * 9 + i]);
    const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
    const unbiased = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / (vals.length - 1);
    closeFloats([net.buffers[0].data[c]], [0.1 * mean], { abs: 1e-6 }, 'running mean');
    closeFloats([net.buffers[1].data[c]], [0.9 + 0.1 * unbiased], { abs: 1e-6 }, 'running var');
  }
});

test('a trained CNN with BatchNormalization runs in the engine (BN folded) as the network does in eval mode', () => {
  const data = sliceRows(mnistTrain(), 0, 96);
  const { model } = train(mobileNetMini({ seed: 1 }), data, { epochs: 1, batchSize: 32, optimizer: 'adam', seed: 1 });
  const net = Network.fromGraph(model);
  const x = data.data.subarray(0, 8 * 784);
  const { logits } = net.forward(x, 8, false);
  const engine = new EdgeInferenceEngine({ device: 'cpu' });
  engine.loadModelSync('m', model);
  const out = engine.inferSync('m', { data: x, shape: [8, 1, 28, 28] });
  closeFloats(out.data, logits, { abs: 2e-4, rel: 1e-3 }, 'engine vs eval-mode network');
  const ts = new EdgeInferenceEngine({ device: 'ts' });
  ts.loadModelSync('m', model);
  closeFloats(ts.inferSync('m', { data: x, shape: [8, 1, 28, 28] }).data, logits, { abs: 2e-4, rel: 1e-3 }, 'TS twin vs network');
});

test('Dropout: identity outside training; in training kept values scaled by 1/(1-ratio) and the gradient masked the same way', () => {
  const b = new GraphBuilder('drop', [40], { seed: 1 });
  const g = b.build(b.op('Dropout', [b.input], { ratio: 0.25 })[0]);
  const net = new GraphNetwork(g);
  const x = randomF32(5 * 40, rng(4));
  assert.equal(net.forward(x, 5, false).logits, x);
  const { logits, cache } = net.forward(x, 5, true);
  const dropped = logits.filter((v) => v === 0).length;
  assert.ok(dropped > 20 && dropped < 80, `${dropped} of 200 dropped at ratio 0.25`);
  logits.forEach((v, i) => v === 0 || closeFloats([v], [x[i] / 0.75], { rel: 1e-6 }, 'scaled'));
  // Backward of Dropout alone: the network has no params, so check through a wrapping Dense.
  assert.equal(net.backward(cache, new Float32Array(200).fill(1)), []);
});

test('Dropout with the default ratio passes through training and reaches the loss gradient', () => {
  const b = new GraphBuilder('drop2', [12], { seed: 1 });
  const h = b.op('Dropout', [b.op('Dense', [b.input, ...denseParams(b, 'a', 8, 12)], { activation: 'relu' })[0]])[0];
  const g = b.build(b.op('Dense', [h, ...denseParams(b, 'o', 3, 8)])[0]);
  const net = Network.fromGraph(g);
  const x = randomF32(4 * 12, rng(6));
  const { cache, logits } = net.forward(x, 4, true);
  const grads = net.backward(cache, new Float32Array(logits.length).fill(1));
  const hidden = (cache as unknown as { values: Map<string, Float32Array> }).values.get(h)!;
  // The output layer's weight gradient sums the dropped hidden values: zero columns where all rows dropped.
  for (let j = 0; j < 8; j++) {
    let s = 0;
    for (let r = 0; r < 4; r++) s += hidden[r * 8 + j];
    closeFloats([grads[2][j]], [s], { abs: 1e-5, rel: 1e-5 }, `dW_o[0][${j}]`);
  }
});

test('learning-rate schedules: cosine from lr to minLr over the run, step decay per epoch', () => {
  const cos = { kind: 'cosine', minLr: 0.001 } as const;
  assert.is(scheduledLr(cos, 0.1, 0, 100, 1), 0.1);
  closeFloats([scheduledLr(cos, 0.1, 50, 100, 1)], [0.0505], { abs: 1e-12 }, 'half way');
  closeFloats([scheduledLr(cos, 0.1, 100, 100, 1)], [0.001], { abs: 1e-12 }, 'end');
  const step = { kind: 'step', every: 2, gamma: 0.5 } as const;
  assert.equal(
    [1, 2, 3, 4, 5].map((e) => scheduledLr(step, 0.1, 0, 1, e)),
    [0.1, 0.1, 0.05, 0.05, 0.025],
  );
  const seen: number[] = [];
  const data = sliceRows(mnistTrain(), 0, 64);
  const b = new GraphBuilder('tiny', [1, 28, 28], { seed: 1 });
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(b.conv(b.input, 2, 3, { stride: 4 }))), 10));
  train(g, data, {
    epochs: 2,
    batchSize: 16,
    lr: 0.1,
    schedule: { kind: 'cosine' },
    beforeStep: (_i, _n, opt) => seen.push(opt.lr),
  });
  closeFloats(
    seen,
    [0, 1, 2, 3, 4, 5, 6, 7].map((s) => (0.1 * (1 + Math.cos((Math.PI * s) / 8))) / 2),
    { abs: 1e-12 },
    'lr per step',
  );
});

test('shift augmentation: seeded, moves pixels by at most `shift`, zeros enter at the border', () => {
  const x = new Float32Array(2 * 5 * 5);
  x[12] = 1; // image 0: centre pixel
  x[25 + 12] = 1;
  const a = x.slice();
  shiftImages(a, 2, [1, 5, 5], 2, rng(3));
  const b2 = x.slice();
  shiftImages(b2, 2, [1, 5, 5], 2, rng(3));
  assert.equal(a, b2, 'same seed, same shifts');
  for (let img = 0; img < 2; img++) {
    const at = a.subarray(img * 25, (img + 1) * 25).indexOf(1);
    assert.ok(at >= 0, 'the centre pixel stays inside');
    assert.ok(Math.abs(Math.floor(at / 5) - 2) <= 2 && Math.abs((at % 5) - 2) <= 2);
    assert.is(
      a.subarray(img * 25, (img + 1) * 25).reduce((s, v) => s + v, 0),
      1,
    );
  }
  const none = x.slice();
  shiftImages(none, 2, [1, 5, 5], 0, rng(3));
  assert.equal(none, x, 'shift 0 changes nothing');
});

test('masks of a pruned CNN stay zero through training; filter-pruned shapes train', () => {
  const data = sliceRows(mnistTrain(), 0, 64);
  const base = mobileNetMini({ seed: 2 });
  const masked = pruneGraph(base, { sparsity: 0.5 });
  const { model } = train(masked, data, { epochs: 1, batchSize: 32, optimizer: 'adam', seed: 1 });
  for (const [name, t] of Object.entries(model.tensors)) {
    if (!t.mask) continue;
    t.mask.forEach((k, i) => k || assert.is(t.data![i], 0, `${name}[${i}]`));
  }
  const filters = pruneGraph(base, { sparsity: 0.25, mode: 'filters' });
  const tuned = train(filters, data, { epochs: 1, batchSize: 32, seed: 1 }).model;
  for (const name of Object.keys(filters.tensors)) assert.equal(tuned.tensors[name].shape, filters.tensors[name].shape, name);
});

test('trainAsync yields to the event loop between CNN batches', async () => {
  const data = sliceRows(mnistTrain(), 0, 64);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const b = new GraphBuilder('tiny', [1, 28, 28], { seed: 1 });
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(b.relu(b.conv(b.input, 4, 3, { stride: 2 })))), 10));
  let steps = 0;
  await trainAsync(g, data, { epochs: 1, batchSize: 8, onStep: () => steps++ });
  clearInterval(timer);
  assert.is(steps, 8);
  assert.ok(ticks >= 4, `timers ran ${ticks} times during 8 batches`);
});

test('distillation with a CNN teacher into a CNN student and into an MLP student', () => {
  const data = sliceRows(mnistTrain(), 0, 500);
  const test = sliceRows(mnistTest(), 0, 300);
  const b = new GraphBuilder('student-cnn', [1, 28, 28], { seed: 3 });
  const cnn = b.build(b.dense(b.flatten(b.maxPool(b.relu(b.conv(b.input, 6, 3, { stride: 2, pad: 1, bias: true })), 2)), 10));
  for (const student of [cnn, mlp([784, 32, 10], { seed: 1 })]) {
    const { model } = distill({ teacher: defaultCnn(), student, data, epochs: 1, batchSize: 32, lr: 0.05, seed: 1 });
    const acc = evaluateModel(model, test).accuracy;
    assert.ok(acc > 0.5, `${student.name}: ${acc}`); // chance is 0.1; one epoch of 500 rows
  }
  throwsCode(() => distill({ teacher: defaultCnn(), student: mlp([784, 8, 7]), data, epochs: 1 }), 'E_SHAPE', /outputs/);
});

test('untrainable graphs and bad options are refused with EdgeOptErrors', () => {
  const b = new GraphBuilder('lrn', [3, 8, 8], { seed: 1 });
  const lrn = b.build(b.op('LRN', [b.conv(b.input, 3, 1)], { size: 3 })[0]);
  throwsCode(() => Network.fromGraph(lrn), 'E_UNSUPPORTED_OP', /LRN/);
  const data = sliceRows(mnistTrain(), 0, 32);
  const g = mobileNetMini({ seed: 1 });
  throwsCode(() => train(g, data, { epochs: 1, schedule: { kind: 'step', every: 0 } }), 'E_ARGUMENT', /every/);
  throwsCode(() => train(g, data, { epochs: 1, schedule: { kind: 'linear' } as never }), 'E_ARGUMENT', /kind/);
  throwsCode(() => train(g, data, { epochs: 1, augment: { shift: 9 } }), 'E_ARGUMENT', /shift/);
  const flat = new GraphBuilder('flat', [784], { seed: 1 });
  const mlpLike = flat.build(flat.op('Tanh', [flat.dense(flat.input, 10)])[0]);
  throwsCode(() => train(mlpLike, data, { epochs: 1, augment: { shift: 1 } }), 'E_ARGUMENT', /image input/);
  const wrongRows = { ...data, data: data.data.subarray(0, 32 * 100), shape: [32, 100] };
  throwsCode(() => train(g, wrongRows, { epochs: 1 }), 'E_SHAPE');
});

test.run();
