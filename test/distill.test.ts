/** Distillation: the student learns from the teacher; alpha = 0 is exactly training on labels. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { denseGraph } from '../lib/model/build';
import { distill, distillation } from '../lib/optimizer/distill';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { mlp, train } from '../lib/train';
import { sameFloats, throwsCode } from './helpers';

const teacher = defaultModel();
const data = sliceRows(mnistTrain(), 0, 400);
const evaluation = sliceRows(mnistTest(), 0, 400);
const opts = { epochs: 2, batchSize: 20, lr: 0.05, seed: 3 };

test('a distilled student learns MNIST from the teacher', () => {
  const { model } = distill({ teacher, student: mlp([784, 16, 10], { seed: 1 }), data, temperature: 4, alpha: 0.9, ...opts, lr: 0.02 });
  const acc = evaluateModel(model, evaluation).accuracy;
  assert.ok(acc > 0.6, String(acc)); // 400 rows, 2 epochs: far above chance (0.1), not a quality bar
});

test('alpha = 0 gives bit for bit the student trained on hard labels with the same seed', () => {
  const student = mlp([784, 16, 10], { seed: 1 });
  const a = distill({ teacher, student, data, temperature: 4, alpha: 0, ...opts }).model;
  const b = train(student, data, opts).model;
  for (const name of ['fc1.weight', 'fc2.bias'])
    sameFloats(a.tensors[name].data as Float32Array, b.tensors[name].data as Float32Array, name);
});

test('a teacher ending in Softmax gives the same soft targets as its logits', () => {
  const layers = ['fc1', 'fc2'].map((n, i) => {
    const w = teacher.tensors[`${n}.weight`];
    return {
      name: n,
      weight: w.data as Float32Array,
      outFeatures: w.shape[0] as number,
      inFeatures: w.shape[1] as number,
      bias: teacher.tensors[`${n}.bias`].data as Float32Array,
      activation: i === 0 ? ('relu' as const) : ('none' as const),
    };
  });
  const withSoftmax = denseGraph('t-softmax', layers, { softmax: true });
  const small = sliceRows(data, 0, 100);
  const student = mlp([784, 8, 10], { seed: 2 });
  const a = distill({ teacher, student, data: small, alpha: 1, ...opts }).model;
  const b = distill({ teacher: withSoftmax, student, data: small, alpha: 1, ...opts }).model;
  const wa = a.tensors['fc2.weight'].data as Float32Array;
  const wb = b.tensors['fc2.weight'].data as Float32Array;
  wa.forEach((v, i) => assert.ok(Math.abs(v - wb[i]) < 1e-4, `${i}: ${v} vs ${wb[i]}`));
});

test('distillation() is a pass from teacher to student; bad options are E_ARGUMENT', async () => {
  const pass = distillation({ student: mlp([784, 8, 10]), data: sliceRows(data, 0, 100), epochs: 1 });
  const out = await pass(teacher, {});
  assert.equal(out.tensors['fc1.weight'].shape, [8, 784]);
  throwsCode(() => distill({ teacher, student: mlp([784, 8, 10]), data, epochs: 1, alpha: 2 }), 'E_ARGUMENT', /alpha/);
  throwsCode(() => distill({ teacher, student: mlp([784, 8, 10]), data, epochs: 1, temperature: 0 }), 'E_ARGUMENT', /temperature/);
  throwsCode(() => distill({ teacher, student: mlp([784, 8, 7]), data, epochs: 1 }), 'E_SHAPE', /outputs/);
});

test.run();
