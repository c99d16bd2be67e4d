/** The seed's plain object form: activation names, and errors that name what is wrong. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EdgeInferenceEngine, evaluateModel, loadModel, mnistTest, defaultModel } from '../lib';
import { throwsCode } from './helpers';

const W = [
  [1, -1],
  [2, 0.5],
  [0, 1],
];
const x = new Float32Array([1, 1, 1]); // x . W = [3, 0.5]

function out(activation: string): number[] {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', { architecture: 'one', weights: [W], biases: [[-4, 0]], activations: [activation] });
  return Array.from(e.inferSync('m', x).data);
}

test('activation names are case-insensitive: relu, sigmoid, tanh, softmax, linear/none', () => {
  const z = [-1, 0.5];
  assert.equal(out('ReLU'), [0, 0.5]);
  assert.equal(out('relu'), [0, 0.5]);
  assert.equal(out('linear'), z);
  assert.equal(out('None'), z);
  const sig = out('Sigmoid');
  z.forEach((v, i) => assert.ok(Math.abs(sig[i] - 1 / (1 + Math.exp(-v))) < 1e-6, `sigmoid ${i}`));
  const tanh = out('TANH');
  z.forEach((v, i) => assert.ok(Math.abs(tanh[i] - Math.tanh(v)) < 1e-6, `tanh ${i}`));
  const sm = out('softmax');
  const e = z.map(Math.exp);
  z.forEach((_, i) => assert.ok(Math.abs(sm[i] - e[i] / (e[0] + e[1])) < 1e-6, `softmax ${i}`));
});

test("'ReLU' as people write it is not dropped: the bundled MLP in seed form keeps its accuracy", () => {
  // The bundled MLP's weights in seed form, with ReLU named as people write it: 'ReLU'.
  const g = defaultModel();
  const w1 = g.tensors['fc1.weight'].data as Float32Array;
  const w2 = g.tensors['fc2.weight'].data as Float32Array;
  const toSeed = (w: Float32Array, out: number, inp: number) => ({ data: transpose(w, out, inp), shape: [inp, out] as [number, number] });
  const seed = {
    architecture: 'mnist-seed',
    weights: [toSeed(w1, 128, 784), toSeed(w2, 10, 128)],
    biases: [g.tensors['fc1.bias'].data as Float32Array, g.tensors['fc2.bias'].data as Float32Array],
    activations: ['ReLU', 'Linear'],
  };
  const test2000 = mnistTest();
  assert.is(evaluateModel(loadModel(seed), test2000).accuracy, evaluateModel(g, test2000).accuracy);
});

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

test('unknown activations are refused with E_VALUE naming the layer', () => {
  throwsCode(() => loadModel({ architecture: 'a', weights: [W], activations: ['gelu'] }), 'E_VALUE', /activations\[0\] is "gelu"/);
  throwsCode(
    () => loadModel({ architecture: 'a', weights: [W, [[1], [1]]], activations: ['relu', 7 as never] }),
    'E_VALUE',
    /activations\[1\]/,
  );
  throwsCode(
    () => loadModel({ architecture: 'a', weights: [W, [[1], [1]]], activations: ['softmax', 'relu'] }),
    'E_VALUE',
    /only supported after the last/,
  );
});

test('clear messages: architecture, transposed weights, extra entries', () => {
  throwsCode(() => loadModel({ architecture: 5 as never, weights: [W] }), 'E_ARGUMENT', /architecture must be a non-empty string/);
  // W given as [out][in] (2 x 3) with a bias of 2 outputs: the bias fits the inputs, so say "transposed".
  const wt = [
    [1, 2, 0],
    [-1, 0.5, 1],
  ];
  throwsCode(() => loadModel({ architecture: 'a', weights: [wt], biases: [[0, 0]] }), 'E_SHAPE', /transposed/);
  throwsCode(() => loadModel({ architecture: 'a', weights: [W, W] }), 'E_SHAPE', /weights\[1\] is \[3\]\[2\].*is one transposed/);
  throwsCode(
    () => loadModel({ architecture: 'a', weights: [W], activations: ['relu', 'relu'] }),
    'E_SHAPE',
    /2 activations entries for 1 weight/,
  );
  throwsCode(() => loadModel({ architecture: 'a', weights: [W], biases: [[0, 0], [1]] }), 'E_SHAPE', /2 biases entries/);
});

test.run();
