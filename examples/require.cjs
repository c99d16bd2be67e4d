// CommonJS works too: require('edgeopt') gives the same API as import.
const { EdgeInferenceEngine, defaultModel, mnistTest, argmaxRows } = require('edgeopt');

async function main() {
  const engine = new EdgeInferenceEngine();
  await engine.loadModel('mnist', defaultModel());
  const digits = mnistTest();
  const { data } = await engine.infer('mnist', { data: digits.data.subarray(0, 10 * 784), shape: [10, 784] });
  console.log('predicted', Array.from(argmaxRows(data, 10)).join(' '), 'labels', Array.from(digits.labels.subarray(0, 10)).join(' '));
}
main();
