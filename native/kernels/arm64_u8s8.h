// Shared by the arm64 int8 kernel files (neon.cc, dotprod.cc, i8mm.cc); never
// included elsewhere.
//
// Everything here has internal linkage on purpose: dotprod.cc and i8mm.cc
// include this file inside a `#pragma GCC target` region, so their copies may
// use armv8.2 instructions. With external (COMDAT) linkage the linker could
// hand such a copy to the armv8.0 NEON code and crash a Cortex-A53.
//
// The "c16" weight layout (NEON and dotprod): tiles of 4 output channels; for
// each 16-byte chunk of k, the 4 channels' 16 weights in a row, so one load is
// one channel's chunk. k is zero-padded to a multiple of 16.
//
// Activations are shifted to int8 (a - 128, i.e. a ^ 0x80) so signed x signed
// instructions apply: sum (a-128)*w = sum a*w - 128*sum w. The stores add
// (shift - zp) * col_sums back, which gives scalar's sum a*w - zp*sum w in
// int32 wrap-around arithmetic, so bit for bit the same.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "../core/kernels.h"
#include "row_blocks.h"

// Accumulator arrays must become registers: fully unroll the loops over them.
#define EDGEOPT_ARM_UNROLL _Pragma("GCC unroll 16")

namespace edgeopt {
namespace {

constexpr int kC16Channels = 4;
constexpr int kC16Chunk = 16;

inline int c16_tiles(int n) { return (n + kC16Channels - 1) / kC16Channels; }
inline int c16_chunks(int k) { return (k + kC16Chunk - 1) / kC16Chunk; }
inline size_t c16_tile_bytes(int k) { return static_cast<size_t>(c16_chunks(k)) * kC16Chunk * kC16Channels; }

// Where a microkernel's sums go: c[r][j] = sum + (shift - zp[r]) * col_sums[j]
// for j in [n_begin, n_end).
struct OutS32 {
  int32_t* c;
  size_t ldc;
  const int32_t* zp;
  const int32_t* col_sums;
  int32_t shift;  // what was subtracted from every activation (128 or 0)
  int n_begin, n_end;
};

// Stores 4 channels' sums starting at column j.
inline void store4_s32(const OutS32& o, int r, int j, int32x4_t sums) {
  int32_t* dst = o.c + r * o.ldc;
  const int32_t f = o.shift - o.zp[r];
  if (j >= o.n_begin && j + 4 <= o.n_end) {
    vst1q_s32(dst + j, vmlaq_s32(sums, vdupq_n_s32(f), vld1q_s32(o.col_sums + j)));
    return;
  }
  int32_t tmp[4];
  vst1q_s32(tmp, sums);
  for (int q = std::max(j, o.n_begin); q < std::min(j + 4, o.n_end); ++q)  // unsigned: wraps like vmla
    dst[q] = static_cast<int32_t>(static_cast<uint32_t>(tmp[q - j]) +
                                  static_cast<uint32_t>(f) * static_cast<uint32_t>(o.col_sums[q]));
}

// Rows of `a` copied to `stride`-byte rows, XORed with `flip` (0x80: the
// shift to int8; 0: unchanged) and zero-padded, so kernels read whole chunks.
inline std::unique_ptr<uint8_t[]> padded_rows(const uint8_t* a, size_t lda, int m, int k, size_t stride, uint8_t flip) {
  std::unique_ptr<uint8_t[]> out(new uint8_t[static_cast<size_t>(m) * stride]());
  const uint8x16_t f = vdupq_n_u8(flip);
  for (int r = 0; r < m; ++r) {
    const uint8_t* src = a + r * lda;
    uint8_t* dst = out.get() + r * stride;
    int i = 0;
    for (; i + 16 <= k; i += 16) vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), f));
    for (; i < k; ++i) dst[i] = src[i] ^ flip;
  }
  return out;
}

// MR rows x T tiles (4*T channels) over all of k. Dot::step(acc, a, w) adds the
// 16 products a[i]*w[i] (int8 x int8) into the 4 int32 lanes of acc; the lanes
// are summed at the end. Integer sums are exact, so any blocking gives the
// same result.
template <class Dot, int MR, int T>
void c16_block(const int8_t* a, size_t stride, int chunks, const int8_t* w, size_t tile_bytes, int r0, int j0,
               const OutS32& o) {
  int32x4_t acc[MR][T][kC16Channels];
  EDGEOPT_ARM_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
  for (int q = 0; q < kC16Channels; ++q) acc[r][t][q] = vdupq_n_s32(0);
  for (int c = 0; c < chunks; ++c) {
    int8x16_t wv[T][kC16Channels];
    EDGEOPT_ARM_UNROLL
    for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
    for (int q = 0; q < kC16Channels; ++q)
      wv[t][q] = vld1q_s8(w + t * tile_bytes + (static_cast<size_t>(c) * kC16Channels + q) * kC16Chunk);
    EDGEOPT_ARM_UNROLL
    for (int r = 0; r < MR; ++r) {
      const int8x16_t av = vld1q_s8(a + r * stride + static_cast<size_t>(c) * kC16Chunk);
      EDGEOPT_ARM_UNROLL
      for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
      for (int q = 0; q < kC16Channels; ++q) acc[r][t][q] = Dot::step(acc[r][t][q], av, wv[t][q]);
    }
  }
  EDGEOPT_ARM_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) {
    const int32x4_t sums = vpaddq_s32(vpaddq_s32(acc[r][t][0], acc[r][t][1]), vpaddq_s32(acc[r][t][2], acc[r][t][3]));
    store4_s32(o, r0 + r, j0 + t * kC16Channels, sums);
  }
}

// Rows [r0, r0+MR) over tiles [t_begin, t_end): T tiles at a time, then singles.
template <class Dot, int MR, int T>
void c16_rows(const int8_t* a, size_t stride, const PackedS8& w, int r0, int t_begin, int t_end, const OutS32& o) {
  const int chunks = c16_chunks(w.k);
  const size_t tile_bytes = c16_tile_bytes(w.k);
  const int8_t* base = w.data.data();
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T)
    c16_block<Dot, MR, T>(a, stride, chunks, base + t * tile_bytes, tile_bytes, r0, t * kC16Channels, o);
  for (; t < t_end; ++t)
    c16_block<Dot, MR, 1>(a, stride, chunks, base + t * tile_bytes, tile_bytes, r0, t * kC16Channels, o);
}

// gemm_u8s8 on c16-packed weights (see kernels.h for the contract).
template <class Dot>
void gemm_u8s8_c16(const GemmU8S8Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const size_t stride = static_cast<size_t>(c16_chunks(p.w->k)) * kC16Chunk;
  const auto rows = padded_rows(p.a, p.lda, p.m, p.w->k, stride, 0x80);
  const int8_t* a = reinterpret_cast<const int8_t*>(rows.get());
  const OutS32 o{p.c, p.ldc, p.a_zero_point, p.w->col_sums.data(), 128, p.n_begin, p.n_end};
  const int t_begin = p.n_begin / kC16Channels, t_end = c16_tiles(p.n_end);
  // 4 rows x 4 channels = 16 accumulators + 4 weight + 4 activation registers of 32.
  for_row_blocks<4>(p.m, [&](int r, auto rows) {
    constexpr int R = decltype(rows)::value;
    c16_rows<Dot, R, tiles_for_rows(R, 16, kC16Channels, 3)>(a + r * stride, stride, *p.w, r, t_begin, t_end, o);
  });
}

}  // namespace

// c16 packing (neon.cc), shared by the NEON and dotprod tables; `packer` is
// the table recorded in the result.
void pack_s8_c16(const int8_t* w, int n, int k, PackedS8* out, const KernelTable* packer);

// The NEON table under another name with its int8 GEMM, packing and peak probe
// replaced (neon.cc): dotprod and i8mm differ from NEON only there.
KernelTable neon_with_int8(const char* name, decltype(KernelTable::pack_s8) pack, decltype(KernelTable::gemm_u8s8) gemm,
                           decltype(KernelTable::peak_probe) probe);

// Peak-probe loop: `iterations` trips (none for 0) of 8 independent accumulator chains
// (v4..v11) of OP(acc, tmp), inputs v0/v1 zeroed (no denormals), v16..v23 free
// for temporaries. Written in asm so the compiler cannot fold or spill it.
#define EDGEOPT_ARM_PROBE8(iterations, OP)                                                                             \
  do {                                                                                                                 \
    uint64_t trips_ = (iterations);                                                                                    \
    if (trips_ == 0) break; /* subs would wrap around */                                                               \
    __asm__ volatile("movi v0.16b, #0\n\tmovi v1.16b, #0\n\t1:\n\t" OP("4", "16") OP("5", "17") OP("6", "18")          \
                         OP("7", "19") OP("8", "20") OP("9", "21") OP("10", "22")                                      \
                             OP("11", "23") "subs %0, %0, #1\n\tb.ne 1b"                                               \
                     : "+r"(trips_)                                                                                    \
                     :                                                                                                 \
                     : "cc", "v0", "v1", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v16", "v17", "v18", "v19", \
                       "v20", "v21", "v22", "v23");                                                                    \
  } while (0)

}  // namespace edgeopt
#endif
