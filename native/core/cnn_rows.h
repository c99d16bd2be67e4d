// Shared by the CNN kernel tables: the loop nests of pooling, global pooling,
// binary ops, softmax, reduce-mean and the bias/activation epilogue, written
// once over a few element-wise row primitives that each table implements with
// its own vectors. A primitive does the same float operation per element on
// every table, so these kernels are bit-identical everywhere.
#pragma once
#include "activation.h"
#include "cnn_kernels.h"

namespace edgeopt {

struct CnnRowOps {
  // y[i] = x[i] > y[i] ? x[i] : y[i]
  void (*max)(float* y, const float* x, int64_t n);
  // y[i] = y[i] + x[i]
  void (*add)(float* y, const float* x, int64_t n);
  // y[i] = y[i] / d
  void (*div)(float* y, int64_t n, float d);
  // y[i] = exp_f32(x[i] - m)
  void (*exp_sub)(const float* x, float* y, int64_t n, float m);
  // y[i] = clamp(a[i*as] <fn> b[i*bs], c.lo, c.hi); strides 0 or 1 are the fast paths.
  void (*binary)(BinaryFn fn, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n,
                 ClampBounds c);
  // The table's activation_f32.
  void (*activation)(const float* x, float* y, size_t n, const Activation& act);
};

// The scalar table's primitives (cnn_scalar.cc), the definitions of the others.
const CnnRowOps& scalar_cnn_row_ops();
#if defined(__x86_64__) || defined(_M_X64)
// The AVX2 table's (cnn_avx2.cc), also the AVX-512 CNN table's.
extern const CnnRowOps kAvx2CnnRowOps;
#endif

// Dispatch for a table's vector loops, one instantiation per kind or function:
// Loop<K>::run(x, y, n, act) for activation kind K (None and Relu run as
// Clip, a clamp), Unit<F>::run(a, as, b, bs, y, n, c) for binary function F
// with operand strides 0 or 1 (other strides run the scalar definition).
template <template <ActKind> class Loop>
void activation_by_kind(const float* x, float* y, size_t n, const Activation& act) {
  switch (act.kind) {
    case ActKind::None:
    case ActKind::Relu:
    case ActKind::Clip:
      return Loop<ActKind::Clip>::run(x, y, n, act);
    case ActKind::LeakyRelu:
      return Loop<ActKind::LeakyRelu>::run(x, y, n, act);
    case ActKind::HardSigmoid:
      return Loop<ActKind::HardSigmoid>::run(x, y, n, act);
    case ActKind::HardSwish:
      return Loop<ActKind::HardSwish>::run(x, y, n, act);
    case ActKind::Sigmoid:
      return Loop<ActKind::Sigmoid>::run(x, y, n, act);
    case ActKind::Tanh:
      return Loop<ActKind::Tanh>::run(x, y, n, act);
  }
}

template <template <BinaryFn> class Unit>
void binary_by_fn(BinaryFn fn, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n,
                  ClampBounds c) {
  if ((as != 0 && as != 1) || (bs != 0 && bs != 1)) return scalar_cnn_row_ops().binary(fn, a, as, b, bs, y, n, c);
  switch (fn) {
    case BinaryFn::Add:
      return Unit<BinaryFn::Add>::run(a, as, b, bs, y, n, c);
    case BinaryFn::Sub:
      return Unit<BinaryFn::Sub>::run(a, as, b, bs, y, n, c);
    case BinaryFn::Mul:
      return Unit<BinaryFn::Mul>::run(a, as, b, bs, y, n, c);
    case BinaryFn::Div:
      return Unit<BinaryFn::Div>::run(a, as, b, bs, y, n, c);
  }
}

void pool_f32_rows(const CnnRowOps& ops, PoolKind kind, const PoolF32Args& args);
void global_pool_f32_rows(const CnnRowOps& ops, PoolKind kind, const GlobalPoolF32Args& args);
void binary_f32_rows(const CnnRowOps& ops, const BinaryF32Args& args);
void bias_act_f32_rows(const CnnRowOps& ops, float* y, size_t ldy, int64_t rows, int n, const float* bias,
                       const Activation& act);
void softmax_f32_rows(const CnnRowOps& ops, const AxisF32Args& args);
void reduce_mean_f32_rows(const CnnRowOps& ops, const AxisF32Args& args);

// Taps of a pooling/conv window along one axis: the window starts at `start`
// (output index * stride - pad) and has k taps `dilation` apart. [first,
// last] are the taps inside [0, in); padded counts the taps inside
// [-pad_begin, in + pad_end) (count_include_pad's divisor).
struct TapRange {
  int first, last, padded;
};
TapRange tap_range(int64_t start, int k, int dilation, int64_t in, int64_t pad_begin, int64_t pad_end);

}  // namespace edgeopt
