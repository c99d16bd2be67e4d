/** edgeopt: optimize small neural networks and run them on edge devices from Node.js. */
export { EdgeOptError, AbortError, type ErrorCode } from './errors';
export { backendInfo, kernels, type BackendInfo, type Kernels, type RowQuantized, type SymmetricQuantized } from './backends';
export type { NativeProgram, SparsePolicy } from './backends/native/addon';
export * from './model';
export * from './model/onnx';
export {
  loadNpuPlugin,
  referenceNpuPluginPath,
  type NpuPlugin,
  type NpuPluginInfo,
  type NpuCapabilities,
  type NpuTimeouts,
} from './backends/npu';
export {
  EdgeInferenceEngine,
  type EngineOptions,
  type Placement,
  type FallbackEvent,
  type InferInput,
  type InferOutput,
  type Device,
  type NamedTensor,
  type ModelInfo,
  type TensorInfo,
  type MemoryReport,
  type LoadResult,
  type ModelTensorInfo,
  type ModelTensors,
  type EngineEvents,
} from './engine/engine';
export {
  InferenceSession,
  type SessionOptions,
  type SessionFeeds,
  type SessionOutputs,
  type TensorLike,
  type TensorMetadata,
  type TensorType,
  type OutputTensor,
  type RunOptions,
  type PreparedFeeds,
} from './engine/session';
export { Batcher, type BatcherOptions, type BatchEvent, type BatcherEvents, type BatchRunner } from './engine/batcher';
export type { Backend } from './engine/segments';
export { lowerGraph } from './engine/lower';
export type {
  Program,
  ProgramOp,
  ProgramTensor,
  ProgramInput,
  ProgramOutput,
  ProgramDType,
  Layout,
  TensorQuant,
  Activation as ProgramActivation,
  OpBase,
  ConvOp,
  DenseOp,
  QDenseOp,
  PoolOp,
  GlobalPoolOp,
  BinaryOp,
  UnaryOp,
  SoftmaxOp,
  ConcatOp,
  SplitOp,
  PadOp,
  TransposeOp,
  ReduceMeanOp,
  LrnOp,
  GroupNormOp,
  QuantizeOp,
  DequantizeOp,
  QConvOp,
  QLutOp,
  QBinaryOp,
  QPoolOp,
  QGlobalAvgPoolOp,
  QConcatOp,
} from './engine/program';
export { EdgeModelOptimizer, type OptimizeOptions, type OptimizeReport, type PassReport } from './optimizer/optimizer';
export { type LayerReport, type AccuracyReport } from './optimizer/report';
export { checkTarget, type Target, type TargetIssue } from './optimizer/target';
export { quantize, quantizeGraph, parseGranularity, type QuantizeOptions, type Granularity } from './optimizer/quantize';
export { observeActivations, applyStaticActivations, applyStaticOutputs, type Observer, type ActivationRange } from './optimizer/calibrate';
export { observeTensors, parseObserver, type TensorRange } from './optimizer/observe';
export { foldInputNormalization, inputNormalization, type InputNormalizationOptions } from './optimizer/input-normalization';
export { prune, pruneGraph, prunedCount, PRUNE_MODES, type PruneOptions, type PruneMode } from './optimizer/prune';
export type { FineTuneOptions } from './optimizer/fine-tune';
export type { FilterNorm } from './optimizer/prune-filters';
export { distill, distillation, type DistillOptions } from './optimizer/distill';
export type { QatOptions } from './optimizer/qat';
export {
  autoOptimize,
  type AutoOptimizeOptions,
  type AutoOptimizeReport,
  type AutoOptimizeProgress,
  type AutoFineTune,
  type ModelSummary,
} from './optimizer/auto-optimize';
export {
  analyzeSensitivity,
  type SensitivityProgress,
  type SensitivityOptions,
  type SensitivityTable,
  type SensitivityRow,
  type LayerSensitivity,
} from './optimizer/sensitivity';
export {
  LatencyTable,
  type LatencyOptions,
  type LatencyTableJSON,
  type LatencyEntry,
  type TimedItem,
  type TimingProgress,
} from './optimizer/latency';
export {
  applySettings,
  layerCandidates,
  optimizableLayers,
  settingKey,
  describeSetting,
  DEFAULT_SPACE,
  LAYER_KINDS,
  type LayerSetting,
  type LayerSettings,
  type LayerGranularity,
  type LayerPrune,
  type OptimizableLayer,
  type QuantizeLayersOptions,
  type LayerKind,
  type CandidateSpace,
} from './optimizer/layer-settings';
export { paretoFront, bestWithinBudget, type ParetoPoint, type Objective } from './optimizer/pareto';
export { paretoSvg } from './optimizer/pareto-svg';
export { polynomialSparsity, type PolynomialSchedule } from './optimizer/schedule';
export { evaluateModel, argmaxRows, type Evaluation } from './optimizer/evaluate';
export type { Pass, PassContext } from './optimizer/pass';
export { parseNpy, readNpy, encodeNpy, writeNpy, type Npy, type NpyArray } from './data/npy';
export { loadDataset, loadImageFolder, sliceRows, modelRows, type Dataset } from './data/dataset';
export { defaultModel, defaultCnn, mnistTest, mnistTrain, loadLinearStack } from './data/bundled';
export * from './train';
export * from './federated';
export { InferenceServer, type ServerOptions } from './serve/server';
