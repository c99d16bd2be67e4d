import { EdgeModelOptimizer, prune, quantize, defaultModel, mnistTrain, mnistTest, sliceRows } from 'edgeopt';

const model = defaultModel();
const calibration = sliceRows(mnistTrain(), 0, 500); // rows to calibrate static activation scales on
const evaluation = mnistTest(); // labelled rows: accuracy before and after every pass
const { model: optimized, report } = await new EdgeModelOptimizer()
  .addOptimization('prune', prune({ sparsity: 0.5, mode: 'global' })) // 'unstructured' | 'global' | '2:4' | 'neurons' | 'filters'
  .addOptimization('int8', quantize({ bits: 8, granularity: 'channel', activations: 'static' }))
  .optimize(model, { target: 'npu', calibration, evaluation }); // report.targetIssues: what will not fit

for (const pass of report.passes) {
  console.log(`${pass.name}: ${pass.bytesAfter} bytes, top-1 ${(pass.after.accuracy * 100).toFixed(2)} %`);
}
console.log('does not fit the NPU:', report.targetIssues.length ? report.targetIssues : 'nothing');
console.log(optimized.nodes.map((n) => `${n.name} ${n.op}`).join(', '));
