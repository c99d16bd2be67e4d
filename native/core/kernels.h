// The kernel table: every hot loop of the engine behind one struct of function
// pointers, filled once per process for the best ISA the CPU (and OS) offers.
//
// Numerics contract (ARCHITECTURE.md): every table produces bit-identical int32
// accumulators; float epilogues use the same operation order (no FMA
// contraction, true division) so they match the scalar reference exactly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeopt {

struct KernelTable;

// Int8 weights W[n][k] (output-channel major, like PyTorch's Linear), packed once
// into the layout of the table that packed them.
struct PackedS8 {
  int n = 0, k = 0;
  std::vector<int8_t> data;       // layout owned by `packer`
  int layout = 0;                 // which of the packer's layouts `data` is in
  std::vector<int32_t> col_sums;  // sum_k W[n][k], for the activation zero-point correction
  // Weights the layout leaves out because its instructions could not multiply
  // them exactly, CSR per output channel (n + 1 offsets, or empty): the GEMM
  // adds A x these to the packed product. Only AVX2's vpmaddubsw layout uses it.
  std::vector<int32_t> spill_begin;
  std::vector<int32_t> spill_k;
  std::vector<int8_t> spill_w;
  const KernelTable* packer = nullptr;
};

// Float weights W[n][k], packed once.
struct PackedF32 {
  int n = 0, k = 0;
  std::vector<float> data;
  const KernelTable* packer = nullptr;
};

// C[m][n] = sum_k (A[m][k] - a_zero_point[m]) * W[n][k]  for n in [n_begin, n_end).
struct GemmU8S8Args {
  const uint8_t* a;  // m x k, row stride lda
  size_t lda;
  const int32_t* a_zero_point;  // one per row
  int m;
  const PackedS8* w;
  int32_t* c;  // m x w->n, row stride ldc
  size_t ldc;
  int n_begin, n_end;
};

// Y[m][n] = sum_k X[m][k] * W[n][k]  for n in [n_begin, n_end).
struct GemmF32Args {
  const float* x;  // m x k, row stride ldx
  size_t ldx;
  int m;
  const PackedF32* w;
  float* y;  // m x w->n, row stride ldy
  size_t ldy;
  int n_begin, n_end;
};

// Y[m][n] = relu?( float(C[m][n]) * (a_scale[m] * w_scale[n]) + bias[n] )
// w_scale has n entries (per channel) or 1 (per tensor, w_scale_stride 0); bias may be null.
struct EpilogueArgs {
  const int32_t* c;
  size_t ldc;
  int m, n;
  const float* a_scale;  // one per row
  const float* w_scale;
  int w_scale_stride;  // 1 per channel, 0 per tensor
  const float* bias;
  bool relu;
  float* y;
  size_t ldy;
};

// Int8 outputs of int32 accumulator rows, requantize.h's formula exactly:
//   y[r][j] = clamp(multiply_by_quantized_multiplier(c[r][j] + bias[j], {m0[j], -right[j]}) + zero_point, lo, hi)
// for multipliers without a left shift (right[j] in 0..31).
struct RequantizeS8Args {
  const int32_t* c;
  size_t ldc;
  int m, n;
  const int32_t* bias;
  const int32_t* m0;
  const int32_t* right;
  int32_t zero_point, lo, hi;
  int8_t* y;
  size_t ldy;
};

// Int8 Add or Mul of two equally shaped tensors, TFLite's formulas (binary_s8.h
// holds the element definition): Add rescales each input to a common scale
// first, Mul multiplies the zero-point-shifted inputs; both then requantize.
// Every multiplier shifts right only (right shifts in 0..31).
struct BinaryS8Args {
  const int8_t* a;
  const int8_t* b;
  int8_t* y;
  size_t n;
  bool mul;
  int32_t a_zero_point, b_zero_point;
  int32_t left_shift;                    // Add: inputs shifted left by this before rescaling
  int32_t a_m0, a_right, b_m0, b_right;  // Add: each input's rescale
  int32_t m0, right;                     // the output requantization
  int32_t zero_point, lo, hi;
};

// Int8 depthwise accumulators of a row of output pixels, exact int32:
//   acc[p][ch] = init[ch] + sum_t x[t][p * step + ch] * w[t * c + ch]   (p < pixels, ch < c)
// x holds, per tap, a pointer to pixel 0's input (its c channels); the pixels
// after it read `step` bytes further on for every tap (the row's stride), so a
// row segment whose taps all lie inside the image takes one call. A padding
// tap points at a run of the input zero point.
struct DepthwiseS8Args {
  const int8_t* const* x;
  int64_t step;
  int pixels, taps, c;
  const int16_t* w;     // taps x c
  const int32_t* init;  // c
  int32_t* acc;         // pixels x c
  // The table's tap-pair layout of w (depthwise_pairs.h) when its
  // depthwise_pair_channels is set; null otherwise.
  const int16_t* w_pairs = nullptr;
};

// Int8: the sequence for any int8 weights; Int8Narrow: the one for weights
// whose k pairs have |w0| + |w1| <= 128 (7-bit and narrower; the same as Int8
// on tables without a separate path); Fp32: FMA.
enum class PeakKind { Int8, Int8Narrow, Fp32 };

struct SparseKernels;  // core/sparse.h

// Tables are defined by named field assignment (see scalar.cc), so a new field
// touches only the tables that fill it; unset entries stay null.
struct KernelTable {
  const char* name = nullptr;
  // Output channels per packed weight tile: the thread pool splits columns at
  // multiples of it, so no thread computes a tile another one also computes.
  int tile_n = 1;
  // The sparse kernels for this table's layers, with their crossovers measured
  // against this table's dense GEMM (core/sparse.h); null: scalar sparse
  // kernels that auto never picks (no crossover was measured).
  const SparseKernels* sparse = nullptr;
  void (*pack_s8)(const int8_t* w, int n, int k, PackedS8* out) = nullptr;
  void (*gemm_u8s8)(const GemmU8S8Args& args) = nullptr;
  void (*pack_f32)(const float* w, int n, int k, PackedF32* out) = nullptr;
  void (*gemm_f32)(const GemmF32Args& args) = nullptr;
  void (*epilogue_s32)(const EpilogueArgs& args) = nullptr;
  // gemm_u8s8 then epilogue_s32 on columns [g.n_begin, g.n_end), with the
  // epilogue applied while the sums are in registers: no int32 matrix goes
  // through memory. e.c and e.ldc are unused. Floats bit-identical to the two
  // calls. Null: the caller makes the two calls (tables without a fused path).
  void (*gemm_u8s8_dequant)(const GemmU8S8Args& g, const EpilogueArgs& e) = nullptr;
  // Static int8 outputs straight from the GEMM's blocks, no int32 matrix
  // through memory (the int8 convolutions): y[r][j] = clamp(q.zero_point + requantize(sum_k a[r][k] *
  // W[j][k] + q.bias[j]), q.lo, q.hi) for j in [g.n_begin, g.n_end), with
  // requantize_s8's formula (m0[j], right[j]); integers identical to it. The
  // sums are the uint8 rows' own: g.a_zero_point is not read, so the caller
  // folds -zero_point * col_sums[j] into bias (one zero point for all rows);
  // g.c, q.c, q.ldc, q.m and q.n are unused. Null: gemm_u8s8 then requantize_s8.
  void (*gemm_u8s8_requant)(const GemmU8S8Args& g, const RequantizeS8Args& q) = nullptr;
  // Dynamic asymmetric uint8 quantization of each row (see quantize.h for the formula).
  void (*quantize_rows_u8)(const float* x, int m, int k, uint8_t* q, float* scale, int32_t* zero_point) = nullptr;
  // y[i] += bias[i % n] over an m x n block, then ReLU if asked (the fp32 Dense epilogue).
  void (*bias_act_f32)(float* y, int m, int n, const float* bias, bool relu) = nullptr;
  void (*relu_f32)(float* x, size_t count) = nullptr;
  // Optional, a benchmark tool that inference never calls (null where a table
  // has none, e.g. in the emulated test build): register-only throughput loop
  // of this table's inner-loop arithmetic (int8: the exact dot-product
  // sequence gemm_u8s8 uses; fp32: FMA). Runs about `iterations` loop trips
  // and returns the operations done (2 per multiply-add), so ops / elapsed
  // time is the machine's peak for this table.
  uint64_t (*peak_probe)(PeakKind kind, uint64_t iterations) = nullptr;
  const struct CnnKernels* cnn = nullptr;  // the fp32 CNN kernels (cnn_kernels.h)
  // RequantizeS8Args's loop in SIMD; null: the portable loop (program_int8.cc).
  void (*requantize_s8)(const RequantizeS8Args& args) = nullptr;
  // DepthwiseS8Args's sums (every table; the scalar one defines them).
  void (*depthwise_s8)(const DepthwiseS8Args& args) = nullptr;
  // Non-zero: depthwise_s8 reads whole blocks of this many channels from
  // args.w_pairs, two taps per int16 multiply-add (depthwise_pairs.h).
  int depthwise_pair_channels = 0;
  // Static int8 quantization of x[0..n), quantize_static_s8 (static_quant.h)
  // exactly, NaN included; null: the portable loop.
  void (*quantize_static_s8)(const float* x, size_t n, float scale, int32_t zero_point, int8_t* y) = nullptr;
  // BinaryS8Args's elements in SIMD (binary_s8.h's integers); null: the
  // portable loop (program_int8.cc).
  void (*binary_s8)(const BinaryS8Args& args) = nullptr;
  // y[i] = table[x[i] + 128] for i < n (a 256-entry int8 lookup); null: the
  // portable loop.
  void (*lut_s8)(const int8_t* x, size_t n, const int8_t* table, int8_t* y) = nullptr;
};

// Tables compiled into this binary: scalar, then every entry of
// native/kernels/tables.h (the one list of SIMD tables, slowest first).
const KernelTable& scalar_kernels();
#define EDGEOPT_TABLE(name, needs) const KernelTable& name##_kernels();
#include "../kernels/tables.h"
#undef EDGEOPT_TABLE

// The table in use: chosen once, at first call, from the CPU's features, or
// forced by EDGEOPT_ISA. Throws edgeopt::Error(E_ISA) for an unknown or
// unsupported forced name.
const KernelTable& active_kernels();

// Looks a table up by name among those this CPU can run; nullptr if none.
const KernelTable* find_kernels(const std::string& name);

// Names of the tables this binary has and this CPU can run, best last.
std::vector<std::string> runnable_kernel_names();

// Every table this binary has, slowest first, with the CPU features it needs
// that this CPU lacks (empty: runnable).
struct KernelTableInfo {
  std::string name;
  std::vector<std::string> missing;
};
std::vector<KernelTableInfo> kernel_tables();

// What the choice of table should tell the user beyond the features, e.g. an
// OS that refused a feature the CPU has (empty normally).
std::vector<std::string> kernel_notes();

}  // namespace edgeopt
