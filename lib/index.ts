/** edgeopt: optimize small neural networks and run them on edge devices from Node.js. */
export { EdgeOptError, type ErrorCode } from './errors';
export { backendInfo, kernels, type BackendInfo, type Kernels } from './backends';
export * from './model';
export * from './model/onnx';
export { loadNpuPlugin, referenceNpuPluginPath, type NpuPlugin, type NpuPluginInfo, type NpuCapabilities } from './backends/npu';
export { EdgeInferenceEngine, type EngineOptions, type Placement, type FallbackEvent, type InferInput, type InferOutput, type Device } from './engine/engine';
export { EdgeModelOptimizer, type OptimizeReport, type PassReport } from './optimizer/optimizer';
export { quantize, quantizeGraph, type QuantizeOptions } from './optimizer/quantize';
export { observeActivations, applyStaticActivations, applyStaticOutputs } from './optimizer/calibrate';
export { prune, pruneGraph, type PruneOptions } from './optimizer/prune';
export { evaluateModel, argmaxRows, type Evaluation } from './optimizer/evaluate';
export type { Pass, PassContext } from './optimizer/pass';
export { parseNpy, readNpy, encodeNpy, writeNpy, type Npy } from './data/npy';
export { loadDataset, loadImageFolder, sliceRows, type Dataset } from './data/dataset';
export { defaultModel, mnistTest, mnistTrain, loadLinearStack } from './data/bundled';
export * from './train';
export * from './federated';
