// AMX-INT8 kernel table (Sapphire Rapids, Emerald and Granite Rapids): the
// avx512vnni table with the int8 GEMM on TDPBUSD, which multiplies a 16 x 64
// uint8 A tile by a 64 x 16 int8 B tile (stored as 16 rows of 16 channels x 4
// bytes) into a 16 x 16 int32 C tile: 16384 exact multiply-adds, each 4
// summed into an int32 as vpdpbusd does.
//
// - Weights: x86::kQuads64 (k padded to 64), so quads 16q..16q+15 of a
//   16-channel tile are one B tile, 1 KB, stride 64. The avx512vnni kernel
//   reads the same packing, and runs the calls with fewer rows than a tile.
// - Activations: copied per call into a zero-padded buffer, rows to a
//   multiple of 32 and k to 64: A tiles are 16 rows x 64 bytes.
// - Blocks of 32 rows x 32 channels: C in tmm0..3, A in tmm4/5, B in tmm6/7;
//   C goes through memory for the zero-point correction and the column range.
// - The OS: Linux grants a process the tile state only on request
//   (arch_prctl(ARCH_REQ_XCOMP_PERM), asked once in cpu_features.cc; when it
//   refuses, the CPU does not list amx-int8, this table is not runnable and
//   backendInfo().notes says why). Each call loads the tile configuration on
//   its own thread and releases the tiles at its end, so no thread depends on
//   state another call left.
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/requantize.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AMX)
#include "x86_gemm_u8s8.h"
#include "x86_ymm.h"
#include "x86_zmm.h"

namespace edgeopt {
namespace {

constexpr int kTileRows = 16, kTileBytes = 64;  // every tile: 16 rows of 64 bytes
constexpr int kBlockRows = 2 * kTileRows;
constexpr int kMinRows = kTileRows;  // fewer: vpdpbusd (avx512vnni)

// The tile configuration (palette 1): all 8 tiles 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {kTileBytes, kTileBytes, kTileBytes, kTileBytes, kTileBytes, kTileBytes, kTileBytes, kTileBytes};
  uint8_t rows[16] = {kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows};
};

// One 32 x 32 block: rows [r, r + 32) of the padded activations `a` (kp bytes
// a row) against tiles t and t + 1 (`two`: whether t + 1 exists) of `w`.
void tile_block(const uint8_t* a, size_t kp, const int8_t* b0, const int8_t* b1, bool two, int kblocks,
                int32_t (*out)[kBlockRows]) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int kb = 0; kb < kblocks; ++kb) {
    const size_t at = static_cast<size_t>(kb) * kTileBytes, bt = static_cast<size_t>(kb) * kTileRows * kTileBytes;
    _tile_loadd(4, a + at, kp);
    _tile_loadd(5, a + kTileRows * kp + at, kp);
    _tile_loadd(6, b0 + bt, kTileBytes);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(2, 5, 6);
    if (two) {
      _tile_loadd(7, b1 + bt, kTileBytes);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(3, 5, 7);
    }
  }
  constexpr size_t kStride = kBlockRows * sizeof(int32_t);
  _tile_stored(0, &out[0][0], kStride);
  _tile_stored(1, &out[0][kTileRows], kStride);
  _tile_stored(2, &out[kTileRows][0], kStride);
  _tile_stored(3, &out[kTileRows][kTileRows], kStride);
}

void gemm_u8s8(const GemmU8S8Args& g) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  if (g.m < kMinRows) return avx512vnni_kernels().gemm_u8s8(g);
  const PackedS8& w = *g.w;
  const int steps = x86::packed_steps(w);  // a multiple of 16 quads
  const size_t kp = static_cast<size_t>(steps) * 4, tile_bytes = x86::tile_stride(w);
  const int mp = (g.m + kBlockRows - 1) / kBlockRows * kBlockRows;
  thread_local std::vector<uint8_t> padded;
  padded.assign(mp * kp, 0);
  for (int r = 0; r < g.m; ++r) std::memcpy(padded.data() + r * kp, g.a + r * g.lda, w.k);
  const OutS32 o{g.c, g.ldc, g.a_zero_point, w.col_sums.data(), g.n_begin, g.n_end};
  const int t_begin = g.n_begin / x86::kTile, t_end = x86::tiles_of(g.n_end);
  const TileConfig config;
  _tile_loadconfig(&config);
  alignas(64) int32_t out[kBlockRows][kBlockRows];
  for (int t = t_begin; t < t_end; t += 2) {
    const int8_t* b0 = w.data.data() + t * tile_bytes;
    const bool two = t + 1 < t_end;
    for (int r = 0; r < g.m; r += kBlockRows) {
      tile_block(padded.data() + r * kp, kp, b0, b0 + tile_bytes, two, steps / kTileRows, out);
      for (int i = 0; i < std::min(kBlockRows, g.m - r); ++i)
        for (int h = 0; h < (two ? 2 : 1); ++h)
          o.store<Zmm>(r + i, (t + h) * x86::kTile, Zmm::load(&out[i][h * x86::kTile]));
    }
  }
  _tile_release();
}

#if !defined(EDGEOPT_EMULATE_X86)
// Register-only loop: 4 independent TDPBUSD chains (loading the configuration
// zeroes every tile).
uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind == PeakKind::Fp32) return avx512_kernels().peak_probe(kind, iterations);
  if (iterations == 0) return 0;
  const TileConfig config;
  _tile_loadconfig(&config);
  uint64_t n = iterations;
  __asm__ volatile(
      "1:\n\t"
      "tdpbusd %%tmm6, %%tmm4, %%tmm0\n\ttdpbusd %%tmm7, %%tmm4, %%tmm1\n\t"
      "tdpbusd %%tmm6, %%tmm5, %%tmm2\n\ttdpbusd %%tmm7, %%tmm5, %%tmm3\n\t"
      "dec %0\n\tjnz 1b"
      : "+r"(n)
      :
      : "cc");
  _tile_release();
  return iterations * 4 * kTileRows * kTileRows * kTileBytes * 2;  // 16384 multiply-adds per tdpbusd
}
#endif

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  x86::pack_s8_quads(w, n, k, x86::kQuads64, out, &amx_kernels());
}

KernelTable make_table() {
#if defined(EDGEOPT_EMULATE_X86)
  KernelTable t = x86::avx512_with_int8("amx", {pack_s8, gemm_u8s8, nullptr, nullptr, nullptr});
#else
  KernelTable t = x86::avx512_with_int8("amx", {pack_s8, gemm_u8s8, nullptr, nullptr, peak_probe});
#endif
  t.tile_n = 2 * x86::kTile;  // a block's two B tiles stay with one thread
  return t;
}

}  // namespace

const KernelTable& amx_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgeopt
#endif
