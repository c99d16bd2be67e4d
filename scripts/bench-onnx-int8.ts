// Which int8 ONNX export does onnxruntime-node run faster? Quantizes the fixture MLP, exports it
// as 'integer' (DynamicQuantizeLinear + MatMulInteger) and 'qdq' (DequantizeLinear weights), and
// times both in onnxruntime-node (1 thread): median of one-row calls and of whole-split calls,
// plus argmax agreement with edgeopt on the 2000-row MNIST test split.
// Run: node --import tsx scripts/bench-onnx-int8.ts
import * as ort from 'onnxruntime-node';
import { argmaxRows, encodeOnnx, evaluateModel, loadModel, mnistTest, quantizeGraph } from '../lib';

async function median(times: number, fn: () => Promise<unknown>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return t.sort((a, b) => a - b)[times >> 1];
}

async function main(): Promise<void> {
  const q = quantizeGraph(loadModel('test/fixtures/mlp-784-128-10/model.onnx'));
  const ds = mnistTest();
  const ours = evaluateModel(q, ds).predictions;
  for (const format of ['integer', 'qdq'] as const) {
    const bytes = encodeOnnx(q, { int8: format });
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const run = (data: Float32Array, shape: number[]) => s.run({ [s.inputNames[0]]: new ort.Tensor('float32', data, shape) });
    const all = await run(ds.data, ds.shape);
    const theirs = argmaxRows(all[s.outputNames[0]].data as Float32Array, ds.shape[0]);
    const agree = theirs.filter((v, i) => v === ours[i]).length / ours.length;
    const row = ds.data.subarray(0, 784);
    await median(200, () => run(row, [1, 784]));
    const one = await median(2000, () => run(row, [1, 784]));
    const batch = await median(21, () => run(ds.data, ds.shape));
    console.log(
      `${format.padEnd(8)} ${bytes.length} bytes  batch 1: ${one.toFixed(1)} us  batch 2000: ${(batch / 1e3).toFixed(2)} ms  argmax agreement ${(agree * 100).toFixed(2)} %`,
    );
  }
}
main();
