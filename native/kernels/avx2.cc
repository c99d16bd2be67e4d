// AVX2 + FMA kernel table (Haswell and later, Zen 1 and later).
//
// int8: AVX2 has no vpdpbusd, so an exact u8 x s8 dot product needs one of
// the two exact layouts of x86.h, chosen per weight matrix when it is packed:
// kPairs (both operands widened to int16, vpmaddwd) for any weights, or
// kQuads (vpmaddubsw on the bytes, then vpmaddwd by 1 to widen its int16
// pairs) for weights whose k pairs fit its saturation bound: every 7-bit or
// narrower quantization, and trained 8-bit layers whose few pairs over the
// bound go to the spill list. Quads run faster, as they need no widening
// (`npm run bench -- kernels`, the int7 rows; docs/benchmarks.md).
// fp32: FMA on tiles of 16 channels.
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/binary_s8.h"
#include "../core/cnn_kernels.h"
#include "../core/quantize.h"
#include "../core/requantize.h"
#include "../core/sparse.h"
#include "../core/static_quant.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX2)
#include "x86_binary_s8.h"
#include "x86_depthwise_s8.h"
#include "x86_elementwise.h"
#include "x86_gemm_f32.h"
#include "x86_gemm_u8s8.h"
#include "x86_requantize.h"
#include "x86_ymm.h"

namespace edgeopt {
namespace {

// Register plans (16 ymm). Pairs: 6 rows x 1 tile = 12 accumulators + 2
// weights + 1 activation. Quads: 4 rows x 1 tile = 8 accumulators + 2 weights
// + activation, product, ones. Fewer rows take up to 4 tiles in 12 accumulators.
struct Pairs : PairsDot<Ymm> {
  static constexpr int kRows = 6, kBudget = 12, kMaxTiles = 4;
  static constexpr size_t kPanelBytes = 192 * 1024;
};
struct Quads : QuadsDot<Ymm> {
  static constexpr int kRows = 4, kBudget = 12, kMaxTiles = 4;
  static constexpr size_t kPanelBytes = 192 * 1024;
};
struct F32 {
  using V = Ymm;
  static constexpr int kRows = 6, kBudget = 12, kMaxTiles = 4, kPanel = 4;
};

#if !defined(EDGEOPT_EMULATE_X86)
// Register-only loops with the microkernels' arithmetic: 12 independent
// accumulators, per step 12 x (vpmaddwd + vpaddd) for int8, 12 x (vpmaddubsw +
// vpmaddwd by 1 + vpaddd) for narrow int8 (the two layouts) and 12
// vfmadd231ps for fp32. Written in asm because the compiler otherwise folds the
// loop-invariant multiplies or spills the accumulators; the operands' values do
// not change the timing of these instructions (zeros keep FMA off denormals).
#define EDGEOPT_MADD_ADD(acc) "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_MADDUBS_ADD(acc) \
  "vpmaddubsw %%ymm0, %%ymm1, %%ymm2\n\tvpmaddwd %%ymm3, %%ymm2, %%ymm2\n\tvpaddd %%ymm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_FMA(acc) "vfmadd231ps %%ymm0, %%ymm1, %%" acc "\n\t"
// clang-format off
#define EDGEOPT_YMM12(OP) \
  OP("ymm4") OP("ymm5") OP("ymm6") OP("ymm7") OP("ymm8") OP("ymm9") OP("ymm10") OP("ymm11") OP("ymm12") \
  OP("ymm13") OP("ymm14") OP("ymm15")
#define EDGEOPT_YMM_PROBE(n, OP)                                                                                \
  __asm__ volatile(                                                                                              \
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\tvpxor %%xmm3, %%xmm3, %%xmm3\n\t"         \
      "1:\n\t" EDGEOPT_YMM12(OP) "dec %0\n\tjnz 1b\n\tvzeroupper"                                                \
      : "+r"(n)                                                                                                  \
      :                                                                                                          \
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
        "xmm12", "xmm13", "xmm14", "xmm15")
// clang-format on

uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (iterations == 0) return 0;
  uint64_t n = iterations;
  if (kind == PeakKind::Int8) {
    EDGEOPT_YMM_PROBE(n, EDGEOPT_MADD_ADD);
    return iterations * 12 * 16 * 2;  // 16 multiply-adds per vpmaddwd
  }
  if (kind == PeakKind::Int8Narrow) {
    EDGEOPT_YMM_PROBE(n, EDGEOPT_MADDUBS_ADD);
    return iterations * 12 * 32 * 2;  // 32 multiply-adds per vpmaddubsw
  }
  EDGEOPT_YMM_PROBE(n, EDGEOPT_FMA);
  return iterations * 12 * 8 * 2;  // 8 lanes per vfmadd231ps
}
#endif

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) { x86::pack_s8_exact(w, n, k, out, &avx2_kernels()); }
void pack_f32(const float* w, int n, int k, PackedF32* out) { x86::pack_f32_tiles(w, n, k, out, &avx2_kernels()); }

KernelTable make_table() {
  KernelTable t;
  t.name = "avx2";
  t.tile_n = x86::kTile;
  t.sparse = &sparse_avx2_kernels();
  t.pack_s8 = pack_s8;
  t.gemm_u8s8 = gemm_u8s8_exact<Pairs, Quads>;
  t.gemm_u8s8_dequant = gemm_u8s8_dequant_exact<Pairs, Quads, epilogue_s32_simd<Ymm>>;
  t.gemm_u8s8_requant = gemm_u8s8_requant_exact<Pairs, Quads, requantize_s8_simd<Ymm>>;
  t.pack_f32 = pack_f32;
  t.gemm_f32 = gemm_f32_tiles<F32>;
  t.epilogue_s32 = epilogue_s32_simd<Ymm>;
  t.quantize_rows_u8 = quantize_rows_u8_simd<Ymm>;
  t.bias_act_f32 = bias_act_f32_simd<Ymm>;
  t.relu_f32 = relu_f32_simd<Ymm>;
#if !defined(EDGEOPT_EMULATE_X86)
  t.peak_probe = peak_probe;
#endif
  t.cnn = &avx2_cnn_kernels();
  t.depthwise_s8 = depthwise_s8_simd<Ymm>;
  t.depthwise_pair_channels = 2 * Ymm::kLanes;
  t.requantize_s8 = requantize_s8_simd<Ymm>;
  t.binary_s8 = binary_s8_simd<Ymm>;
  t.quantize_static_s8 = quantize_static_s8_simd<Ymm>;
  return t;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = make_table();
  return table;
}

KernelTable x86::avx2_with_int8(const char* name, const Int8Gemm& int8) {
  KernelTable t = avx2_kernels();
  t.name = name;
  t.pack_s8 = int8.pack;
  t.gemm_u8s8 = int8.gemm;
  t.gemm_u8s8_dequant = int8.gemm_dequant;
  t.gemm_u8s8_requant = int8.gemm_requant;
  t.peak_probe = int8.probe;
  return t;
}

}  // namespace edgeopt
#endif
