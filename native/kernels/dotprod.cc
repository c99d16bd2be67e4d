// Dot-product kernel table (FEAT_DotProd: Cortex-A55/A76/A78, Neoverse N1,
// Raspberry Pi 5): the NEON table with the int8 GEMM on sdot, 16
// multiply-adds per instruction instead of smull + sadalp's 8 in two.
//
// Only the code between push_options and pop_options is compiled for
// armv8.2-a+dotprod (GCC's vdotq_s32 will not inline into a plain +dotprod
// function); dispatch.cc calls this table only when HWCAP_ASIMDDP is set. The
// included templates have internal linkage (arm64_u8s8.h), so no armv8.2 copy
// can be shared with baseline code.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "../core/kernels.h"
#include "row_blocks.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include "arm64_u8s8.h"

namespace edgeopt {
namespace {

// Same c16 layout and a ^ 0x80 shift as NEON: sdot sums 4 int8 products into
// each int32 lane, exactly.
struct Sdot {
  static inline int32x4_t step(int32x4_t acc, int8x16_t a, int8x16_t w) { return vdotq_s32(acc, a, w); }
};

void gemm_u8s8(const GemmU8S8Args& p) { gemm_u8s8_c16<Sdot>(p); }

#define EDGEOPT_SDOT(acc, t) "sdot v" acc ".4s, v0.16b, v1.16b\n\t"

// int8: 8 independent sdot chains (16 multiply-adds each); fp32 is NEON's.
uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind == PeakKind::Fp32) return neon_kernels().peak_probe(kind, iterations);
  EDGEOPT_ARM_PROBE8(iterations, EDGEOPT_SDOT);
  return iterations * 8 * 16 * 2;
}

}  // namespace
}  // namespace edgeopt
#pragma GCC pop_options

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) { pack_s8_c16(w, n, k, out, &dotprod_kernels()); }

}  // namespace

const KernelTable& dotprod_kernels() {
  static const KernelTable table = neon_with_int8("dotprod", pack_s8, gemm_u8s8, peak_probe);
  return table;
}

}  // namespace edgeopt
#endif
