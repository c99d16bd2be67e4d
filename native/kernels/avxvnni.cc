// AVX-VNNI kernel table (Alder Lake and later Intel client CPUs, which have
// no AVX-512; also Sapphire Rapids and Zen 5): the AVX2 table with the int8
// GEMM on the VEX-encoded vpdpbusd, 32 exact u8 x s8 multiply-adds per
// instruction on ymm (AVX2 needs vpmaddwd + vpaddd for 16). Same K-by-4
// weight layout and zero-point correction as avx512vnni.cc.
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/requantize.h"
#include "../core/sparse.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVXVNNI)
#include "x86_gemm_u8s8.h"
#include "x86_ymm.h"

namespace edgeopt {
namespace {

// 6 rows x 1 tile = 12 accumulators + 2 weights + 1 activation of 16 ymm;
// fewer rows take up to 4 tiles.
struct Dpbusd {
  using V = Ymm;
  static constexpr int kStep = 4;
  static constexpr bool kWiden = false;
  static constexpr int kRows = 6, kBudget = 12, kMaxTiles = 4;
  static constexpr size_t kPanelBytes = 512 * 1024;
  static __m256i weights(const int8_t* p) { return Ymm::load(p); }
  static __m256i dot(__m256i acc, __m256i a, __m256i w) { return _mm256_dpbusd_avx_epi32(acc, a, w); }
};

void gemm_u8s8(const GemmU8S8Args& g) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  gemm_u8s8_layout<Dpbusd>(g);
}

void gemm_u8s8_dequant(const GemmU8S8Args& g, const EpilogueArgs& e) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  gemm_u8s8_layout<Dpbusd>(g, &e);
}

void gemm_u8s8_requant(const GemmU8S8Args& g, const RequantizeS8Args& q) { gemm_u8s8_requant_layout<Dpbusd>(g, q); }

#if !defined(EDGEOPT_EMULATE_X86)
// Register-only loop of 12 independent vpdpbusd chains (see avx2.cc on why
// asm). {vex} (%{vex%} in asm): the AVX-VNNI encoding; without it the assembler may emit the
// EVEX (AVX512-VNNI) one, which an Alder Lake does not have.
#define EDGEOPT_DPBUSD(acc) "%{vex%} vpdpbusd %%ymm0, %%ymm1, %%" acc "\n\t"
// clang-format off
#define EDGEOPT_YMM12(OP) \
  OP("ymm4") OP("ymm5") OP("ymm6") OP("ymm7") OP("ymm8") OP("ymm9") OP("ymm10") OP("ymm11") OP("ymm12") \
  OP("ymm13") OP("ymm14") OP("ymm15")
// clang-format on

uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind == PeakKind::Fp32) return avx2_kernels().peak_probe(kind, iterations);
  if (iterations == 0) return 0;
  uint64_t n = iterations;
  __asm__ volatile(
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\t"
      "1:\n\t" EDGEOPT_YMM12(EDGEOPT_DPBUSD) "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "xmm15");
  return iterations * 12 * 32 * 2;  // 32 multiply-adds per vpdpbusd on ymm
}
#endif

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  x86::pack_s8_quads(w, n, k, x86::kQuads, out, &avxvnni_kernels());
}

KernelTable make_table() {
#if defined(EDGEOPT_EMULATE_X86)
  KernelTable t = x86::avx2_with_int8("avxvnni", {pack_s8, gemm_u8s8, gemm_u8s8_dequant, gemm_u8s8_requant, nullptr});
#else
  KernelTable t =
      x86::avx2_with_int8("avxvnni", {pack_s8, gemm_u8s8, gemm_u8s8_dequant, gemm_u8s8_requant, peak_probe});
#endif
  t.sparse = &sparse_avx2_one_row_kernels();  // its dense int8 outruns AVX2's
  return t;
}

}  // namespace

const KernelTable& avxvnni_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgeopt
#endif
