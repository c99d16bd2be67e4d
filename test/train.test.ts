/** Training: gradients against finite differences, optimizers, determinism, masks, real MNIST learning. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { pruneGraph } from '../lib/optimizer/prune';
import {
  distillationLoss,
  meanSquaredError,
  mlp,
  Network,
  restrictedCrossEntropy,
  softmaxCrossEntropy,
  train,
  trainAsync,
  type LossResult,
} from '../lib/train';
import { closeFloats, randomF32, rng, sameFloats, throwsCode } from './helpers';

const train500 = sliceRows(mnistTrain(), 0, 500);
const test500 = sliceRows(mnistTest(), 0, 500);

function batchLoss(net: Network, x: Float32Array, rows: number, labels: Int32Array): LossResult {
  return softmaxCrossEntropy(net.forward(x, rows).logits, labels, rows);
}

test('backprop through Dense + ReLU matches central finite differences', () => {
  const r = rng(7);
  const net = Network.fromGraph(mlp([6, 5, 4, 3], { seed: 3 }));
  const rows = 4;
  const x = randomF32(rows * 6, r, 2);
  const labels = Int32Array.from([0, 2, 1, 2]);
  const { logits, cache } = net.forward(x, rows);
  const grads = net.backward(cache, softmaxCrossEntropy(logits, labels, rows).grad);
  const eps = 1e-2;
  net.params.forEach((p, k) => {
    const numeric = new Float64Array(p.data.length);
    for (let i = 0; i < p.data.length; i++) {
      const v = p.data[i];
      p.data[i] = v + eps;
      const up = batchLoss(net, x, rows, labels).loss;
      p.data[i] = v - eps;
      const down = batchLoss(net, x, rows, labels).loss;
      p.data[i] = v;
      numeric[i] = (up - down) / (2 * eps);
    }
    closeFloats(grads[k], numeric, { abs: 2e-3, rel: 2e-2 }, p.name);
  });
});

test('loss gradients (cross-entropy, MSE, distillation) match finite differences on the logits', () => {
  const r = rng(11);
  const rows = 3;
  const logits = Float64Array.from(randomF32(rows * 4, r, 3));
  const teacher = Float32Array.from(randomF32(rows * 4, r, 3));
  const targets = Float32Array.from(randomF32(rows * 4, r));
  const labels = Int32Array.from([3, 0, 1]);
  const cases: Array<[string, (z: Float32Array) => LossResult]> = [
    ['cross-entropy', (z) => softmaxCrossEntropy(z, labels, rows)],
    ['mse', (z) => meanSquaredError(z, targets)],
    ['distillation T=4 alpha=0.7', (z) => distillationLoss(z, teacher, labels, rows, 4, 0.7)],
    ['restricted cross-entropy', (z) => restrictedCrossEntropy(z, labels, rows, [true, true, false, true])],
  ];
  for (const [name, fn] of cases) {
    const grad = fn(Float32Array.from(logits)).grad;
    const eps = 1e-2;
    const numeric = Array.from(logits, (_, i) => {
      const up = Float32Array.from(logits);
      const down = Float32Array.from(logits);
      up[i] += eps;
      down[i] -= eps;
      return (fn(up).loss - fn(down).loss) / (2 * eps);
    });
    closeFloats(grad, numeric, { abs: 1e-3, rel: 1e-2 }, name);
  }
});

test('restricted cross-entropy: all classes present is softmax cross-entropy; absent classes get no gradient; an absent label is E_VALUE', () => {
  const z = Float32Array.from([1, 2, 3, -1, 0.5, 4, 2, -3]);
  const labels = [2, 1];
  const full = softmaxCrossEntropy(z, labels, 2);
  const all = restrictedCrossEntropy(z, labels, 2, [true, true, true, true]);
  assert.ok(Math.abs(all.loss - full.loss) < 1e-6, `${all.loss} vs ${full.loss}`);
  closeFloats(all.grad, full.grad, { abs: 1e-7, rel: 1e-6 }, 'grad');
  const some = restrictedCrossEntropy(z, labels, 2, [false, true, true, false]);
  assert.equal([some.grad[0], some.grad[3], some.grad[4], some.grad[7]], [0, 0, 0, 0]);
  // Over classes 1 and 2 only: row 0 is a two-way softmax of logits 2 and 3.
  assert.ok(Math.abs(some.loss - (Math.log1p(Math.exp(-1)) + Math.log1p(Math.exp(2 - 4))) / 2) < 1e-6, String(some.loss));
  throwsCode(() => restrictedCrossEntropy(z, [0, 1], 2, [false, true, true, false]), 'E_VALUE', /not among the present/);
});

test('distillation loss is zero for a student equal to the teacher with alpha = 1', () => {
  const z = Float32Array.from([1, 2, 3, -1, 0, 4]);
  const { loss, grad } = distillationLoss(z, z, [0, 1], 2, 3, 1);
  assert.ok(Math.abs(loss) < 1e-6, String(loss));
  assert.ok(grad.every((g) => Math.abs(g) < 1e-7));
});

test('same seed, same data: the same weights bit for bit; another seed differs', () => {
  const opts = { epochs: 1, batchSize: 50, lr: 0.05, seed: 5 };
  const a = train(mlp([784, 16, 10], { seed: 1 }), train500, opts).model;
  const b = train(mlp([784, 16, 10], { seed: 1 }), train500, opts).model;
  const c = train(mlp([784, 16, 10], { seed: 1 }), train500, { ...opts, seed: 6 }).model;
  for (const name of ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']) {
    sameFloats(a.tensors[name].data as Float32Array, b.tensors[name].data as Float32Array, name);
  }
  assert.not.equal(Array.from(a.tensors['fc2.bias'].data!), Array.from(c.tensors['fc2.bias'].data!));
});

test('SGD and Adam both learn MNIST from a PyTorch-style init; the input graph is untouched', () => {
  const init = mlp([784, 32, 10], { seed: 2 });
  const before = Float32Array.from(init.tensors['fc1.weight'].data as Float32Array);
  const chance = evaluateModel(init, test500).accuracy;
  for (const optimizer of ['sgd', 'adam'] as const) {
    const { model, history } = train(init, train500, {
      epochs: 3,
      batchSize: 16,
      optimizer,
      lr: optimizer === 'sgd' ? 0.05 : 2e-3,
      seed: 1,
    });
    assert.ok(history[2].loss < history[0].loss, `${optimizer}: loss ${history.map((h) => h.loss)}`);
    const acc = evaluateModel(model, test500).accuracy;
    assert.ok(acc > 0.75 && acc > chance + 0.5, `${optimizer}: ${chance} -> ${acc}`);
  }
  sameFloats(init.tensors['fc1.weight'].data as Float32Array, before, 'input graph weights');
});

test('pruned weights stay exactly zero through training (SGD momentum and Adam)', () => {
  const pruned = pruneGraph(mlp([784, 16, 10], { seed: 4 }), { sparsity: 0.8 });
  for (const optimizer of ['sgd', 'adam'] as const) {
    const { model } = train(pruned, sliceRows(train500, 0, 200), { epochs: 1, batchSize: 20, optimizer, lr: 0.01, weightDecay: 1e-3 });
    for (const name of ['fc1.weight', 'fc2.weight']) {
      const t = model.tensors[name];
      assert.ok(t.mask, `${name} keeps its mask`);
      let changed = 0;
      t.mask!.forEach((keep, i) => {
        if (!keep) assert.is(t.data![i], 0, `${optimizer} ${name}[${i}]`);
        else if (t.data![i] !== pruned.tensors[name].data![i]) changed++;
      });
      assert.ok(changed > 0, 'kept weights do train');
    }
  }
});

test('trainAsync gives the same weights as train and lets timers run between batches', async () => {
  const data = sliceRows(train500, 0, 100);
  const opts = { epochs: 1, batchSize: 10, seed: 3 };
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const a = await trainAsync(mlp([784, 8, 10]), data, opts);
  clearInterval(timer);
  const b = train(mlp([784, 8, 10]), data, opts);
  sameFloats(a.model.tensors['fc1.weight'].data as Float32Array, b.model.tensors['fc1.weight'].data as Float32Array, 'fc1.weight');
  assert.ok(ticks > 0, 'the event loop ran during training');
});

test('bad inputs are EdgeOptErrors naming the problem', () => {
  const g = mlp([784, 8, 10]);
  throwsCode(
    () => train(g, { data: new Float32Array(10), shape: [2, 5], labels: new Int32Array(2) }, { epochs: 1 }),
    'E_SHAPE',
    /5 values/,
  );
  throwsCode(() => train(g, { data: train500.data, shape: train500.shape }, { epochs: 1 }), 'E_ARGUMENT', /labels/);
  throwsCode(() => train(g, train500, { epochs: 1, optimizer: 'rmsprop' as 'sgd' }), 'E_ARGUMENT', /optimizer/);
  throwsCode(() => train(g, train500, { epochs: 1, lr: -1 }), 'E_ARGUMENT', /lr/);
  throwsCode(() => mlp([784]), 'E_ARGUMENT');
  throwsCode(() => train(g, sliceRows(train500, 0, 10), { epochs: 3, lr: 1e30 }), 'E_VALUE', /loss became/);
});

test.run();
