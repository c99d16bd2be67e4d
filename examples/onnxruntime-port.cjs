// An onnxruntime-node program, ported by renaming: ort.InferenceSession.create -> EdgeInferenceEngine.create,
// new ort.Tensor('float32', data, dims) -> { data, dims }. The model is a PyTorch export shipped with the examples.
const path = require('node:path');
const { EdgeInferenceEngine, mnistTest } = require('edgeopt');

async function main() {
  const session = await EdgeInferenceEngine.create(path.join(__dirname, 'models', 'mnist-mlp-1x28x28.onnx'));
  const data = mnistTest().data.slice(0, 784); // one 28x28 digit, values in [0, 1]
  const feeds = { input: { data, dims: [1, 1, 28, 28] } }; // was { input: new ort.Tensor('float32', data, [1, 1, 28, 28]) }
  const results = await session.run(feeds);
  const { logits } = results;
  const digit = logits.data.indexOf(Math.max(...logits.data));
  console.log(session.inputNames, session.outputNames, `logits [${logits.dims}]`, `digit ${digit}`);
  await session.release();
}
main();
