/** ONNX export: files load back in edgeopt and run in onnxruntime-node (a devDependency; skipped with a note if absent). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { argmaxRows, encodeOnnx, type Graph, loadModel, loadOnnx, mnistTest, quantizeGraph, saveModel } from '../lib';
import { register } from '../lib/cli/commands/export';
import { closeFloats, FIXTURES, readF32, sameFloats, inferOnce, optionalOrt } from './helpers';

const ort = optionalOrt('the onnxruntime interop checks');

const MLP = path.join(FIXTURES, 'mlp-784-128-10');
const fp32 = () => loadOnnx(path.join(MLP, 'model.onnx'));

const infer = inferOnce;

async function ortRun(bytes: Uint8Array, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort!.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await session.run({ [session.inputNames[0]]: new ort!.Tensor('float32', x, shape) });
  return out[session.outputNames[0]].data as Float32Array;
}

test('fp32 export: Gemm + Relu; edgeopt re-imports identical weights; onnxruntime matches the reference', async () => {
  const g = fp32();
  const bytes = encodeOnnx(g);
  const back = loadOnnx(bytes);
  assert.equal(
    back.nodes.map((n) => `${n.op}:${n.attrs.activation}`),
    ['Dense:relu', 'Dense:none'],
  );
  g.nodes.forEach((n, i) =>
    sameFloats(back.tensors[back.nodes[i].inputs[1]].data as Float32Array, g.tensors[n.inputs[1]].data as Float32Array, n.name),
  );
  if (!ort) return;
  const x = readF32(path.join(MLP, 'input.bin'));
  closeFloats(await ortRun(bytes, x, [64, 784]), readF32(path.join(MLP, 'ref-output.bin')), { abs: 1e-4 }, 'onnxruntime on the export');
});

/** The int8 model and edgeopt's logits on the test split, computed once for both export formats. */
let int8: { q: Graph; mine: Float32Array; ds: ReturnType<typeof mnistTest> } | undefined;
function int8Model() {
  if (!int8) {
    const q = quantizeGraph(fp32());
    const ds = mnistTest();
    int8 = { q, ds, mine: infer(q, ds.data, ds.shape) };
  }
  return int8;
}

for (const format of ['integer', 'qdq'] as const) {
  test(`int8 round trip (${format}): import -> quantize -> export -> onnxruntime agrees with edgeopt on >= 99.5% of test rows`, async () => {
    const { q, ds, mine } = int8Model();
    const bytes = encodeOnnx(q, { int8: format });
    // Re-import gives back the same int8 layers: the same numbers bit for bit (first 100 rows).
    const back = loadOnnx(bytes);
    assert.equal(
      back.nodes.map((n) => n.op),
      ['QDense', 'QDense'],
    );
    sameFloats(infer(back, ds.data.subarray(0, 78400), [100, 784]), mine.subarray(0, 1000), `${format} re-import`);
    if (!ort) return;
    const theirs = argmaxRows(await ortRun(bytes, ds.data, ds.shape), ds.shape[0]);
    const ours = argmaxRows(mine, ds.shape[0]);
    const agree = theirs.filter((v, i) => v === ours[i]).length / ours.length;
    assert.ok(agree >= 0.995, `${format}: onnxruntime agrees on ${(agree * 100).toFixed(2)}% of rows`);
  });
}

test('pruned zeros stay zero through int8 export', () => {
  // Zero every other weight (what a 50% pruning leaves), without the cost of a pruning pass.
  const g = fp32();
  const pruned = {
    ...g,
    tensors: Object.fromEntries(
      Object.entries(g.tensors).map(([k, t]) => [
        k,
        k.endsWith('.weight') ? { ...t, data: (t.data as Float32Array).map((v, i) => (i % 2 ? 0 : v)) } : t,
      ]),
    ),
  };
  const zeros = (g: Graph) =>
    g.nodes.reduce(
      (a, n) =>
        a +
        (g.tensors[n.inputs[1]].data as ArrayLike<number>).length -
        Array.from(g.tensors[n.inputs[1]].data as ArrayLike<number>).filter(Boolean).length,
      0,
    );
  const before = zeros(pruned);
  assert.ok(before > 50000, `pruning made ${before} zeros`);
  assert.ok(zeros(loadOnnx(encodeOnnx(quantizeGraph(pruned)))) >= before);
});

test('sigmoid/tanh/relu6 Dense activations export as ONNX ops that onnxruntime runs the same', async () => {
  const g = fp32();
  const x = readF32(path.join(MLP, 'input.bin'));
  for (const act of ['sigmoid', 'tanh', 'relu6']) {
    const h = { ...g, nodes: g.nodes.map((n, i) => (i === 0 ? { ...n, attrs: { ...n.attrs, activation: act } } : n)) };
    const bytes = encodeOnnx(h);
    assert.is(loadOnnx(bytes).nodes[0].attrs.activation, act);
    if (ort) closeFloats(await ortRun(bytes, x, [64, 784]), infer(h, x, [64, 784]), { abs: 1e-4 }, act);
  }
});

test('edgeopt export <model.eom> -o <out.onnx> writes a file edgeopt and onnxruntime load', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-export-'));
  try {
    const eom = path.join(dir, 'm.eom');
    const out = path.join(dir, 'm.onnx');
    saveModel(quantizeGraph(fp32()), eom);
    const program = new Command().exitOverride();
    register(program);
    const log = console.log;
    console.log = () => {};
    try {
      await program.parseAsync(['node', 'edgeopt', 'export', eom, '-o', out]);
    } finally {
      console.log = log;
    }
    assert.equal(
      loadModel(out).nodes.map((n) => n.op),
      ['QDense', 'QDense'],
    );
    if (ort) assert.is((await ortRun(fs.readFileSync(out), new Float32Array(784), [1, 784])).length, 10);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
