/** Training: backprop for Dense/ReLU chains, losses, optimizers, seeded init. */
export { Network, type Param, type ForwardCache } from './network';
export {
  train,
  trainAsync,
  trainSteps,
  runSteps,
  type TrainOptions,
  type TrainResult,
  type EpochStats,
  type StepInfo,
  type Batch,
  type LossFn,
} from './trainer';
export { sgd, adam, type Optimizer, type SgdOptions, type AdamOptions } from './optim';
export { softmaxCrossEntropy, meanSquaredError, distillationLoss, softmaxRows, oneHot, type LossResult } from './loss';
export { mlp, type MlpOptions } from './init';
export { seededRandom, shuffledIndices } from './random';
