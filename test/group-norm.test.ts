/**
 * GroupNormalization: the training op's gradients against central finite differences, the
 * engine's forward against a float64 NCHW reference written here, a trained-graph forward
 * against the engine (mobilenet-mini with `norm: 'group'`), and the refusals (ONNX export among them:
 * opset 13 has no GroupNormalization).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GraphBuilder, mobileNetMini } from '../lib/model/builder';
import type { Graph } from '../lib/model/graph';
import { encodeOnnx } from '../lib/model/onnx/export';
import { Network } from '../lib/train/network';
import { closeFloats, finiteDifferenceError, inferOnce, randomF32, rng, throwsCode } from './helpers';

/** input [3, 9, 7] -> conv 6 -> GroupNorm(groups) -> HardSwish -> conv 4 -> GAP -> Dense 3, scale and shift not identity. */
function gnGraph(groups: number, seed = 11): Graph {
  const b = new GraphBuilder('gn', [3, 9, 7], { seed });
  const conv = b.conv(b.input, 6, 3, { pad: 1 });
  const y = b.hardSwish(b.groupNorm(conv, groups));
  const g = b.build(b.dense(b.flatten(b.globalAveragePool(b.conv(y, 4, 1, { bias: true }))), 3));
  const r = rng(seed);
  for (const t of Object.values(g.tensors))
    if (t.name.startsWith('gn')) t.data = t.name.endsWith('.scale') ? randomF32(6, r, 0.5).map((v) => 1 + v) : randomF32(6, r, 0.3);
  return g;
}

for (const groups of [1, 2, 3, 6]) {
  test(`gradient check: GroupNormalization (${groups} groups of 6 channels)`, () => {
    const net = Network.fromGraph(gnGraph(groups));
    const random = rng(5);
    const batch = 3;
    const x = randomF32(batch * net.inFeatures, random);
    const r = randomF32(batch * net.outFeatures, random);
    const loss = () => net.forward(x, batch).logits.reduce((s, v, i) => s + v * r[i], 0);
    const grads = net.backward(net.forward(x, batch).cache, r);
    net.params.forEach((p, k) => {
      const rel = finiteDifferenceError(p.data, grads[k], loss, 24);
      assert.ok(rel < 1e-2, `${p.name}: relative error ${rel}`);
    });
  });
}

/** GroupNormalization of NCHW x [n, c, h, w] in float64 (ONNX opset 21). */
function reference(
  x: Float32Array,
  [n, c, h, w]: number[],
  groups: number,
  scale: Float32Array,
  bias: Float32Array,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  const size = (c / groups) * h * w;
  for (let bg = 0; bg < n * groups; bg++) {
    const part = Array.from(x.subarray(bg * size, (bg + 1) * size));
    const mean = part.reduce((s, v) => s + v, 0) / size;
    const variance = part.reduce((s, v) => s + (v - mean) ** 2, 0) / size;
    part.forEach((v, i) => {
      const ch = (bg % groups) * (c / groups) + Math.floor(i / (h * w));
      y[bg * size + i] = ((v - mean) / Math.sqrt(variance + eps)) * scale[ch] + bias[ch];
    });
  }
  return y;
}

test('GroupNormalization forward: the engine (NHWC) matches a float64 NCHW reference', () => {
  const r = rng(7);
  for (const [c, groups] of [
    [6, 3],
    [8, 8],
    [12, 1],
  ]) {
    const scale = randomF32(c, r);
    const bias = randomF32(c, r);
    const b = new GraphBuilder('gn-forward', [c, 5, 4]);
    const y = b.groupNorm(b.input, groups);
    const g = b.build(y);
    const [scaleName, biasName] = g.nodes[0].inputs.slice(1);
    g.tensors[scaleName].data = scale;
    g.tensors[biasName].data = bias;
    const shape = [2, c, 5, 4];
    // Offsets far from 0 check that the variance is taken around the mean.
    const x = randomF32(2 * c * 20, r, 3).map((v, i) => v + (i % 7) * 10);
    const want = reference(x, shape, groups, scale, bias, 1e-5);
    closeFloats(inferOnce(g, x, shape), want, { abs: 1e-4, rel: 1e-4 }, `c=${c} groups=${groups}`);
  }
});

test("mobilenet-mini with norm 'group': the engine computes what training's forward computes", () => {
  const g = mobileNetMini({ norm: 'group', seed: 3 });
  assert.ok(g.nodes.some((n) => n.op === 'GroupNormalization'));
  assert.not.ok(g.nodes.some((n) => n.op === 'BatchNormalization'));
  const x = randomF32(4 * 784, rng(2));
  const { logits } = Network.fromGraph(g).forward(x, 4, false);
  closeFloats(inferOnce(g, x, [4, 1, 28, 28]), logits, { abs: 1e-4, rel: 1e-3 }, 'logits');
});

test('GroupNormalization refuses groups that do not divide the channels (E_SHAPE) and a missing numGroups (E_FORMAT)', () => {
  const b = new GraphBuilder('gn-bad', [6, 4, 4]);
  throwsCode(() => b.groupNorm(b.input, 4), 'E_SHAPE', /numGroups 4 does not divide the 6 channels/);
  const ok = new GraphBuilder('gn-ok', [6, 4, 4]);
  const g = ok.build(ok.groupNorm(ok.input, 3));
  delete g.nodes[0].attrs.numGroups;
  throwsCode(() => Network.fromGraph(g), 'E_FORMAT', /numGroups/);
});

test('ONNX export refuses GroupNormalization (E_UNSUPPORTED_OP) instead of writing the model without it', () => {
  throwsCode(() => encodeOnnx(gnGraph(3)), 'E_UNSUPPORTED_OP', /GroupNormalization needs opset 18/);
});

test.run();
