/**
 * The TypeScript twin of the native CNN kernels (native/core/cnn_kernels.h):
 * the same argument semantics as the Program ops (lib/engine/program.ts), NHWC
 * images, outputs written into the caller's `y`. Float results are
 * bit-identical to the native scalar table (LRN: within one float32 ulp);
 * see each file for its contract against the SIMD tables.
 */
export { activate, activation, clampF32, expF32, sigmoidF32, tanhF32 } from './activation';
export { conv2d, type ConvShape } from './conv';
export { binary, lrn, reduceMean, softmax } from './elementwise';
export { concat, pad, split, transpose } from './layout';
export { groupNorm } from './group-norm';
export { globalPool, pool2d, type PoolShape } from './pool';
export * as int8 from './int8';
