// AVX-512 F + BW + VL kernel table (Skylake-SP, Cascade Lake without VNNI
// in use, Zen 4 and later): the AVX2 table's kernels on zmm. int8 uses the
// same two exact layouts (x86.h), 16 channels per vpmaddwd (vpmaddubsw: 32
// pairs) instead of 8; fp32 FMA and the element-wise kernels run 16 lanes wide.
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/binary_s8.h"
#include "../core/cnn_kernels.h"
#include "../core/quantize.h"
#include "../core/requantize.h"
#include "../core/sparse.h"
#include "../core/static_quant.h"
#include "cpu_features.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX512)
#include "x86_binary_s8.h"
#include "x86_depthwise_s8.h"
#include "x86_elementwise.h"
#include "x86_gemm_f32.h"
#include "x86_gemm_u8s8.h"
#include "x86_requantize.h"
#include "x86_ymm.h"
#include "x86_zmm.h"

namespace edgeopt {
namespace {

// Register plans (32 zmm, one per 16-channel tile and row). Pairs: 8 rows x 3
// tiles = 24 accumulators + 3 weights + 1 activation + product. Quads (two
// temporaries and the ones): 6 rows x 3 tiles. fp32: 8 rows x 3 tiles. Fewer
// rows take up to 8 tiles.
struct Pairs : PairsDot<Zmm> {
  static constexpr int kRows = 8, kBudget = 24, kMaxTiles = 8;
  static constexpr size_t kPanelBytes = 512 * 1024;
};
struct Quads : QuadsDot<Zmm> {
  static constexpr int kRows = 6, kBudget = 18, kMaxTiles = 8;
  static constexpr size_t kPanelBytes = 512 * 1024;
};
struct F32 {
  using V = Zmm;
  static constexpr int kRows = 8, kBudget = 24, kMaxTiles = 8, kPanel = 6;
};

#if !defined(EDGEOPT_EMULATE_X86)
// Register-only loops of the microkernels' arithmetic on zmm, 24 independent
// accumulators: vpmaddwd + vpaddd (int8), vpmaddubsw + vpmaddwd by 1 + vpaddd
// (narrow int8), vfmadd231ps (fp32). See avx2.cc on why asm.
#define EDGEOPT_ZMADD_ADD(acc) "vpmaddwd %%zmm0, %%zmm1, %%zmm2\n\tvpaddd %%zmm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_ZMADDUBS_ADD(acc) \
  "vpmaddubsw %%zmm0, %%zmm1, %%zmm2\n\tvpmaddwd %%zmm3, %%zmm2, %%zmm2\n\tvpaddd %%zmm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_ZFMA(acc) "vfmadd231ps %%zmm0, %%zmm1, %%" acc "\n\t"
// clang-format off
#define EDGEOPT_ZMM24(OP) \
  OP("zmm8") OP("zmm9") OP("zmm10") OP("zmm11") OP("zmm12") OP("zmm13") OP("zmm14") OP("zmm15") OP("zmm16") \
  OP("zmm17") OP("zmm18") OP("zmm19") OP("zmm20") OP("zmm21") OP("zmm22") OP("zmm23") OP("zmm24") OP("zmm25") \
  OP("zmm26") OP("zmm27") OP("zmm28") OP("zmm29") OP("zmm30") OP("zmm31")
#define EDGEOPT_ZMM_PROBE(n, OP)                                                                                  \
  __asm__ volatile(                                                                                                \
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\tvpxord %%zmm3, %%zmm3, %%zmm3\n\t"        \
      "1:\n\t" EDGEOPT_ZMM24(OP) "dec %0\n\tjnz 1b\n\tvzeroupper"                                                  \
      : "+r"(n)                                                                                                    \
      :                                                                                                            \
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", \
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",        \
        "xmm27", "xmm28", "xmm29", "xmm30", "xmm31")
// clang-format on

uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (iterations == 0) return 0;
  uint64_t n = iterations;
  if (kind == PeakKind::Int8) {
    EDGEOPT_ZMM_PROBE(n, EDGEOPT_ZMADD_ADD);
    return iterations * 24 * 32 * 2;  // 32 multiply-adds per vpmaddwd
  }
  if (kind == PeakKind::Int8Narrow) {
    EDGEOPT_ZMM_PROBE(n, EDGEOPT_ZMADDUBS_ADD);
    return iterations * 24 * 64 * 2;  // 64 multiply-adds per vpmaddubsw
  }
  EDGEOPT_ZMM_PROBE(n, EDGEOPT_ZFMA);
  return iterations * 24 * 16 * 2;  // 16 lanes per vfmadd231ps
}
#endif

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

// VBMI is not implied by AVX-512 F + BW + VL nor by VNNI (Skylake-SP and
// Cascade Lake lack it): this lookup is chosen at run time, the portable loop
// otherwise.
EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX512VBMI)
namespace edgeopt {
namespace {

// y = table[x + 128], 64 bytes per step: vpermi2b looks the low 7 bits of x
// up in each 128-byte half of the table, and x's sign bit (x + 128 < 128)
// picks the half.
void lut_s8_vbmi(const int8_t* x, size_t n, const int8_t* table, int8_t* y) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, v, t1), high = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), high, low));
  }
  for (; i < n; ++i) y[i] = table[x[i] + 128];
}

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) { x86::pack_s8_exact(w, n, k, out, &avx512_kernels()); }
void pack_f32(const float* w, int n, int k, PackedF32* out) { x86::pack_f32_tiles(w, n, k, out, &avx512_kernels()); }

KernelTable make_table() {
  KernelTable t;
  t.name = "avx512";
  t.tile_n = x86::kTile;
  t.sparse = &sparse_avx2_one_row_kernels();
  t.pack_s8 = pack_s8;
  t.gemm_u8s8 = gemm_u8s8_exact<Pairs, Quads>;
  t.gemm_u8s8_dequant = gemm_u8s8_dequant_exact<Pairs, Quads, epilogue_s32_simd<Zmm>>;
  t.gemm_u8s8_requant = gemm_u8s8_requant_exact<Pairs, Quads, requantize_s8_simd<Zmm, Ymm>>;
  t.pack_f32 = pack_f32;
  t.gemm_f32 = gemm_f32_tiles<F32>;
  t.epilogue_s32 = epilogue_s32_simd<Zmm>;
  t.quantize_rows_u8 = quantize_rows_u8_simd<Zmm>;
  t.bias_act_f32 = bias_act_f32_simd<Zmm>;
  t.relu_f32 = relu_f32_simd<Zmm>;
#if !defined(EDGEOPT_EMULATE_X86)
  t.peak_probe = peak_probe;
#endif
  t.cnn = &avx512_cnn_kernels();
  t.depthwise_s8 = depthwise_s8_simd<Zmm, Ymm>;
  t.depthwise_pair_channels = 2 * Zmm::kLanes;
  t.requantize_s8 = requantize_s8_simd<Zmm, Ymm>;
  t.binary_s8 = binary_s8_simd<Zmm, Ymm>;
  t.quantize_static_s8 = quantize_static_s8_simd<Zmm>;
#if defined(EDGEOPT_EMULATE_X86)
  t.lut_s8 = lut_s8_vbmi;
#else
  if (cpu_features().avx512vbmi) t.lut_s8 = lut_s8_vbmi;
#endif
  return t;
}

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table = make_table();
  return table;
}

KernelTable x86::avx512_with_int8(const char* name, const Int8Gemm& int8) {
  KernelTable t = avx512_kernels();
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
