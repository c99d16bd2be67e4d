/** Federated learning: clients that train for real, a FedAvg server over HTTP, compressed updates. */
export { FederatedLearningClient, type TrainLocalOptions, type ConnectOptions, type ClientEvent } from './client';
export { FederatedServer, type FederatedServerOptions, type FitConfig, type WaitingEvent, type CalibrationRecord } from './server';
export {
  calibrateHead,
  calibrationHead,
  classStats,
  poolStats,
  type CalibrateOptions,
  type CalibrationHead,
  type ClassStats,
} from './calibrate';
export { fedAvg, validateUpdate, validateMetrics, type ClientUpdate, type DpOptions, type UpdateLimits } from './aggregate';
export { aggregate, boundInfluence, parseAggregator, type Aggregator, type RobustOptions } from './robust';
export { parseCompression, DeltaCompressor, type Compression } from './compress';
export { readCheckpoint, type RoundRecord, type CheckpointState, type CheckpointFailure } from './checkpoint';
export { readParams, writeParams, type Tensors, type ParamSpec } from './params';
export { type EncodedTensor, type Encoding } from './codec';
export { simulate, type SimulateOptions, type SimulateResult, type SimulatedRound } from './simulate';
