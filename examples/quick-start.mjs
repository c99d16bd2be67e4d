import { EdgeInferenceEngine, EdgeModelOptimizer, quantize, prune, saveModel, defaultModel, mnistTest, backendInfo } from 'edgeopt';

const model = defaultModel(); // the bundled PyTorch-trained MNIST MLP; or loadModel('model.eom' | 'model.onnx'), or a seed object
const { model: small, report } = await new EdgeModelOptimizer()
  .addOptimization('prune', prune({ sparsity: 0.5 }))
  .addOptimization('int8', quantize({ bits: 8, granularity: 'channel' }))
  .optimize(model, { evaluation: mnistTest() }); // bytes and accuracy before/after each pass
console.log(
  `${report.bytesBefore} -> ${report.bytesAfter} bytes, top-1 ${report.accuracyBefore} -> ${report.passes.at(-1).after.accuracy}`,
);
saveModel(small, 'mnist-int8.eom');

const engine = new EdgeInferenceEngine(); // device: 'auto' | 'npu' | 'cpu' | 'ts'
await engine.loadModel('mnist', 'mnist-int8.eom');
const digits = mnistTest();
const { data, shape } = await engine.infer('mnist', { data: digits.data.subarray(0, 4 * 784), shape: [4, 784] });
console.log('logits', shape, 'first row', Array.from(data.subarray(0, 10), (v) => v.toFixed(2)).join(' '));
console.log(engine.placement('mnist')); // [{ node: 'fc1', op: 'QDense', backend: 'native', kernel: 'dense-avx2' }, ...]
console.log(backendInfo()); // { native, reason?, isa, kernel, kernels, unavailable, notes }
