// AVX-512 VNNI kernel table (Cascade Lake, Ice Lake, Sapphire Rapids and
// later; Zen 4 and Zen 5): the AVX-512 table with the int8 GEMM on vpdpbusd,
// which multiplies 64 u8 x s8 pairs and adds each 4 of them into an int32
// lane exactly (no int16 saturation, unlike vpmaddubsw): 64 multiply-adds in
// one instruction, where AVX-512BW needs vpmaddwd + vpaddd for 32. Weights
// are packed K-interleaved by 4 (x86::kQuads), activations are the uint8 rows
// read in place, and the zero-point term comes off through the precomputed
// column sums as on every table.
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/requantize.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX512VNNI)
#include "x86_gemm_u8s8.h"
#include "x86_ymm.h"
#include "x86_zmm.h"

namespace edgeopt {
namespace {

// 8 rows x 3 tiles = 24 accumulators + 3 weights + 1 activation of 32 zmm;
// fewer rows take up to 4 tiles (a GEMV streams 4 tiles at once: more
// streams measured slower).
struct Dpbusd {
  using V = Zmm;
  static constexpr int kStep = 4;
  static constexpr bool kWiden = false;
  static constexpr int kRows = 8, kBudget = 24, kMaxTiles = 4;
  static constexpr size_t kPanelBytes = 512 * 1024;
  static __m512i weights(const int8_t* p) { return Zmm::load(p); }
  static __m512i dot(__m512i acc, __m512i a, __m512i w) { return _mm512_dpbusd_epi32(acc, a, w); }
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
// Register-only loop of 24 independent vpdpbusd chains (see avx2.cc on why asm).
#define EDGEOPT_ZDPBUSD(acc) "vpdpbusd %%zmm0, %%zmm1, %%" acc "\n\t"
// clang-format off
#define EDGEOPT_ZMM24(OP) \
  OP("zmm8") OP("zmm9") OP("zmm10") OP("zmm11") OP("zmm12") OP("zmm13") OP("zmm14") OP("zmm15") OP("zmm16") \
  OP("zmm17") OP("zmm18") OP("zmm19") OP("zmm20") OP("zmm21") OP("zmm22") OP("zmm23") OP("zmm24") OP("zmm25") \
  OP("zmm26") OP("zmm27") OP("zmm28") OP("zmm29") OP("zmm30") OP("zmm31")
// clang-format on

uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind == PeakKind::Fp32) return avx512_kernels().peak_probe(kind, iterations);
  if (iterations == 0) return 0;
  uint64_t n = iterations;
  __asm__ volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "1:\n\t" EDGEOPT_ZMM24(EDGEOPT_ZDPBUSD) "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
        "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
        "xmm30", "xmm31");
  return iterations * 24 * 64 * 2;  // 64 multiply-adds per vpdpbusd
}
#endif

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  x86::pack_s8_quads(w, n, k, x86::kQuads, out, &avx512vnni_kernels());
}

}  // namespace

const KernelTable& avx512vnni_kernels() {
#if defined(EDGEOPT_EMULATE_X86)
  static const KernelTable table =
      x86::avx512_with_int8("avx512vnni", {pack_s8, gemm_u8s8, gemm_u8s8_dequant, gemm_u8s8_requant, nullptr});
#else
  static const KernelTable table =
      x86::avx512_with_int8("avx512vnni", {pack_s8, gemm_u8s8, gemm_u8s8_dequant, gemm_u8s8_requant, peak_probe});
#endif
  return table;
}

}  // namespace edgeopt
#endif
