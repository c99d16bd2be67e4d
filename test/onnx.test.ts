/** ONNX import: the PyTorch fixtures against onnxruntime's outputs, op semantics on small built models, errors, fuzzing. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EdgeOptError, evaluateModel, type Graph, loadModel, loadOnnx, mnistTest } from '../lib';
import { DataType } from '../lib/model/onnx/proto';
import { closeFloats, FIXTURES, readF32, rng, sameFloats, sameInts, throwsCode, inferOnce } from './helpers';
import { type Obj, attr, buildModel, f16, f32, f32Typed, i64, i64Raw, ints, node, valueInfo } from './onnx-models';

const MLP = path.join(FIXTURES, 'mlp-784-128-10');
const FLAT = path.join(FIXTURES, 'flatten-mlp-1x28x28-64-10');
const VARIANTS: Array<[dir: string, suffix: string]> = [
  [MLP, ''],
  [MLP, '-opset17'],
  [MLP, '-matmul'],
  [FLAT, ''],
  [FLAT, '-reshape'],
];

const infer = inferOnce;

function fixture(dir: string): { accuracy: number; argmax: number[]; inputShape: number[] } {
  const f = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
  return { accuracy: f.accuracy.ort_fp32_test_accuracy, argmax: f.accuracy.expected_argmax_input_batch, inputShape: f.input_batch.shape };
}

for (const [dir, suffix] of VARIANTS) {
  const file = `model${suffix}.onnx`;
  test(`${path.basename(dir)}/${file}: loads and matches onnxruntime's reference outputs within 1e-4`, () => {
    const g = loadModel(path.join(dir, file));
    const { argmax, inputShape } = fixture(dir);
    const rows = inputShape[0];
    const x = readF32(path.join(dir, 'input.bin'));
    const shape = [rows, ...(g.inputs[0].shape.slice(1) as number[])];
    const y = infer(g, x, shape);
    closeFloats(y, readF32(path.join(dir, `ref-output${suffix}.bin`)), { abs: 1e-4 }, file);
    const dense = g.nodes.filter((n) => n.op === 'Dense');
    assert.equal(
      dense.map((n) => n.attrs.activation),
      ['relu', 'none'],
      'MatMul/Gemm + Add + Relu fused into two Dense layers',
    );
    const got = Array.from({ length: rows }, (_, r) =>
      y.subarray(r * 10, r * 10 + 10).indexOf(Math.max(...y.subarray(r * 10, r * 10 + 10))),
    );
    assert.equal(got, argmax);
  });
}

test('every variant of a model imports to bit-identical weights (found by structure: MatMul weights are named onnx::MatMul_*)', () => {
  for (const dir of [MLP, FLAT]) {
    const variants = VARIANTS.filter(([d]) => d === dir).map(([, s]) => loadOnnx(path.join(dir, `model${s}.onnx`)));
    const weights = (g: Graph) =>
      g.nodes.filter((n) => n.op === 'Dense').flatMap((n) => n.inputs.slice(1).map((t) => g.tensors[t].data as Float32Array));
    const ref = weights(variants[0]);
    for (const v of variants.slice(1)) weights(v).forEach((w, i) => sameFloats(w, ref[i], `${v.name} tensor ${i}`));
  }
});

test('test-split accuracy equals the fixture (onnxruntime) accuracy; logits within 1e-4', () => {
  const ds = mnistTest();
  for (const dir of [MLP, FLAT]) {
    const g = loadOnnx(path.join(dir, 'model.onnx'));
    const shape = [ds.shape[0], ...(g.inputs[0].shape.slice(1) as number[])];
    const ev = evaluateModel(g, { ...ds, shape });
    assert.is(ev.accuracy, fixture(dir).accuracy, path.basename(dir));
    closeFloats(ev.logits, readF32(path.join(dir, 'test-logits.bin')), { abs: 1e-4 }, `${path.basename(dir)} test logits`);
  }
});

test('an unsupported op fails with E_UNSUPPORTED_OP naming the op, the node and the supported ops', () => {
  throwsCode(
    () => loadOnnx(buildModel({ nodes: [node('Erf', ['x'], ['y'])] })),
    'E_UNSUPPORTED_OP',
    /'Erf_y' \(Erf\): op 'Erf' is not supported; supported ops: .*Conv.*Gemm.*MatMul/,
  );
});

test('loadModel detects ONNX bytes without a file name', () => {
  const g = loadModel(fs.readFileSync(path.join(MLP, 'model.onnx')));
  assert.is(g.nodes.length, 2);
  assert.match(g.metadata.source, /pytorch 1\.13.*opset 13/);
});

// --- small built models: one row-major reference per op pattern -------------------------------------------

const X = Float32Array.from([0.5, -1, 2, 0.25, -0.75, 1.5, 0, -2]); // [2, 4]
const W = Float32Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 4 - 0.5); // [3, 4] as [out, in]
const B = Float32Array.from([0.1, -0.2, 0.3]);

/** y[r][j] = f(alpha * sum_i x[r][i] * w[j][i] + beta * b[j]) for a [rows, 4] x and [3, 4] w. */
function reference(x: Float32Array, f: (v: number) => number = (v) => v, alpha = 1, beta = 1): Float32Array {
  const rows = x.length / 4;
  const y = new Float32Array(rows * 3);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let i = 0; i < 4; i++) s += x[r * 4 + i] * W[j * 4 + i];
      y[r * 3 + j] = f(alpha * s + beta * B[j]);
    }
  }
  return y;
}

const transposed = (w: Float32Array) => Float32Array.from({ length: 12 }, (_, i) => w[(i % 3) * 4 + Math.floor(i / 3)]); // [4, 3]

test('Gemm alpha/beta, transB=0, C as [1, N], typed float_data', () => {
  const bytes = buildModel({
    nodes: [node('Gemm', ['x', 'w', 'c'], ['y'], [attr('alpha', 0.5), attr('beta', 2.0, 1)])],
    initializers: [f32Typed('w', [4, 3], transposed(W)), f32Typed('c', [1, 3], B)],
  });
  closeFloats(infer(loadOnnx(bytes), X, [2, 4]), reference(X, undefined, 0.5, 2), { abs: 1e-6 }, 'gemm');
});

test('Gemm transA=1 on the input is refused: it would transpose the batch', () => {
  const bytes = buildModel({
    nodes: [node('Gemm', ['x', 'w'], ['y'], [attr('transA', 1), attr('transB', 1)])],
    initializers: [f32('w', [3, 4], W)],
  });
  throwsCode(() => loadOnnx(bytes), 'E_UNSUPPORTED_OP', /transA=1/);
});

test('Transpose of a constant + MatMul + Add + Sigmoid/Tanh/Clip fuse into one Dense with that activation', () => {
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const relu6 = (v: number) => Math.min(6, Math.max(0, v));
  // Clip cases scale weights and bias by 8 so some outputs pass 6 and the upper bound matters.
  const cases: Array<[string, (v: number) => number, Obj[], number, number]> = [
    ['Sigmoid', sigmoid, [node('Sigmoid', ['s'], ['y'])], 13, 1],
    ['Tanh', Math.tanh, [node('Tanh', ['s'], ['y'])], 13, 1],
    ['Clip (opset 13 inputs)', relu6, [node('Clip', ['s', 'lo', 'hi'], ['y'])], 13, 8],
    ['Clip (opset 9 attributes)', relu6, [node('Clip', ['s'], ['y'], [attr('min', 0, 1), attr('max', 6, 1)])], 9, 8],
  ];
  const linear = reference(X);
  for (const [what, f, tail, opset, scale] of cases) {
    const g = loadOnnx(
      buildModel({
        opset,
        nodes: [node('Transpose', ['w'], ['wt']), node('MatMul', ['x', 'wt'], ['m']), node('Add', ['b', 'm'], ['s']), ...tail],
        initializers: [
          f32(
            'w',
            [3, 4],
            W.map((v) => v * scale),
          ),
          f32(
            'b',
            [3],
            B.map((v) => v * scale),
          ),
          f32('lo', [], [0]),
          f32('hi', [], [6]),
        ],
      }),
    );
    assert.is(g.nodes.length, 1, what);
    const expected = linear.map((v) => f(v * scale));
    if (scale > 1) assert.ok(expected.some((v) => v === 6) && expected.some((v) => v === 0), `${what} exercises both bounds`);
    closeFloats(infer(g, X, [2, 4]), expected, { abs: 1e-5 }, what);
  }
});

test('batched MatMul [batch, 2, 4] x [4, 3] + Add: one block-diagonal Dense, same numbers', () => {
  const g = loadOnnx(
    buildModel({
      input: { shape: ['batch', 2, 4] },
      nodes: [node('MatMul', ['x', 'w'], ['m']), node('Add', ['m', 'b'], ['a']), node('Flatten', ['a'], ['y'])],
      initializers: [f32('w', [4, 3], transposed(W)), f32('b', [3], B)],
    }),
  );
  closeFloats(infer(g, X, [1, 2, 4]), reference(X), { abs: 1e-6 }, 'batched matmul');
});

test('fp16, int64 (typed and raw) initializers; Identity, Dropout, Constant shape, Reshape with 0 and -1', () => {
  const halfW = W.map((v) => Math.round(v * 4) / 4); // exactly representable in fp16
  const halfB = B.map((v) => Math.round(v * 8) / 8);
  const g = loadOnnx(
    buildModel({
      input: { shape: ['batch', 2, 2] },
      nodes: [
        node('Constant', [], ['shape'], [attr('value', i64Raw('', [2], [0, -1]))]),
        node('Reshape', ['x', 'shape'], ['r']),
        node('Identity', ['r'], ['i']),
        node('Reshape', ['i', 'shape2'], ['r2']), // [-1, 4]: a no-op here
        node('Gemm', ['r2', 'w', 'b'], ['g'], [attr('transB', 1)]),
        node('Dropout', ['g'], ['d', 'mask']),
        node('Relu', ['d'], ['y']),
      ],
      initializers: [f16('w', [3, 4], halfW), f16('b', [3], halfB), i64('shape2', [2], [-1, 4])],
    }),
  );
  assert.equal(
    g.nodes.map((n) => `${n.op}:${n.attrs.activation ?? ''}`),
    ['Reshape:', 'Dense:relu'],
  );
  const expect = new Float32Array(6);
  for (let r = 0; r < 2; r++)
    for (let j = 0; j < 3; j++) {
      let s = halfB[j];
      for (let i = 0; i < 4; i++) s += X[r * 4 + i] * halfW[j * 4 + i];
      expect[r * 3 + j] = Math.max(0, s);
    }
  closeFloats(infer(g, X, [2, 2, 2]), expect, { abs: 1e-6 }, 'fp16 weights');
});

test('DequantizeLinear: int8 per-channel weights import as QDense; uint8 with zero point and an int32 bias as float', () => {
  const q = Int8Array.from(W, (v) => Math.round(v * 100));
  const scale = [0.01, 0.01, 0.01];
  const g = loadOnnx(
    buildModel({
      nodes: [
        node('DequantizeLinear', ['wq', 's', 'z'], ['w'], [attr('axis', 0)]),
        node('Gemm', ['x', 'w', 'b'], ['y'], [attr('transB', 1)]),
      ],
      initializers: [
        ints('wq', [3, 4], Array.from(q), DataType.INT8, true),
        f32('s', [3], scale),
        ints('z', [3], [0, 0, 0], DataType.INT8),
        f32('b', [3], B),
      ],
    }),
  );
  assert.is(g.nodes[0].op, 'QDense');
  sameInts(g.tensors[g.nodes[0].inputs[1]].data as Int8Array, q, 'int8 weights kept');
  closeFloats(infer(g, X, [2, 4]), reference(X), { abs: 0.05 }, 'int8 weights (dynamic activation quantization)');

  const u = Uint8Array.from(W, (v) => Math.round(v * 100) + 128); // W is in steps of 0.25: exact
  const g2 = loadOnnx(
    buildModel({
      nodes: [
        node('DequantizeLinear', ['wq', 's', 'z'], ['w']),
        node('DequantizeLinear', ['bq', 'bs'], ['b']),
        node('Transpose', ['w'], ['wt']),
        node('MatMul', ['x', 'wt'], ['m']),
        node('Add', ['m', 'b'], ['y']),
      ],
      initializers: [
        ints('wq', [3, 4], Array.from(u), DataType.UINT8),
        f32('s', [], [0.01]),
        ints('z', [], [128], DataType.UINT8),
        ints(
          'bq',
          [3],
          Array.from(B, (v) => Math.round(v * 1000)),
          DataType.INT32,
          true,
        ),
        f32('bs', [], [0.001]),
      ],
    }),
  );
  assert.equal(
    g2.nodes.map((n) => n.op),
    ['Dense'],
  );
  closeFloats(infer(g2, X, [2, 4]), reference(X), { abs: 1e-5 }, 'uint8 weights with zero point, int32 bias');
});

test('Softmax: opset < 13 softmaxes the input coerced to 2-D at axis 1; opset >= 13 only its own axis', () => {
  const soft = (ops: number, shape: Array<number | string>) =>
    buildModel({ opset: ops, input: { shape }, nodes: [node('Softmax', ['x'], ['y'])] });
  // Standalone softmax models run; opset 11 normalizes each whole [2, 3] image, opset 13 each row of 3.
  const x6 = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 3);
  const softmaxOf = (v: ArrayLike<number>) => {
    const e = Array.from(v, Math.exp);
    const sum = e.reduce((a, b) => a + b);
    return e.map((x) => x / sum);
  };
  const old = loadOnnx(soft(11, ['batch', 2, 3]));
  assert.equal(
    old.nodes.map((n) => n.op),
    ['Flatten', 'Softmax', 'Reshape'],
  );
  closeFloats(infer(old, x6, [2, 2, 3]), [...softmaxOf(x6.subarray(0, 6)), ...softmaxOf(x6.subarray(6))], { abs: 1e-6 }, 'opset 11');
  const rows = [0, 3, 6, 9].flatMap((i) => softmaxOf(x6.subarray(i, i + 3)));
  closeFloats(infer(loadOnnx(soft(13, ['batch', 2, 3])), x6, [2, 2, 3]), rows, { abs: 1e-6 }, 'opset 13');
  const g = loadOnnx(
    buildModel({
      nodes: [node('Gemm', ['x', 'w'], ['g'], [attr('transB', 1)]), node('Softmax', ['g'], ['y'], [attr('axis', 1)])],
      initializers: [f32('w', [3, 4], W)],
    }),
  );
  const y = infer(g, X, [2, 4]);
  const logits = reference(X, undefined, 1, 0);
  for (let r = 0; r < 2; r++) {
    const e = Array.from(logits.subarray(r * 3, r * 3 + 3), Math.exp);
    const s = e.reduce((a, b) => a + b);
    closeFloats(
      y.subarray(r * 3, r * 3 + 3),
      e.map((v) => v / s),
      { abs: 1e-6 },
      `softmax row ${r}`,
    );
  }
});

test('refuses external data, sparse initializers, subgraphs, other domains, symbolic non-batch dims, unsupported IR/opset, bad sizes', () => {
  const gemm = [node('Gemm', ['x', 'w'], ['y'], [attr('transB', 1)])];
  const w = f32('w', [3, 4], W);
  throwsCode(
    () =>
      loadOnnx(
        buildModel({
          nodes: gemm,
          initializers: [{ name: 'w', dims: [3, 4], data_type: 1, data_location: 1, external_data: [{ key: 'location', value: 'w.bin' }] }],
        }),
      ),
    'E_FORMAT',
    /external file/,
  );
  throwsCode(
    () => loadOnnx(buildModel({ nodes: gemm, initializers: [w], graph: { sparse_initializer: [{ dims: [3, 4] }] } })),
    'E_FORMAT',
    /sparse/,
  );
  const loop = node('Loop', ['n', 'c'], ['y'], [{ name: 'body', type: 5, g: { name: 'body' } }]);
  throwsCode(() => loadOnnx(buildModel({ nodes: [loop] })), 'E_UNSUPPORTED_OP', /subgraph/);
  throwsCode(
    () => loadOnnx(buildModel({ nodes: [node('Gelu', ['x'], ['y'], [], { domain: 'com.microsoft' })] })),
    'E_UNSUPPORTED_OP',
    /domain 'com.microsoft'/,
  );
  throwsCode(
    () =>
      loadOnnx(
        buildModel({ nodes: gemm, initializers: [w], graph: { input: [valueInfo('x', ['batch', 4]), valueInfo('x2', ['batch', 'n'])] } }),
      ),
    'E_SHAPE',
    /'x2'.*only the first \(batch\) dimension may be symbolic/,
  );
  throwsCode(() => loadOnnx(buildModel({ nodes: gemm, initializers: [w], ir: 14 })), 'E_FORMAT', /IR version 14/);
  throwsCode(() => loadOnnx(buildModel({ nodes: gemm, initializers: [w], opset: 6 })), 'E_FORMAT', /opset 6/);
  throwsCode(() => loadOnnx(buildModel({ nodes: gemm, initializers: [f32('w', [3, 5], W)] })), 'E_FORMAT', /raw_data has 48 bytes/);
  throwsCode(() => loadOnnx(buildModel({ nodes: gemm, initializers: [f32('w', [1 << 20, 1 << 20], W)] })), 'E_FORMAT', /more than/);
  throwsCode(
    () => loadOnnx(buildModel({ nodes: [node('Concat', ['x', 'x'], ['y'], [attr('axis', 0)])] })),
    'E_UNSUPPORTED_OP',
    /axis 0 is the batch/,
  );
  throwsCode(() => loadOnnx(Uint8Array.from([0x08, 0x07, 0x3a, 0xff, 0xff, 0x01])), 'E_FORMAT', /not a valid ONNX protobuf/);
});

test('mutation fuzz: flipped, truncated and inserted bytes only ever give a model or an EdgeOptError', () => {
  const small = buildModel({
    nodes: [
      node('Constant', [], ['shape'], [attr('value', i64('', [2], [0, -1]))]),
      node('Reshape', ['x', 'shape'], ['r']),
      node('MatMul', ['r', 'w'], ['m']),
      node('Add', ['m', 'b'], ['a']),
      node('Relu', ['a'], ['y']),
    ],
    initializers: [f32('w', [4, 3], transposed(W)), f32('b', [3], B)],
  });
  const seeds = [small, fs.readFileSync(path.join(FLAT, 'model-reshape.onnx')), fs.readFileSync(path.join(MLP, 'model-matmul.onnx'))];
  const r = rng(20261129);
  const counts = { model: 0, error: 0 };
  for (let c = 0; c < 3000; c++) {
    // Mostly the small model (fast); every 10th case mutates a real fixture, near its header or anywhere.
    const base = c % 10 === 0 ? seeds[1 + ((c / 10) % 2)] : small;
    let bytes = Uint8Array.from(base);
    const at = () => Math.floor((c % 3 === 0 ? r() : r() * r()) * bytes.length);
    for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
      const kind = Math.floor(r() * 3);
      if (kind === 0) bytes[at()] ^= 1 << Math.floor(r() * 8);
      else if (kind === 1) bytes = bytes.subarray(0, at());
      else {
        const i = at();
        const ins = Uint8Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256));
        const grown = new Uint8Array(bytes.length + ins.length);
        grown.set(bytes.subarray(0, i));
        grown.set(ins, i);
        grown.set(bytes.subarray(i), i + ins.length);
        bytes = grown;
      }
    }
    try {
      loadOnnx(bytes);
      counts.model++;
    } catch (err) {
      if (!(err instanceof EdgeOptError)) assert.unreachable(`case ${c}: ${String(err)}`);
      counts.error++;
    }
  }
  assert.ok(counts.model > 0 && counts.error > 0, `both outcomes occur: ${JSON.stringify(counts)}`);
});

test.run();
