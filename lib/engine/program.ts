/**
 * The Program: a graph lowered for execution, and the one description of a layer that
 * crosses the TS/C++ boundary. Lowering (the graph compiler) turns a Graph (ONNX-like ops,
 * NCHW semantics) into a Program: constants folded, BatchNormalization folded into the
 * Conv/Dense before it, activations fused into the op that produces their input, a physical
 * layout chosen for every tensor (NHWC for images, converted once at the model's edges),
 * axes and broadcasts resolved to physical shapes, and an arena offset for every activation
 * tensor. Every backend executes the same Program: the TS twin (lib/backends/ts) op by op,
 * the native core by parsing it ONCE in C++ (native/addon/program_spec.cc) into its own
 * structs (native/core/program.h), which the native executor and the NPU host both use.
 *
 * Batch: every activation tensor is batch-major, `[batch, ...shape]`, and no op mixes images
 * (ops that would, such as a Reshape or Softmax touching the batch axis, are refused when
 * lowering). Shapes below are PER IMAGE (batch dimension dropped). A run over `batch` images
 * gives tensor t the arena bytes [batch * t.offset, batch * (t.offset + t.bytes)), so one
 * per-image plan serves every batch size (a backend may also run a large batch in chunks).
 *
 * Every tensor is exactly one of:
 * - a constant (`data`): weights, biases, folded tensors, shared by every image (a constant
 *   never has a batch dimension of its own);
 * - a view (`alias`): another tensor's memory under another shape (Reshape, Flatten, a
 *   layout change that only moves size-1 dims); `alias` always names the root tensor;
 * - external: a program input or the root of a program output, held in the caller's buffer
 *   (no copy in or out; never written in place by another tensor);
 * - an arena tensor (`offset`, `bytes`).
 * Lowering (lib/engine/lower.ts) and the planner (lib/engine/arena.ts) build it; the engine
 * cuts it into segments per backend (lib/engine/partition.ts), each a Program of its own.
 */

export type Layout = 'plain' | 'nhwc';
export type ProgramDType = 'float32' | 'int8' | 'uint8' | 'int32';

/** Per-tensor affine quantization of an int8 activation tensor (CNN part 2): real = (q - zeroPoint) * scale. */
export interface TensorQuant {
  scale: number;
  zeroPoint: number;
}

export interface ProgramTensor {
  name: string;
  dtype: ProgramDType;
  /**
   * Physical per-image shape, row-major. 'nhwc' tensors are images: shape [H, W, C] for a
   * logical NCHW [N, C, H, W]. 'plain' tensors keep the logical shape minus the batch axis.
   * Constants: their full shape (no batch).
   */
  shape: number[];
  layout: Layout;
  /** Constants only. */
  data?: Float32Array | Int8Array | Uint8Array | Int32Array;
  /** Arena tensors only: byte offset of the per-image slot in the arena (64-byte aligned). */
  offset?: number;
  /** Activations (arena, external and views): bytes per image (elements * dtype size). */
  bytes?: number;
  /** A view: this tensor is tensor `alias`'s memory under another shape (Reshape/Flatten/Identity/Dropout). */
  alias?: number;
  quant?: TensorQuant;
}

/**
 * An activation fused into the epilogue of the op that produces a tensor (or run alone by
 * 'unary'). Formulas (ONNX): relu max(x,0); leakyrelu x<0 ? alpha*x : x; clip min(max(x,min),max)
 * (ReLU6 = clip 0..6); hardsigmoid max(0, min(1, alpha*x + beta)); hardswish x * max(0, min(1, x/6 + 1/2));
 * sigmoid 1/(1+exp(-x)); tanh.
 */
export type Activation =
  | { kind: 'none' }
  | { kind: 'relu' }
  | { kind: 'leakyrelu'; alpha: number }
  | { kind: 'clip'; min: number; max: number }
  | { kind: 'hardsigmoid'; alpha: number; beta: number }
  | { kind: 'hardswish' }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' };

export interface OpBase {
  /** The graph node this op comes from (placement, errors, profiling). */
  node: string;
}

/**
 * 2-D convolution over NHWC images, groups included (depthwise: groups == inC == outC, a
 * backend picks its depthwise kernel). x: [inH, inW, inC], y: [outH, outW, outC].
 * weight: OHWI, float32 [outC][kh][kw][inC / groups] (TFLite's layout: an im2col patch row
 * of NHWC input is (kh, kw, c) ordered, so a KxK conv is a GEMM with K = kh*kw*inC/groups).
 * Output pixel (oy, ox) reads input (oy*strideH - padTop + i*dilationH, ox*strideW - padLeft +
 * j*dilationW); out-of-range reads are 0. auto_pad, ceil modes etc. are resolved to explicit
 * pads when lowering.
 */
export interface ConvOp extends OpBase {
  op: 'conv';
  x: number;
  y: number;
  weight: number;
  bias?: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  groups: number;
  act: Activation;
}

/**
 * y[r][n] = act(sum_k x[r][k] * W[n][k] + bias[n]) for each of the `m` rows of an image: x is
 * any per-image tensor read as m x k contiguous values, y is [m][n] (plain; m = 1 for a
 * classifier head, more for a Dense over the last axis of a 3-D tensor). A run over a batch is
 * one GEMM of batch * m rows. weight float32 [n][k]. Lowering permutes the K order of the
 * weights when x is an image in NHWC read through a Flatten of NCHW (no data transpose).
 */
export interface DenseOp extends OpBase {
  op: 'dense';
  x: number;
  y: number;
  weight: number;
  bias?: number;
  m: number;
  n: number;
  k: number;
  act: Activation;
}

/**
 * The int8 Dense (graph.ts QDense, native/core/dense.cc): x is quantized per GEMM row (dynamic
 * uint8, scale and zero point from the row's min/max) or with the static `input` parameters,
 * multiplied by int8 weights with exact int32 accumulation, corrected for an asymmetric
 * weight zero point, then dequantized per channel/tensor (or summed per group of K with
 * per-group scales) plus bias, or requantized to the static `output` grid in integers.
 * Only act relu (or none) is fused; lowering emits a 'unary' op for any other.
 */
export interface QDenseOp extends OpBase {
  op: 'qdense';
  x: number;
  y: number;
  /** int8 [n][k]. */
  weight: number;
  /** float32: 1, n, or n * ceil(k / groupSize) scales. */
  scales: number;
  bias?: number;
  m: number;
  n: number;
  k: number;
  zeroPoint: number;
  groupSize: number;
  /** Static per-tensor int8 input (calibrated); absent = dynamic per-row uint8. */
  input?: TensorQuant;
  /** Static int8 output by integer requantization (TFLite); needs `input`. */
  output?: TensorQuant;
  act: Activation;
}

/**
 * Max/average pooling over NHWC: window kh x kw, strides, dilations, the declared pads;
 * ceil_mode is resolved into outH/outW, so the last window may reach past padBottom/padRight.
 * Max: over in-range taps. Average: the sum of in-range taps divided by the number of taps
 * inside [-padTop, inH + padBottom) x [-padLeft, inW + padRight) when countIncludePad (taps
 * of the ceil_mode extension never count, as onnxruntime), else by the number of in-range taps.
 */
export interface PoolOp extends OpBase {
  op: 'maxpool' | 'avgpool';
  x: number;
  y: number;
  inH: number;
  inW: number;
  c: number;
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  countIncludePad: boolean;
}

/** Global average/max pooling: x [h, w, c] nhwc -> y [1, 1, c] nhwc. */
export interface GlobalPoolOp extends OpBase {
  op: 'globalavgpool' | 'globalmaxpool';
  x: number;
  y: number;
  h: number;
  w: number;
  c: number;
}

/**
 * y = act(a <fn> b) with numpy broadcasting resolved: y has physical shape `shape` (per image);
 * each operand is addressed with element strides over those dims (0 where it broadcasts).
 * An activation operand also advances by its own per-image size between images; a constant
 * operand does not. Fast paths a backend should have: same shape; b a [C] vector over an nhwc
 * or [.., C] tensor (strides [0, .., 0, 1]); scalar. May run in place over an activation
 * operand whose strides are y's own contiguous strides (it is read where y is written).
 */
export interface BinaryOp extends OpBase {
  op: 'binary';
  fn: 'add' | 'sub' | 'mul' | 'div';
  a: number;
  b: number;
  y: number;
  shape: number[];
  aStrides: number[];
  bStrides: number[];
  act: Activation;
}

/** y = act(x) elementwise (a standalone Relu/Clip/Sigmoid/... that could not be fused). May run in place (y at x's offset). */
export interface UnaryOp extends OpBase {
  op: 'unary';
  x: number;
  y: number;
  act: Activation;
}

/** Softmax over the middle dim of x viewed as [outer][axis][inner] (max-subtracted, as ONNX opset 13+). May run in place. */
export interface SoftmaxOp extends OpBase {
  op: 'softmax';
  x: number;
  y: number;
  outer: number;
  axis: number;
  inner: number;
}

/** Concatenation: each input viewed as [outer][sizes[i]] (sizes = its axis extent * inner), y as [outer][sum sizes]. */
export interface ConcatOp extends OpBase {
  op: 'concat';
  inputs: number[];
  y: number;
  outer: number;
  sizes: number[];
}

/** The inverse of concat: x viewed as [outer][sum sizes] into outputs [outer][sizes[i]]. */
export interface SplitOp extends OpBase {
  op: 'split';
  x: number;
  outputs: number[];
  outer: number;
  sizes: number[];
}

/** Constant padding of a per-image tensor of physical shape `inShape`: `begin`/`end` per dim. */
export interface PadOp extends OpBase {
  op: 'pad';
  x: number;
  y: number;
  inShape: number[];
  begin: number[];
  end: number[];
  value: number;
}

/**
 * y = x with per-image dims permuted: y.shape[i] = inShape[perm[i]]. Also the layout
 * conversion at the model's edges (NCHW [C,H,W] -> NHWC perm [1,2,0]; back: [2,0,1]) and,
 * with the identity perm, a copy (an output that would otherwise be a view of another).
 */
export interface TransposeOp extends OpBase {
  op: 'transpose';
  x: number;
  y: number;
  inShape: number[];
  perm: number[];
}

/** Mean over the middle dim of x viewed as [outer][reduce][inner] (ReduceMean over contiguous physical axes). */
export interface ReduceMeanOp extends OpBase {
  op: 'reducemean';
  x: number;
  y: number;
  outer: number;
  reduce: number;
  inner: number;
}

/** Local response normalization across channels of an nhwc [h, w, c] tensor (ONNX LRN). */
export interface LrnOp extends OpBase {
  op: 'lrn';
  x: number;
  y: number;
  h: number;
  w: number;
  c: number;
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

/**
 * GroupNormalization of an nhwc [h, w, c] tensor (ONNX opset 21): per image, channels
 * [k * c / groups, (k + 1) * c / groups) form group k, normalized with its mean and biased
 * variance over (h, w, its channels); then y = act(x̂ * weight[ch] + bias[ch]).
 * weight and bias: float32 [c] (the per-channel scale and shift).
 */
export interface GroupNormOp extends OpBase {
  op: 'groupnorm';
  x: number;
  y: number;
  weight: number;
  bias: number;
  h: number;
  w: number;
  c: number;
  groups: number;
  epsilon: number;
  act: Activation;
}

/**
 * Int8 ops (static quantization, TFLite's scheme; lib/optimizer/quantize-cnn.ts). Int8 tensors
 * carry `quant` (real = (q - zeroPoint) * scale, per tensor). Everything that needs real
 * arithmetic is done ONCE when lowering (multipliers, int32 biases, lookup tables), so every
 * backend runs the same integers and gives bit-identical int8 outputs. Requantization is
 * TFLite's MultiplyByQuantizedMultiplier (lib/backends/ts/requantize.ts): a Q31 multiplier and
 * a shift (left when > 0, rounding right when < 0).
 */

/** Float to int8: y = clamp(round_half_even(float32(x / scale)) + zeroPoint, -128, 127), `count` values per image. */
export interface QuantizeOp extends OpBase {
  op: 'quantize';
  x: number;
  y: number;
  count: number;
  scale: number;
  zeroPoint: number;
}

/** Int8 to float: y = float32((x - zeroPoint) * scale), `count` values per image. */
export interface DequantizeOp extends OpBase {
  op: 'dequantize';
  x: number;
  y: number;
  count: number;
  scale: number;
  zeroPoint: number;
}

/**
 * Int8 convolution over NHWC images (the fields of ConvOp), groups included:
 * acc[oc] = bias[oc] + sum over in-range taps of (x - inputZeroPoint) * w (int32; padding taps add 0),
 * y = clamp(requantize(acc, multipliers[oc], shifts[oc]) + outputZeroPoint, min, max).
 * weight int8 OHWI (symmetric, zero point 0); bias, multipliers, shifts: int32 tensors [outC]. A
 * fused ReLU/ReLU6 is the clamp [min, max].
 */
export interface QConvOp extends Omit<ConvOp, 'op' | 'act' | 'bias'> {
  op: 'qconv';
  bias: number;
  multipliers: number;
  shifts: number;
  inputZeroPoint: number;
  outputZeroPoint: number;
  min: number;
  max: number;
}

/** y = table[x + 128] elementwise (`count` per image): an activation between two int8 grids, tabulated when lowering. table: int8 [256]. */
export interface QLutOp extends OpBase {
  op: 'qlut';
  x: number;
  y: number;
  count: number;
  table: number;
}

/**
 * Int8 element-wise add or multiply of two same-shape tensors (`count` per image), TFLite's formulas.
 * add: a' = requantize((a - aZeroPoint) << leftShift, aMultiplier, aShift), b' likewise,
 *      y = clamp(requantize(a' + b', multiplier, shift) + outputZeroPoint, min, max).
 * mul: y = clamp(requantize((a - aZeroPoint) * (b - bZeroPoint), multiplier, shift) + outputZeroPoint, min, max)
 *      (aMultiplier/aShift/bMultiplier/bShift/leftShift unused, 0).
 */
export interface QBinaryOp extends OpBase {
  op: 'qbinary';
  fn: 'add' | 'mul';
  a: number;
  b: number;
  y: number;
  count: number;
  aZeroPoint: number;
  bZeroPoint: number;
  outputZeroPoint: number;
  leftShift: number;
  aMultiplier: number;
  aShift: number;
  bMultiplier: number;
  bShift: number;
  multiplier: number;
  shift: number;
  min: number;
  max: number;
}

/**
 * Int8 max/average pooling (PoolOp's fields); input and output share one grid. Max: the
 * largest in-range tap (exact). Average: TFLite's rounding, sum of the in-range taps divided by
 * the divisor of PoolOp (count_include_pad rules) with halves rounded away from zero.
 */
export interface QPoolOp extends Omit<PoolOp, 'op'> {
  op: 'qmaxpool' | 'qavgpool';
}

/**
 * Int8 global average pooling, x [h, w, c] -> y [1, 1, c]:
 * y = clamp(requantize(sum (x - inputZeroPoint), multiplier, shift) + outputZeroPoint, -128, 127)
 * with multiplier/shift for inputScale / (outputScale * h * w).
 */
export interface QGlobalAvgPoolOp extends OpBase {
  op: 'qglobalavgpool';
  x: number;
  y: number;
  h: number;
  w: number;
  c: number;
  inputZeroPoint: number;
  outputZeroPoint: number;
  multiplier: number;
  shift: number;
}

/**
 * Int8 concatenation (ConcatOp's layout). Input i is copied when `rescale[i]` is false (same
 * grid as y), else y = clamp(requantize(x - zeroPoints[i], inputMultipliers[i], inputShifts[i]) + outputZeroPoint, -128, 127).
 */
export interface QConcatOp extends OpBase {
  op: 'qconcat';
  inputs: number[];
  y: number;
  outer: number;
  sizes: number[];
  rescale: boolean[];
  zeroPoints: number[];
  inputMultipliers: number[];
  inputShifts: number[];
  outputZeroPoint: number;
}

export type ProgramOp =
  | QuantizeOp
  | DequantizeOp
  | QConvOp
  | QLutOp
  | QBinaryOp
  | QPoolOp
  | QGlobalAvgPoolOp
  | QConcatOp
  | ConvOp
  | DenseOp
  | QDenseOp
  | PoolOp
  | GlobalPoolOp
  | BinaryOp
  | UnaryOp
  | SoftmaxOp
  | ConcatOp
  | SplitOp
  | PadOp
  | TransposeOp
  | ReduceMeanOp
  | LrnOp
  | GroupNormOp;

/**
 * A program input: the caller's data is read in place as `tensor` (external). For a whole
 * model it is a plain tensor of the logical per-image shape (NCHW for images) and lowering
 * emits the conversion to NHWC as the first op that reads it (a view when C or H*W is 1), so
 * layout changes happen once, at the edges; a segment's inputs are the tensors earlier
 * segments produced, in their physical layout.
 */
export interface ProgramInput {
  name: string;
  tensor: number;
  /** The logical per-image shape (NCHW for images), without batch (a segment: the physical shape). */
  shape: number[];
  /** The ONNX shape has its batch dim as N * shape[0] (Flatten with axis > 1 and the like). */
  folded?: boolean;
}

/**
 * A program output: `tensor` (or, for a view, its root) is written straight into the
 * caller's buffer. Whole models: a plain tensor of the logical per-image shape (lowering
 * converts NHWC back at the edge).
 */
export interface ProgramOutput {
  name: string;
  tensor: number;
  shape: number[];
  folded?: boolean;
}

export interface Program {
  name: string;
  tensors: ProgramTensor[];
  /** Topologically ordered. An op may write its output over an input that dies there (in place) when the planner gave both the same offset. */
  ops: ProgramOp[];
  inputs: ProgramInput[];
  outputs: ProgramOutput[];
  /**
   * Per-image arena bytes (the planned size) and the liveness lower bound: the largest sum of
   * live arena-tensor bytes at any op (an in-place pair counted once). External tensors (the
   * caller's input and output buffers) and constants are in neither.
   */
  arenaBytes: number;
  liveBytesBound: number;
  /** Graph nodes with no op of their own because another op computes them (a fused activation, a folded BatchNormalization): node -> that op's node. */
  fusedNodes?: Record<string, string>;
}
