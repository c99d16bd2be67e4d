/**
 * "Unseen" CNNs written as other producers write them (built here with the ONNX
 * schema, seeded weights): a BatchNormalization stem with ReLU6 as Clip,
 * a squeeze-excite gate, a basic residual block with a 1x1 downsample,
 * MaxPool/AveragePool, the Shape -> Gather -> Unsqueeze -> Concat chain before
 * a Reshape, Split/Pad/ReduceMean, two outputs; at opsets 7, 11, 13, 18 and 22
 * with IR 3..13, each op's attributes as its opset spells them. Checked against
 * onnxruntime-node within 1e-4 of the output range, and fuzzed with the CNN
 * fixtures: a mutated file gives a model or an EdgeOptError, never a crash.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EdgeOptError, loadOnnx } from '../lib';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { FIXTURES, randomF32, rng, optionalOrt } from './helpers';
import { attr, buildModel, f32, i64, node, type Obj, valueInfo } from './onnx-models';

const ort = optionalOrt('the onnxruntime comparisons');

/** A small CNN at `opset`, written the way that opset's exporters write it. */
function unseenCnn(opset: number, ir: number, width: number): Uint8Array {
  const r = rng(opset * 100 + width);
  const inits: Obj[] = [];
  const nodes: Obj[] = [];
  const w = (name: string, dims: number[], scale = 0.3) => {
    inits.push(
      f32(
        name,
        dims,
        randomF32(
          dims.reduce((a, b) => a * b, 1),
          r,
          scale,
        ),
      ),
    );
    return name;
  };
  const consts = (name: string, values: number[]) => (inits.push(i64(name, [values.length], values)), name);
  const scalar = (name: string, v: number) => (inits.push(f32(name, [], [v])), name);
  const c = width;
  // Stem: conv 3x3 + BatchNormalization + ReLU6.
  nodes.push(
    node('Conv', ['x', w('w0', [c, 3, 3, 3]), w('b0', [c], 0.1)], ['c0'], [attr('kernel_shape', [3, 3]), attr('pads', [1, 1, 1, 1])]),
  );
  const bn = ['bn_s', 'bn_b', 'bn_m', 'bn_v'];
  inits.push(
    f32(
      'bn_s',
      [c],
      Array.from({ length: c }, () => 0.8 + r() * 0.4),
    ),
  );
  inits.push(f32('bn_b', [c], randomF32(c, r, 0.1)));
  inits.push(f32('bn_m', [c], randomF32(c, r, 0.1)));
  inits.push(
    f32(
      'bn_v',
      [c],
      Array.from({ length: c }, () => 0.5 + r()),
    ),
  );
  nodes.push(node('BatchNormalization', ['c0', ...bn], ['n0'], [attr('epsilon', 1e-5, 1)]));
  if (opset < 11) nodes.push(node('Clip', ['n0'], ['a0'], [attr('min', 0, 1), attr('max', 6, 1)]));
  else nodes.push(node('Clip', ['n0', scalar('lo', 0), scalar('hi', 6)], ['a0']));
  // Squeeze-excite: GAP -> 1x1 -> ReLU -> 1x1 -> HardSigmoid -> Mul.
  nodes.push(node('GlobalAveragePool', ['a0'], ['se0']));
  nodes.push(node('Conv', ['se0', w('sw1', [c / 2, c, 1, 1]), w('sb1', [c / 2], 0.1)], ['se1']));
  nodes.push(node('Relu', ['se1'], ['se2']));
  nodes.push(node('Conv', ['se2', w('sw2', [c, c / 2, 1, 1]), w('sb2', [c], 0.1)], ['se3']));
  nodes.push(node('HardSigmoid', ['se3'], ['se4'], [attr('alpha', 0.2, 1), attr('beta', 0.5, 1)]));
  nodes.push(node('Mul', ['a0', 'se4'], ['se']));
  // Basic residual block with a strided 1x1 downsample.
  nodes.push(node('Conv', ['se', w('rw1', [2 * c, c, 3, 3])], ['r1'], [attr('strides', [2, 2]), attr('pads', [1, 1, 1, 1])]));
  nodes.push(node('Relu', ['r1'], ['r2']));
  nodes.push(node('Conv', ['r2', w('rw2', [2 * c, 2 * c, 3, 3])], ['r3'], [attr('pads', [1, 1, 1, 1])]));
  nodes.push(node('Conv', ['se', w('dw', [2 * c, c, 1, 1])], ['d'], [attr('strides', [2, 2])]));
  nodes.push(node('Add', ['r3', 'd'], ['r4']));
  nodes.push(node('Relu', ['r4'], ['r5']));
  // Split the channels, pad one half, pool both ways, concatenate.
  const half = [c, c];
  if (opset < 13) nodes.push(node('Split', ['r5'], ['s0', 's1'], [attr('axis', 1), attr('split', half)]));
  else if (opset < 18) nodes.push(node('Split', ['r5', consts('split', half)], ['s0', 's1'], [attr('axis', 1)]));
  else nodes.push(node('Split', ['r5'], ['s0', 's1'], [attr('axis', 1), attr('num_outputs', 2)]));
  const pads = [0, 0, 1, 0, 0, 0, 0, 1];
  if (opset < 11) nodes.push(node('Pad', ['s0'], ['p0'], [attr('pads', pads), attr('value', 0.25, 1)]));
  else nodes.push(node('Pad', ['s0', consts('pads', pads), scalar('pv', 0.25)], ['p0']));
  const ceil = opset >= 10 ? [attr('ceil_mode', 1)] : [];
  nodes.push(node('MaxPool', ['p0'], ['m0'], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2]), ...ceil]));
  nodes.push(
    node(
      'AveragePool',
      ['s1'],
      ['m1'],
      [attr('kernel_shape', [3, 3]), attr('strides', [2, 2]), attr('pads', [1, 1, 1, 1]), attr('count_include_pad', 1), ...ceil],
    ),
  );
  nodes.push(node('Concat', ['m0', 'm1'], ['cat'], [attr('axis', 1)]));
  // A second output: the spatial mean (ReduceMean's axes moved to an input at 18).
  if (opset < 18) nodes.push(node('ReduceMean', ['cat'], ['mean'], [attr('axes', [2, 3]), attr('keepdims', 0)]));
  else nodes.push(node('ReduceMean', ['cat', consts('axes', [2, 3])], ['mean'], [attr('keepdims', 0)]));
  // Flatten through the exporters' shape chain, then the classifier.
  nodes.push(node('Shape', ['cat'], ['shape']));
  inits.push(i64('zero', [], [0]));
  nodes.push(node('Gather', ['shape', 'zero'], ['batch0'], [attr('axis', 0)]));
  if (opset < 13) nodes.push(node('Unsqueeze', ['batch0'], ['batch'], [attr('axes', [0])]));
  else nodes.push(node('Unsqueeze', ['batch0', consts('uaxes', [0])], ['batch']));
  nodes.push(node('Concat', ['batch', consts('minus1', [-1])], ['target'], [attr('axis', 0)]));
  nodes.push(node('Reshape', ['cat', 'target'], ['flat']));
  const features = 2 * c * 4 * 4;
  nodes.push(node('Gemm', ['flat', w('fw', [10, features], 0.05), w('fb', [10], 0.1)], ['logits'], [attr('transB', 1)]));
  return buildModel({
    opset,
    ir,
    nodes,
    initializers: inits,
    input: { shape: ['batch', 3, 13, 13] },
    graph: { output: [valueInfo('logits', ['batch', 10]), valueInfo('mean', ['batch', 2 * c])] },
  });
}

const VARIANTS: Array<[opset: number, ir: number, width: number]> = [
  [7, 3, 4],
  [11, 6, 6],
  [13, 7, 8],
  [18, 8, 4],
  [22, 10, 6],
];

for (const [opset, ir, width] of VARIANTS) {
  test(`unseen CNN (SE gate, residual + 1x1 downsample, Split/Pad/pools/Concat, shape chain) at opset ${opset}, IR ${ir}, width ${width}: onnxruntime agrees within 1e-4 of the range`, async () => {
    const bytes = unseenCnn(opset, ir, width);
    const g = loadOnnx(bytes);
    assert.ok(!g.nodes.some((n) => n.op === 'BatchNormalization'), 'BatchNormalization folded into the stem conv');
    const e = new EdgeInferenceEngine();
    e.loadModelSync('m', g);
    const x = randomF32(3 * 3 * 13 * 13, rng(opset), 2);
    const out = e.runModelSync('m', { x: { data: x, shape: [3, 3, 13, 13] } });
    assert.equal(out.logits.shape, [3, 10]);
    assert.equal(out.mean.shape, [3, 2 * width]);
    const mem = e.memory('m');
    assert.ok(mem.arenaBytes <= 1.1 * mem.liveBytesBound, JSON.stringify(mem));
    if (!ort) return;
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    } catch (err) {
      console.log(`note: onnxruntime-node cannot load opset ${opset} / IR ${ir}: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    const ref = await session.run({ x: new ort.Tensor('float32', x, [3, 3, 13, 13]) });
    for (const name of ['logits', 'mean']) {
      const want = ref[name].data as Float32Array;
      const range = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const diff = want.reduce((m, v, i) => Math.max(m, Math.abs(v - out[name].data[i])), 0);
      assert.ok(diff <= 1e-4 * range, `opset ${opset} ${name}: ${diff} > 1e-4 x ${range}`);
    }
  });
}

test('IR 13 / opset 23 files (current onnx package) import', () => {
  const g = loadOnnx(unseenCnn(23, 13, 4));
  assert.ok(g.nodes.length > 10);
});

test('mutation fuzz on the CNN fixtures: flipped, truncated and inserted bytes only ever give a model or an EdgeOptError', () => {
  const seeds = [
    fs.readFileSync(path.join(FIXTURES, 'mobilenet-mini-1x28x28', 'model-bn.onnx')),
    fs.readFileSync(path.join(FIXTURES, 'lenet5-1x28x28', 'model.onnx')),
    unseenCnn(13, 7, 4),
    unseenCnn(18, 8, 4),
  ];
  const r = rng(20261202);
  const counts = { model: 0, error: 0 };
  for (let c = 0; c < 600; c++) {
    const base = seeds[c % seeds.length];
    let bytes = Uint8Array.from(base);
    const at = () => Math.floor((c % 3 === 0 ? r() : r() * r()) * bytes.length);
    for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
      const kind = Math.floor(r() * 3);
      if (kind === 0) bytes[at()] ^= 1 << Math.floor(r() * 8);
      else if (kind === 1) bytes = bytes.subarray(0, Math.max(at(), bytes.length - 64));
      else {
        const i = at();
        const ins = Uint8Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256));
        bytes = Uint8Array.from([...bytes.subarray(0, i), ...ins, ...bytes.subarray(i)]);
      }
    }
    try {
      const g = loadOnnx(bytes);
      // What imports must also lower and run (or refuse clearly).
      const e = new EdgeInferenceEngine();
      e.loadModelSync('m', g);
      counts.model++;
    } catch (err) {
      if (!(err instanceof EdgeOptError)) assert.unreachable(`case ${c}: ${String(err)}`);
      counts.error++;
    }
  }
  assert.ok(counts.model > 0 && counts.error > 0, `both outcomes occur: ${JSON.stringify(counts)}`);
});

test.run();
