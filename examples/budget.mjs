import { writeFileSync } from 'node:fs';
import { autoOptimize, paretoSvg, defaultModel, mnistTrain, mnistTest, sliceRows } from 'edgeopt';

const train = mnistTrain(); // the 8000 bundled train rows
const { model, report } = await autoOptimize(defaultModel(), {
  validation: sliceRows(train, 7000, 8000), // the budget is measured here: training data, never the test split
  maxAccuracyDrop: 0.5, // percentage points of validation top-1
  objective: 'size', // or 'latency' (measured by the engine on this machine)
  candidates: { bits: [8, 4], sparsities: [0.5, 0.6] }, // a narrower space than the default, for a quick run
  latency: false, // objective size: skip timing
  fineTune: { data: sliceRows(train, 0, 7000), epochs: 1 }, // optional: train pruned models before verifying them
  test: mnistTest(), // optional: evaluated after the search, for the report only
  seed: 1,
  onProgress: ({ phase, done, total }) => process.stderr.write(`\r${phase} ${done}/${total}   `), // e.g. a progress bar
});
for (const [name, m] of [
  ['best uniform', report.bestUniform],
  ['chosen', report.chosen],
]) {
  const layers = Object.entries(m.description)
    .map(([node, s]) => `${node} ${s}`)
    .join('; ');
  console.log(`${name}: ${m.bytes} bytes, validation -${m.accuracyDrop.toFixed(2)}, test -${m.testDrop.toFixed(2)} points (${layers})`);
}
writeFileSync('budget.svg', paretoSvg(report)); // the Pareto chart; report.points, report.front: the data
console.log(`${model.nodes.length} layers, ${report.gainOverUniform.toFixed(2)}x smaller than the best uniform setting`);
