/** Training: backprop for Dense chains and CNN graphs, losses, optimizers, schedules, seeded init. */
export { Network, type Param, type ForwardCache } from './network';
export { GraphNetwork } from './graph-network';
export type { TrainOp, Forward, TrainContext } from './graph/op';
export { scheduledLr, type LrSchedule } from './schedule';
export { shiftImages, type Augmentation } from './augment';
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
export {
  softmaxCrossEntropy,
  restrictedCrossEntropy,
  meanSquaredError,
  distillationLoss,
  softmaxRows,
  oneHot,
  type LossResult,
} from './loss';
export { mlp, type MlpOptions } from './init';
export { seededRandom, shuffledIndices } from './random';
