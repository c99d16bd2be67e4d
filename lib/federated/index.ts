/** Federated learning: clients that train for real, a FedAvg server over HTTP, compressed updates. */
export { FederatedLearningClient, type TrainLocalOptions, type ConnectOptions, type ClientEvent } from './client';
export { FederatedServer, type FederatedServerOptions, type FitConfig, type WaitingEvent } from './server';
export { fedAvg, validateUpdate, type ClientUpdate, type DpOptions } from './aggregate';
export { parseCompression, DeltaCompressor, type Compression } from './compress';
export { readCheckpoint, type RoundRecord, type CheckpointState } from './checkpoint';
export { readParams, writeParams, type Tensors, type ParamSpec } from './params';
export { type EncodedTensor, type Encoding } from './codec';
export { simulate, type SimulateOptions, type SimulateResult, type SimulatedRound } from './simulate';
