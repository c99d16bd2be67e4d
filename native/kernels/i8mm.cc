// Int8 matrix-multiply kernel table (FEAT_I8MM: Cortex-A510/A710/X2,
// Neoverse N2/V1, Graviton 3): the NEON table with the int8 GEMM on usmmla,
// which multiplies a 2x8 uint8 block (two activation rows) by an 8x2 int8
// block (two channels) into a 2x2 int32 block: 32 exact multiply-adds per
// instruction, unsigned x signed, so activations need no shift.
//
// Layout "m8": tiles of 8 channels; for each 8-byte chunk of k, 4 channel
// pairs x {channel 2q: 8 weights, channel 2q+1: 8 weights}. Activation rows
// are interleaved the same way in pairs (an odd last row pairs with zeros).
//
// Only the code between push_options and pop_options is compiled for
// armv8.2-a+i8mm; dispatch.cc calls this table only when HWCAP2_I8MM is set.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "../core/kernels.h"
#include "row_blocks.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+i8mm")
#include "arm64_u8s8.h"

namespace edgeopt {
namespace {

constexpr int kM8Channels = 8, kM8Chunk = 8;

inline int m8_tiles(int n) { return (n + kM8Channels - 1) / kM8Channels; }
inline int m8_chunks(int k) { return (k + kM8Chunk - 1) / kM8Chunk; }
inline size_t m8_tile_bytes(int k) { return static_cast<size_t>(m8_chunks(k)) * kM8Chunk * kM8Channels; }

// Rows 2p and 2p+1 of `a` as chunks of {8 bytes of row 2p, 8 bytes of row 2p+1}.
std::unique_ptr<uint8_t[]> pair_rows(const uint8_t* a, size_t lda, int m, int k) {
  const int chunks = m8_chunks(k);
  const size_t pair_bytes = static_cast<size_t>(chunks) * 2 * kM8Chunk;
  std::unique_ptr<uint8_t[]> out(new uint8_t[static_cast<size_t>((m + 1) / 2) * pair_bytes]());
  for (int r = 0; r < m; ++r) {
    const uint8_t* src = a + r * lda;
    uint8_t* dst = out.get() + (r / 2) * pair_bytes + (r % 2) * kM8Chunk;
    int c = 0;
    for (; (c + 1) * kM8Chunk <= k; ++c) vst1_u8(dst + c * 2 * kM8Chunk, vld1_u8(src + c * kM8Chunk));
    for (int i = c * kM8Chunk; i < k; ++i) dst[c * 2 * kM8Chunk + i % kM8Chunk] = src[i];
  }
  return out;
}

// P row pairs x T tiles. acc[p][t][q] is the 2x2 block {row 2p, 2p+1} x
// {channel 2q, 2q+1}; zip1/zip2 of two blocks give one row's 4 channels.
template <int P, int T>
void m8_block(const uint8_t* a, size_t pair_bytes, int chunks, const int8_t* w, size_t tile_bytes, int r0, int m,
              int j0, const OutS32& o) {
  int32x4_t acc[P][T][4];
  EDGEOPT_ARM_UNROLL
  for (int p = 0; p < P; ++p) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
  for (int q = 0; q < 4; ++q) acc[p][t][q] = vdupq_n_s32(0);
  for (int c = 0; c < chunks; ++c) {
    int8x16_t wv[T][4];
    EDGEOPT_ARM_UNROLL
    for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
    for (int q = 0; q < 4; ++q) wv[t][q] = vld1q_s8(w + t * tile_bytes + (static_cast<size_t>(c) * 4 + q) * 16);
    EDGEOPT_ARM_UNROLL
    for (int p = 0; p < P; ++p) {
      const uint8x16_t av = vld1q_u8(a + p * pair_bytes + static_cast<size_t>(c) * 16);
      EDGEOPT_ARM_UNROLL
      for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
      for (int q = 0; q < 4; ++q) acc[p][t][q] = vusmmlaq_s32(acc[p][t][q], av, wv[t][q]);
    }
  }
  EDGEOPT_ARM_UNROLL
  for (int p = 0; p < P; ++p) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
  for (int h = 0; h < 2; ++h) {  // channels 4h .. 4h+3
    const int64x2_t b0 = vreinterpretq_s64_s32(acc[p][t][2 * h]), b1 = vreinterpretq_s64_s32(acc[p][t][2 * h + 1]);
    const int j = j0 + t * kM8Channels + 4 * h, r = r0 + 2 * p;
    store4_s32(o, r, j, vreinterpretq_s32_s64(vzip1q_s64(b0, b1)));
    if (r + 1 < m) store4_s32(o, r + 1, j, vreinterpretq_s32_s64(vzip2q_s64(b0, b1)));
  }
}

template <int P, int T>
void m8_rows(const uint8_t* a, size_t pair_bytes, const PackedS8& w, int r0, int m, int t_begin, int t_end,
             const OutS32& o) {
  const int chunks = m8_chunks(w.k);
  const size_t tile_bytes = m8_tile_bytes(w.k);
  const int8_t* base = w.data.data();
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T)
    m8_block<P, T>(a, pair_bytes, chunks, base + t * tile_bytes, tile_bytes, r0, m, t * kM8Channels, o);
  for (; t < t_end; ++t)
    m8_block<P, 1>(a, pair_bytes, chunks, base + t * tile_bytes, tile_bytes, r0, m, t * kM8Channels, o);
}

void gemm_u8s8(const GemmU8S8Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const size_t pair_bytes = static_cast<size_t>(m8_chunks(p.w->k)) * 2 * kM8Chunk;
  const auto rows = pair_rows(p.a, p.lda, p.m, p.w->k);
  const OutS32 o{p.c, p.ldc, p.a_zero_point, p.w->col_sums.data(), 0, p.n_begin, p.n_end};
  const int t_begin = p.n_begin / kM8Channels, t_end = m8_tiles(p.n_end), pairs = (p.m + 1) / 2;
  // 2 row pairs x 8 channels = 8 accumulators (16 for T=2) + 8 weight + 2 activation registers.
  for_row_blocks<2>(pairs, [&](int pr, auto count) {
    constexpr int P = decltype(count)::value;
    m8_rows<P, P == 2 ? 2 : 3>(rows.get() + pr * pair_bytes, pair_bytes, *p.w, 2 * pr, p.m, t_begin, t_end, o);
  });
}

#define EDGEOPT_USMMLA(acc, t) "usmmla v" acc ".4s, v0.16b, v1.16b\n\t"

// int8: 8 independent usmmla chains (32 multiply-adds each); fp32 is NEON's.
uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind == PeakKind::Fp32) return neon_kernels().peak_probe(kind, iterations);
  EDGEOPT_ARM_PROBE8(iterations, EDGEOPT_USMMLA);
  return iterations * 8 * 32 * 2;
}

}  // namespace
}  // namespace edgeopt
#pragma GCC pop_options

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  const size_t tile_bytes = m8_tile_bytes(k);
  out->n = n;
  out->k = k;
  out->data.assign(static_cast<size_t>(m8_tiles(n)) * tile_bytes, 0);
  out->col_sums.assign(n, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    // Channel j's bytes: its tile, then pair (j % 8) / 2, then half j % 2 of each 16-byte pair block.
    int8_t* dst = out->data.data() + static_cast<size_t>(j / kM8Channels) * tile_bytes + (j % kM8Channels) * kM8Chunk;
    int32_t s = 0;
    for (int i = 0; i < k; ++i) {
      dst[static_cast<size_t>(i / kM8Chunk) * kM8Chunk * kM8Channels + i % kM8Chunk] = row[i];
      s += row[i];
    }
    out->col_sums[j] = s;
  }
  out->packer = &i8mm_kernels();
}

}  // namespace

const KernelTable& i8mm_kernels() {
  static const KernelTable table = neon_with_int8("i8mm", pack_s8, gemm_u8s8, peak_probe);
  return table;
}

}  // namespace edgeopt
#endif
