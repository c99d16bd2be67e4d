// The CnnKernels table of a SIMD ISA, built from its row primitives
// (cnn_rows.h) and its depthwise and direct microkernels (cnn_conv.h) around
// the shared loop nests; concat, split, pad, transpose and LRN stay the
// scalar table's. Each ISA file instantiates it with its own constants, so
// the instantiation has internal linkage and is baseline code calling them.
#pragma once
#include "cnn_conv.h"
#include "cnn_rows.h"

namespace edgeopt {

template <const CnnRowOps& R, const DepthwiseMicrokernels& D, const DirectMicrokernel& M>
CnnKernels simd_cnn_table(const char* name, int direct_max_k) {
  struct Entries {
    static void bias_act(float* y, size_t ldy, int64_t rows, int n, const float* bias, const Activation& act) {
      bias_act_f32_rows(R, y, ldy, rows, n, bias, act);
    }
    static void conv(const ConvF32Args& a) {
      if (a.w->method == ConvMethod::Direct) return conv_direct_f32(M, a);
      conv_gemm_f32(bias_act, a);
    }
    static void depthwise(const ConvF32Args& a) { depthwise_f32_rows(D, a); }
    static void maxpool(const PoolF32Args& a) { pool_f32_rows(R, PoolKind::Max, a); }
    static void avgpool(const PoolF32Args& a) { pool_f32_rows(R, PoolKind::Average, a); }
    static void global_avgpool(const GlobalPoolF32Args& a) { global_pool_f32_rows(R, PoolKind::Average, a); }
    static void global_maxpool(const GlobalPoolF32Args& a) { global_pool_f32_rows(R, PoolKind::Max, a); }
    static void binary(const BinaryF32Args& a) { binary_f32_rows(R, a); }
    static void softmax(const AxisF32Args& a) { softmax_f32_rows(R, a); }
    static void reduce_mean(const AxisF32Args& a) { reduce_mean_f32_rows(R, a); }
  };
  CnnKernels t = scalar_cnn_kernels();
  t.name = name;
  t.conv_f32 = Entries::conv;
  t.depthwise_f32 = Entries::depthwise;
  t.maxpool_f32 = Entries::maxpool;
  t.avgpool_f32 = Entries::avgpool;
  t.global_avgpool_f32 = Entries::global_avgpool;
  t.global_maxpool_f32 = Entries::global_maxpool;
  t.binary_f32 = Entries::binary;
  t.activation_f32 = R.activation;
  t.bias_act_f32 = Entries::bias_act;
  t.softmax_f32 = Entries::softmax;
  t.reduce_mean_f32 = Entries::reduce_mean;
  t.direct_max_k = direct_max_k;
  return t;
}

}  // namespace edgeopt
