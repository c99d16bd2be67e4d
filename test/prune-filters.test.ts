/**
 * Filter pruning: whole output channels go with every slice that carries them (BN, depthwise, the
 * next layers' inputs), tied channels (residual Add) go together, Concat-fed and output channels
 * stay, the model is physically smaller, pruning all-zero filters changes no output, and the
 * refusals.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCnn, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { encodeEom } from '../lib/model';
import { GraphBuilder, mobileNetMini } from '../lib/model/builder';
import type { Graph } from '../lib/model/graph';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { pruneGraph } from '../lib/optimizer/prune';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { closeFloats, randomF32, rng, throwsCode } from './helpers';

const shapeOf = (g: Graph, name: string) => g.tensors[name].shape;

function run(g: Graph, x: Float32Array, shape: number[]): Float32Array {
  const engine = new EdgeInferenceEngine({ device: 'cpu' });
  engine.loadModelSync('m', g);
  return engine.inferSync('m', { data: x, shape }).data;
}

test('mobilenet-mini, 25 % filters: every channel space shrinks by round(0.25 C), consumers follow, .eom shrinks', () => {
  const g = defaultCnn();
  const p = pruneGraph(g, { mode: 'filters', sparsity: 0.25 });
  const conv = (name: string) => shapeOf(p, `${name}.weight`);
  assert.equal(conv('stem.stem.0.Conv'), [12, 1, 3, 3]);
  assert.equal(conv('blocks.blocks.0.expand.expand.0.Conv'), [36, 12, 1, 1]);
  assert.equal(conv('blocks.blocks.0.dw.dw.0.Conv'), [36, 1, 3, 3], 'depthwise follows its input channels');
  assert.is(p.nodes.find((n) => n.name === 'blocks.blocks.0.dw.dw.0.Conv')!.attrs.group, 36);
  assert.equal(conv('blocks.blocks.0.project.project.0.Conv'), [18, 36, 1, 1]);
  assert.equal(conv('blocks.blocks.1.project.project.0.Conv'), [18, 54, 1, 1], 'both sides of the residual Add');
  assert.equal(conv('head.head.0.Conv'), [48, 30, 1, 1]);
  assert.equal(shapeOf(p, 'fc.Gemm.weight'), [10, 48], 'logits keep their 10 classes; the Dense input follows the head');
  assert.equal(shapeOf(p, 'fc.Gemm.bias'), [10]);
  assert.ok(encodeEom(p).length < 0.7 * encodeEom(g).length, `${encodeEom(p).length} vs ${encodeEom(g).length} bytes`);
  assert.equal(shapeOf(g, 'stem.stem.0.Conv.weight'), [16, 1, 3, 3], 'the input model is untouched');
  const acc = evaluateModel(p, sliceRows(mnistTest(), 0, 200)).accuracy;
  assert.ok(acc >= 0 && acc <= 1);
});

test('residual ties: the channels kept are the same on both sides of the Add (ranked by their summed norms)', () => {
  const b = new GraphBuilder('tie', [2, 6, 6], { seed: 4 });
  const a = b.conv(b.input, 8, 3, { pad: 1, bias: true });
  const c = b.conv(a, 8, 1, { bias: true });
  const sum = b.add(a, c);
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(b.conv(sum, 5, 1))), 3));
  // Channels 1, 4 and 6 carry tiny filters in both producers of the tie, so they are the ones to go.
  const wa = g.tensors['conv1.weight'].data as Float32Array;
  const wc = g.tensors['conv2.weight'].data as Float32Array;
  for (const ch of [1, 4, 6]) {
    wa.subarray(ch * 18, (ch + 1) * 18).forEach((_, i) => (wa[ch * 18 + i] *= 1e-3));
    wc.subarray(ch * 8, (ch + 1) * 8).forEach((_, i) => (wc[ch * 8 + i] *= 1e-3));
  }
  const p = pruneGraph(g, { mode: 'filters', sparsity: 3 / 8 });
  assert.equal(shapeOf(p, 'conv1.weight'), [5, 2, 3, 3]);
  assert.equal(shapeOf(p, 'conv2.weight'), [5, 5, 1, 1], 'conv2 reads and writes the tied space');
  assert.equal(shapeOf(p, 'conv4.weight'), [3, 5, 1, 1], 'the head conv is its own space, pruned too');
  const kept = [0, 2, 3, 5, 7];
  const pa = p.tensors['conv1.weight'].data as Float32Array;
  kept.forEach((ch, j) => assert.equal(Array.from(pa.subarray(j * 18, (j + 1) * 18)), Array.from(wa.subarray(ch * 18, (ch + 1) * 18))));
});

test('pruning all-zero filters (weights and bias) changes no output: BN, depthwise, pooling, Dense follow', () => {
  const b = new GraphBuilder('zeros', [3, 10, 10], { seed: 6 });
  let x = b.relu(b.conv(b.input, 8, 3, { pad: 1, bias: true }));
  x = b.relu6(b.conv(x, 8, 3, { groups: 8, pad: 1, bias: true }));
  x = b.maxPool(x, 2);
  const g = b.build(b.dense(b.flatten(x), 4));
  const zeroed = [1, 5];
  const w = g.tensors['conv1.weight'].data as Float32Array;
  for (const ch of zeroed) {
    w.fill(0, ch * 27, (ch + 1) * 27);
    (g.tensors['conv1.bias'].data as Float32Array)[ch] = 0;
    (g.tensors['conv3.bias'].data as Float32Array)[ch] = 0; // the depthwise conv adds nothing either
  }
  const p = pruneGraph(g, { mode: 'filters', sparsity: 0.25, norm: 'l2' });
  assert.equal(shapeOf(p, 'conv1.weight'), [6, 3, 3, 3]);
  assert.equal(shapeOf(p, 'conv3.weight'), [6, 1, 3, 3]);
  assert.equal(shapeOf(p, 'fc7.weight'), [4, 6 * 25], 'the Dense after Flatten loses 25 columns per channel');
  const input = randomF32(5 * 300, rng(2));
  closeFloats(run(p, input, [5, 3, 10, 10]), run(g, input, [5, 3, 10, 10]), { abs: 1e-5, rel: 1e-5 }, 'pruned vs original');
});

test('spaces feeding Concat, grouped convs or the model output are left alone; BN parameters are sliced', () => {
  const b = new GraphBuilder('alone', [4, 6, 6], { seed: 2 });
  const left = b.conv(b.input, 6, 1);
  const right = b.relu(b.batchNorm(b.conv(b.input, 6, 1)));
  const cat = b.concat([left, right]);
  const grouped = b.conv(cat, 6, 3, { groups: 3, pad: 1 });
  const fed = b.batchNorm(b.conv(grouped, 8, 1));
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(fed)), 3));
  const p = pruneGraph(g, { mode: 'filters', sparsity: 0.5 });
  assert.equal(shapeOf(p, 'conv1.weight'), [6, 4, 1, 1], 'Concat input');
  assert.equal(shapeOf(p, 'conv2.weight'), [6, 4, 1, 1], 'Concat input (through BN and Relu)');
  assert.equal(shapeOf(p, 'conv6.weight'), [6, 4, 3, 3], 'grouped conv output');
  assert.equal(shapeOf(p, 'conv7.weight'), [4, 6, 1, 1], 'the 1x1 conv after it is pruned');
  for (const t of ['scale', 'bias', 'mean', 'var']) assert.equal(shapeOf(p, `bn8.${t}`), [4]);
  assert.equal(shapeOf(p, 'fc11.weight'), [3, 4]);
});

test('filter pruning on an MLP removes hidden units (as mode neurons) but never the outputs', () => {
  const b = new GraphBuilder('mlp', [20], { seed: 1 });
  const g = b.build(b.dense(b.dense(b.input, 16, { activation: 'relu' }), 5));
  const p = pruneGraph(g, { mode: 'filters', sparsity: 0.25 });
  assert.equal(shapeOf(p, 'fc1.weight'), [12, 20]);
  assert.equal(shapeOf(p, 'fc1.bias'), [12]);
  assert.equal(shapeOf(p, 'fc2.weight'), [5, 12]);
});

test('masks survive filter pruning (sliced with their weights)', () => {
  const g = pruneGraph(mobileNetMini({ seed: 1 }), { sparsity: 0.5 });
  const p = pruneGraph(g, { mode: 'filters', sparsity: 0.25 });
  for (const t of Object.values(p.tensors)) if (t.mask) assert.is(t.mask.length, t.data!.length, t.name);
  assert.ok(Object.values(p.tensors).some((t) => t.mask));
});

test('filter pruning refuses bad options and quantized models', () => {
  const g = mobileNetMini({ seed: 1 });
  throwsCode(() => pruneGraph(g, { mode: 'filters', sparsity: 1 }), 'E_ARGUMENT', /sparsity/);
  throwsCode(() => pruneGraph(g, { mode: 'filters', sparsity: 0.5, norm: 'l3' as never }), 'E_ARGUMENT', /norm/);
  throwsCode(() => pruneGraph(g, { mode: 'unstructured', sparsity: 0.5, norm: 'l1' }), 'E_ARGUMENT', /norm applies/);
  const b = new GraphBuilder('mlp', [20], { seed: 1 });
  const q = quantizeGraph(b.build(b.dense(b.dense(b.input, 16, { activation: 'relu' }), 5)), { bits: 8 });
  throwsCode(() => pruneGraph(q, { mode: 'filters', sparsity: 0.25 }), 'E_ARGUMENT', /quantized/);
  throwsCode(() => pruneGraph(g, { mode: 'filters', sparsity: 0.99 }), 'E_ARGUMENT', /leaves none/);
});

test.run();
