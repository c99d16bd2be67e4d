import {
  EdgeInferenceEngine,
  referenceNpuPluginPath,
  quantizeGraph,
  applyStaticActivations,
  observeActivations,
  defaultModel,
  mnistTest,
  sliceRows,
} from 'edgeopt';

// NPUs need static activation scales: calibrate the int8 model on real rows.
const fp32 = defaultModel();
const model = applyStaticActivations(quantizeGraph(fp32), observeActivations(fp32, sliceRows(mnistTest(), 0, 256)));

const engine = new EdgeInferenceEngine({ device: 'npu', npuPlugin: referenceNpuPluginPath(), threads: 2 });
engine.on('fallback', (e) => console.warn('fallback', e)); // { modelId, node, from: 'npu', to: 'native', reason }
await engine.loadModel('mnist', model);
console.log(engine.placement('mnist')); // [{ node: 'fc1', op: 'QDense', backend: 'npu' }, ...]
const rows = sliceRows(mnistTest(), 0, 8);
const { data, shape } = await engine.infer('mnist', { data: rows.data, shape: [8, 784] });
console.log(`outputs ${shape}, first row ${Array.from(data.subarray(0, 10), (v) => v.toFixed(2)).join(' ')}`);
console.log(`npu: ${JSON.stringify(engine.npuStatus().plugin?.name)}`);
