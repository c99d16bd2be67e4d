import { mlp, train, distill, pruneGraph, defaultModel, evaluateModel, mnistTrain, mnistTest } from 'edgeopt';

const data = mnistTrain(); // 8000 labelled digits, [8000, 784] in [0, 1]
const test = mnistTest();
const accuracy = (g) => `${(evaluateModel(g, test).accuracy * 100).toFixed(2)} %`;

// Backpropagation from a seeded init (nn.Linear's U(±1/√fan_in)).
const { model, history } = train(mlp([784, 64, 10], { seed: 1 }), data, {
  epochs: 2,
  batchSize: 32,
  optimizer: 'sgd', // or 'adam'
  lr: 0.05,
  momentum: 0.9,
  seed: 1,
  loss: 'cross-entropy', // 'mse', or (logits, batch) => ({ loss, grad })
}); // trainAsync yields to the event loop between batches
console.log(`trained: loss ${history.at(-1).loss.toFixed(3)}, test ${accuracy(model)}`);

// Pruning with fine-tuning: pruned weights stay zero; 'polynomial' is Zhu & Gupta's gradual schedule.
const sparse = pruneGraph(defaultModel(), { sparsity: 0.9, fineTune: { data, epochs: 1, lr: 0.01, schedule: 'polynomial' } });
console.log(`90 % pruned and fine-tuned: test ${accuracy(sparse)}`);

// Distillation: alpha·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 - alpha)·CE(s, y).
const { model: student } = distill({
  teacher: defaultModel(),
  student: mlp([784, 32, 10], { seed: 1 }),
  data,
  temperature: 4,
  alpha: 0.9,
  epochs: 2,
  lr: 0.05,
  seed: 1,
});
console.log(`distilled 784-32-10 student: test ${accuracy(student)}`);
