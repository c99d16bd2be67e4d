// The CNN kernel table: every fp32 kernel a lowered Program (lib/engine/program.ts)
// needs besides Dense, behind one struct of function pointers per ISA, hooked
// onto KernelTable as `cnn`. The semantics are program.ts's op definitions;
// the TypeScript twin is lib/backends/ts/cnn.
//
// Layout: images are NHWC per image ([h][w][c], channels innermost) and a
// batch is `batch` such images back to back. Kernels that take a range
// (pixels, rows, channels, elements) compute exactly that part of the output,
// so the parallel drivers (parallel_cnn.h) split one image over a ThreadPool
// with results independent of the split.
//
// Numerics (tested in native/test/cnn_test.cc and test/cnn-kernels.test.ts):
// - Element-wise work (activations, binary ops, pooling, global pooling,
//   softmax, reduce-mean, pad, transpose, concat/split) is bit-identical on
//   every table and the TS twin: the same float operations in the same order,
//   no FMA, true division, and exp_f32 (activation.h) instead of libm.
// - Convolutions sum kh*kw*inC/groups products per output. The scalar table
//   (and the TS twin, bit for bit) adds them in (ky, kx, ci) order starting
//   from +0, then adds the bias, then applies the activation. SIMD tables use
//   FMA and their own order: each output is within 2 * K * 2^-24 * sum|x*w| of
//   the scalar result, times the activation's slope (at most 1.5).
// - LRN uses pow (in double, rounded to float): within 1 float ulp of the TS twin.
//
// Part 2 (int8 CNNs) adds _s8 entries next to the fp32 ones; the shape structs
// (ConvShape, PoolShape, BroadcastShape, PadShape, TransposeShape), the
// range arguments and the byte-typed data movers (concat, split, pad with the
// zero point as its value, transpose) are shared by both. The shared drivers
// (cnn_conv.h: depthwise rows/border pixels, Direct blocks) point padding taps
// at a buffer of zeros; an int8 version points them at the input zero point.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace edgeopt {

// --- Activations -------------------------------------------------------------

// program.ts `Activation`. Formulas (activation.h has the scalar definitions):
// relu x < 0 ? 0 : x; leakyrelu x < 0 ? alpha*x : x; clip clamp(x, lo, hi);
// hardsigmoid clamp(alpha*x + beta, 0, 1); hardswish x * clamp(x*(1/6) + 0.5, 0, 1);
// sigmoid 1 / (1 + exp_f32(-x)); tanh tanh_f32(x).
enum class ActKind : uint8_t { None, Relu, LeakyRelu, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh };

struct Activation {
  ActKind kind = ActKind::None;
  float alpha = 0.0f, beta = 0.0f;  // LeakyRelu: alpha; HardSigmoid: alpha, beta
  float lo = 0.0f, hi = 0.0f;       // Clip bounds (-inf / +inf for a missing one)
};

// --- Convolution ---------------------------------------------------------------

// program.ts ConvOp's geometry. Output pixel (oy, ox) reads input
// (oy*stride_h - pad_top + i*dilation_h, ox*stride_w - pad_left + j*dilation_w);
// out-of-range reads are 0. out_h/out_w must equal the usual formula.
struct ConvShape {
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kh = 1, kw = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int groups = 1;
};

// How a packed convolution runs (chosen by pack_conv_f32 from the shape):
// Pointwise: 1x1, stride 1, no padding: the NHWC input is the GEMM's A matrix
//   as it stands (rows = pixels, row stride in_c), no copy, one GEMM per group.
// Im2col: any other grouped/KxK conv: blocks of pixels are copied into
//   caller-provided scratch as patch rows ((ky, kx, ci) order, zeros for
//   padding), then the table's packed GEMM.
// Depthwise: groups == in_c == out_c: a channel-vectorized direct kernel.
// Direct: one group and a short K (at most the table's direct_max_k: stems on
//   1-3 channels, 1x1 on few channels), where a GEMM call is mostly overhead:
//   output channels in tiles of 16, pixels read in place through per-tap
//   pointers (zeros for padding), bias and clamp applied in registers.
enum class ConvMethod : uint8_t { Pointwise, Im2col, Depthwise, Direct };

// A convolution's weights packed once, at load. Immutable afterwards: any
// number of threads may run it at once (each with its own scratch).
struct PackedConvF32 {
  ConvShape shape;
  Activation act;
  ConvMethod method = ConvMethod::Im2col;
  // Pointwise/Im2col: one GEMM operand per group, W[out_c/groups][kh*kw*in_c/groups]
  // packed by the KernelTable given to pack_conv_f32.
  std::vector<PackedF32> group_weights;
  // Depthwise: [kh*kw][channel_stride] (channel_stride = in_c rounded up to
  // kDepthwiseChannelAlign), the same layout on every table.
  std::vector<float> depthwise_weights;
  int channel_stride = 0;
  // Direct: [ceil(out_c / 16)][K][16], K in (ky, kx, ci) order, zero padding;
  // the same layout on every table.
  std::vector<float> direct_weights;
  // out_c values (zeros when the op has no bias), zero-padded to a multiple of 16.
  std::vector<float> bias;
  int block_pixels = 0;  // Pointwise/Im2col: output pixels per GEMM block
};

constexpr int kDepthwiseChannelAlign = 16;
constexpr int kDirectTile = 16;

// Checks the shape (E_SHAPE on an inconsistent or absurd one) and packs the
// OHWI weights [out_c][kh][kw][in_c/groups] (program.ts ConvOp.weight). bias:
// out_c values or null. kt packs the GEMM operands (its pack_f32); its CNN
// table's direct_max_k decides when Direct is worth it.
void pack_conv_f32(const KernelTable& kt, const ConvShape& shape, const float* weight_ohwi, const float* bias,
                   const Activation& act, PackedConvF32* out);

// Floats of scratch one conv_f32 call needs (0 unless Im2col).
size_t conv_scratch_floats(const PackedConvF32& w);

struct ConvF32Args {
  const PackedConvF32* w;
  const float* x;  // batch images [in_h][in_w][in_c]
  float* y;        // batch images [out_h][out_w][out_c]; never overlaps x
  int batch;
  int64_t pixel_begin, pixel_end;  // output pixels, over batch * out_h * out_w
  int oc_begin, oc_end;            // output channels
  float* scratch;                  // conv_scratch_floats(*w) floats, own to this call
};

// --- Pooling -------------------------------------------------------------------

enum class PoolKind : uint8_t { Max, Average };

// program.ts PoolOp. Windows may extend past pad_bottom/pad_right (ceil_mode
// resolved into out_h/out_w). Max: over in-range taps. Average: sum of
// in-range taps (in (ky, kx) order from +0) divided by the number of taps
// inside [-pad_top, in_h + pad_bottom) x [-pad_left, in_w + pad_right) when
// count_include_pad, else by the number of in-range taps. Every window must
// hold at least one in-range tap (check_pool_shape).
struct PoolShape {
  int in_h = 0, in_w = 0, c = 0;
  int out_h = 0, out_w = 0;
  int kh = 1, kw = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
};

void check_pool_shape(const PoolShape& s);  // E_SHAPE

struct PoolF32Args {
  const PoolShape* shape;
  const float* x;  // batch images [in_h][in_w][c]
  float* y;        // batch images [out_h][out_w][c]
  int batch;
  int64_t row_begin, row_end;  // output rows, over batch * out_h
};

// Global pooling: y[n][ch] = mean or max over the pixels of image n; the sum
// runs over pixels in order from +0, then one true division.
struct GlobalPoolF32Args {
  const float* x;  // batch images [pixels][c]
  float* y;        // batch x [c]
  int batch;
  int64_t pixels;
  int c;
  int c_begin, c_end;  // channels (every image of the batch)
};

// --- Element-wise ----------------------------------------------------------------

constexpr int kMaxDims = 8;

enum class BinaryFn : uint8_t { Add, Sub, Mul, Div };

// program.ts BinaryOp after make_broadcast: dims merged where both operands
// allow it (a same-shape op becomes rank 1), size-1 dims dropped. Strides are
// in elements, 0 where an operand broadcasts; the output is contiguous. To run
// a batch, prepend a dim of size batch with each operand's per-image size (0
// for a constant) as its stride.
struct BroadcastShape {
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};
  int64_t b_strides[kMaxDims] = {};
};

// E_SHAPE for rank > kMaxDims after merging, or non-positive dims/negative strides.
BroadcastShape make_broadcast(int rank, const int64_t* dims, const int64_t* a_strides, const int64_t* b_strides);
int64_t broadcast_elements(const BroadcastShape& s);

// y = act(a <fn> b) over output elements [begin, end). y may be a or b when
// that operand is read at the output's own positions (contiguous, no broadcast).
struct BinaryF32Args {
  BinaryFn fn;
  const BroadcastShape* shape;
  const float* a;
  const float* b;
  float* y;
  Activation act;
  int64_t begin, end;
};

// Softmax and ReduceMean over the middle dim of [outer][axis][inner] (a batch
// is outer * batch). [begin, end) counts columns (o, i) in outer * inner.
// Softmax: m = max over the axis (x > m ? x : m from -inf), e = exp_f32(x - m),
// s = sum of e in axis order from +0, y = e / s. ReduceMean: sum in axis
// order from +0, then / axis; y is [outer][inner].
struct AxisF32Args {
  const float* x;
  float* y;
  int64_t outer, axis, inner;
  int64_t begin, end;
};

// LRN across channels (ONNX): for pixel p, channel c:
// s = sum of x[p][i]^2, i from max(0, c - (size-1)/2) to min(c_count-1, c + size/2), in order from +0;
// y = x / pow(bias + (alpha / size) * s, beta), pow evaluated in double and rounded.
struct LrnF32Args {
  const float* x;
  float* y;
  int64_t pixels;  // batch * h * w
  int c;
  int size;
  float alpha, beta, bias;
  int64_t pixel_begin, pixel_end;
};

// --- Data movement (any element size: fp32 now, int8 in part 2) ------------------

// Concat: input i viewed as [outer][sizes[i]], y as [outer][sum sizes] (sizes
// in elements; a batch is outer * batch). Split is the inverse.
struct ConcatArgs {
  int count;
  const void* const* inputs;
  const int64_t* sizes;
  void* y;
  int64_t outer;
  int elem_bytes;
  int64_t outer_begin, outer_end;
};

struct SplitArgs {
  int count;
  const void* x;
  const int64_t* sizes;
  void* const* outputs;
  int64_t outer;
  int elem_bytes;
  int64_t outer_begin, outer_end;
};

// Constant padding of a tensor of shape in_shape by begin/end per dim (dims
// whose inner dims are unpadded are merged by make_pad). For a batch, prepend
// a dim of size batch with no padding.
struct PadShape {
  int rank = 0;
  int64_t in_shape[kMaxDims] = {};
  int64_t begin[kMaxDims] = {};
  int64_t end[kMaxDims] = {};
};

PadShape make_pad(int rank, const int64_t* in_shape, const int64_t* begin, const int64_t* end);  // E_SHAPE
int64_t pad_out_dim(const PadShape& s, int d);

struct PadArgs {
  const PadShape* shape;
  const void* x;
  void* y;
  int elem_bytes;
  const void* value;           // elem_bytes bytes: the fill value
  int64_t row_begin, row_end;  // over the output's first (merged) dim
};

// y[...] = x with dims permuted: out dim i is in dim perm[i] (program.ts
// TransposeOp). make_transpose drops size-1 dims and merges dims that stay
// adjacent, so NCHW <-> NHWC becomes a 2-D transpose. For a batch, prepend a
// dim of size batch that maps to itself.
struct TransposeShape {
  int rank = 0;
  int64_t in_shape[kMaxDims] = {};
  int perm[kMaxDims] = {};
};

TransposeShape make_transpose(int rank, const int64_t* in_shape, const int* perm);  // E_SHAPE

struct TransposeArgs {
  const TransposeShape* shape;
  const void* x;
  void* y;  // never overlaps x
  int elem_bytes;
  int64_t row_begin, row_end;  // over the output's first (merged) dim
};

// --- The table ------------------------------------------------------------------

struct CnnKernels {
  const char* name;
  // ConvMethod::Pointwise and Im2col (the GEMM of the KernelTable that packed
  // the weights), and Direct.
  void (*conv_f32)(const ConvF32Args& args);
  // ConvMethod::Depthwise.
  void (*depthwise_f32)(const ConvF32Args& args);
  void (*maxpool_f32)(const PoolF32Args& args);
  void (*avgpool_f32)(const PoolF32Args& args);
  void (*global_avgpool_f32)(const GlobalPoolF32Args& args);
  void (*global_maxpool_f32)(const GlobalPoolF32Args& args);
  void (*binary_f32)(const BinaryF32Args& args);
  // y[i] = act(x[i]); y may equal x.
  void (*activation_f32)(const float* x, float* y, size_t count, const Activation& act);
  // The fp32 Conv/Dense epilogue on rows x n values with row stride ldy:
  // y = act(y + bias[j]) (bias may be null: y = act(y)).
  void (*bias_act_f32)(float* y, size_t ldy, int64_t rows, int n, const float* bias, const Activation& act);
  void (*softmax_f32)(const AxisF32Args& args);
  void (*reduce_mean_f32)(const AxisF32Args& args);
  void (*lrn_f32)(const LrnF32Args& args);
  void (*concat)(const ConcatArgs& args);
  void (*split)(const SplitArgs& args);
  void (*pad)(const PadArgs& args);
  void (*transpose)(const TransposeArgs& args);
  // pack_conv_f32 picks ConvMethod::Direct for one-group convs with
  // kh*kw*in_c at most this (0: never).
  int direct_max_k;
};

const CnnKernels& scalar_cnn_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const CnnKernels& avx2_cnn_kernels();    // avx2, avxvnni
const CnnKernels& avx512_cnn_kernels();  // avx512, avx512vnni, amx
#endif
#if defined(__aarch64__)
const CnnKernels& neon_cnn_kernels();  // neon, dotprod and i8mm tables
#endif

// Runs args.w's method with the table's conv_f32 or depthwise_f32.
void run_conv_f32(const CnnKernels& cnn, const ConvF32Args& args);

}  // namespace edgeopt
