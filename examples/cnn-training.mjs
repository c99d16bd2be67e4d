// Training a CNN: mobilenet-mini from a seeded init (BN trained with batch statistics), then the
// bundled mobilenet-mini with 25 % of its filters removed and fine-tuned. A short run on a slice of
// the digits (16 steps: far from converged, BN running statistics still near their init);
// `npm run bench -- train-cnn scratch` trains the full 5 epochs (97.2 %).
import { mobileNetMini, train, pruneGraph, defaultCnn, evaluateModel, mnistTrain, mnistTest, sliceRows } from 'edgeopt';

const data = sliceRows(mnistTrain(), 0, 1000); // images as rows of 784; the model reads [N, 1, 28, 28]
const test = mnistTest();
const accuracy = (g) => `${(evaluateModel(g, test).accuracy * 100).toFixed(2)} %`;
const { model } = train(mobileNetMini({ seed: 0 }), data, {
  epochs: 1,
  batchSize: 64,
  optimizer: 'adam',
  lr: 0.003,
  schedule: { kind: 'cosine' }, // or { kind: 'step', every: 2, gamma: 0.1 }
  augment: { shift: 2 }, // seeded random shifts of up to 2 pixels
  seed: 0,
}); // trainAsync yields to the event loop between batches
console.log(`mobilenet-mini, 1 epoch on 1000 digits: test ${accuracy(model)}`);

const pruned = pruneGraph(defaultCnn(), { mode: 'filters', sparsity: 0.25 }); // whole channels go, residual ties kept
const tuned = pruneGraph(defaultCnn(), {
  mode: 'filters',
  sparsity: 0.25,
  fineTune: { data, epochs: 1, optimizer: 'adam', lr: 0.002, lrSchedule: { kind: 'cosine' }, augment: { shift: 2 } },
});
console.log(`25 % filters: ${accuracy(pruned)} before fine-tuning, ${accuracy(tuned)} after 1 epoch`);
