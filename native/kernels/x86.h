// Shared by the x86 tables (avx2, avx512, avxvnni, avx512vnni, amx): weight
// packings, compiled for the baseline (x86_pack.cc), and the table builders
// the way arm64's neon_with_int8 shares the NEON table. x86_isa.h has the
// rules on target regions.
//
// Int8 weight layouts, in tiles of kTile = 16 output channels (PackedS8::layout):
// - kPairs: for each pair of k (k padded to even), the 16 channels' 2 bytes
//   {w[c][2p], w[c][2p+1]}; sign-extended to int16, one vpmaddwd multiplies
//   them by a zero-extended activation pair, exactly (|255 * -128 * 2| < 2^31).
// - kQuads: for each group of 4 k (k padded), the 16 channels' 4 bytes: the
//   operand of vpdpbusd (u8 x s8, 4 products summed exactly into an int32
//   lane) and of vpmaddubsw, whose int16 pair sums are exact only for pairs
//   with |w0| + |w1| <= 128 (then at most 255 * 128 = 32640 < 32767).
// - kQuads64: kQuads with k padded to a multiple of 64, so a tile's 16
//   consecutive quads are one AMX B tile (16 rows of 16 channels x 4 bytes).
// Every layout sums each channel in int32, so results equal the scalar
// reference bit for bit whatever the layout, blocking, row count or thread split.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
// Everything the kernel headers use, so ISA files have it before their target region.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../core/kernels.h"
#include "row_blocks.h"

namespace edgeopt {
namespace x86 {

constexpr int kTile = 16;  // output channels per packed tile, int8 and fp32
enum Layout { kPairs = 0, kQuads = 1, kQuads64 = 2 };

inline int tiles_of(int n) { return (n + kTile - 1) / kTile; }

// k steps of a packed matrix: pairs for kPairs, quads (with padding) otherwise.
inline int packed_steps(const PackedS8& w) {
  if (w.layout == kPairs) return (w.k + 1) / 2;
  const int quads = (w.k + 3) / 4;
  return w.layout == kQuads64 ? (quads + 15) / 16 * 16 : quads;
}

// Bytes from one tile to the next: its steps, plus one cache line, so the
// tiles a microkernel streams side by side never start on the same L1/L2 set
// (with k a multiple of 1024 they otherwise sit 64 KB apart and evict each
// other, and the GEMV leaves read bandwidth unused).
constexpr size_t kTileSkew = 64;
inline size_t tile_stride(const PackedS8& w) {
  return static_cast<size_t>(packed_steps(w)) * (w.layout == kPairs ? 2 : 4) * kTile + kTileSkew;
}
// Floats from one fp32 tile to the next (pack_f32_tiles).
inline size_t tile_stride_f32(int k) { return static_cast<size_t>(k) * kTile + kTileSkew / sizeof(float); }

// The exact layouts of vpmaddwd/vpmaddubsw tables (AVX2, AVX-512BW): kQuads
// for weights whose k pairs fit vpmaddubsw's bound, except at most 1/256 of
// them, which go to PackedS8::spill_* for the GEMM to add separately (trained
// 8-bit layers have a few such pairs, 7-bit ones none); kPairs otherwise.
void pack_s8_exact(const int8_t* w, int n, int k, PackedS8* out, const KernelTable* packer);
// kQuads (or kQuads64), no spills: for vpdpbusd and TDPBUSD, exact for any weights.
void pack_s8_quads(const int8_t* w, int n, int k, Layout layout, PackedS8* out, const KernelTable* packer);
// fp32 in tiles of 16 channels: for each k, the tile's 16 weights (zero padding).
void pack_f32_tiles(const float* w, int n, int k, PackedF32* out, const KernelTable* packer);
// C += A x (the weights pack_s8_exact left out of the quads tiles); the
// zero-point term already subtracted used the whole matrix's column sums.
void add_spills(const GemmU8S8Args& g);

// A table's int8 GEMM entries: what the VNNI and AMX tables replace.
struct Int8Gemm {
  decltype(KernelTable::pack_s8) pack;
  decltype(KernelTable::gemm_u8s8) gemm;
  decltype(KernelTable::gemm_u8s8_dequant) gemm_dequant;  // fused forms: may be null
  decltype(KernelTable::gemm_u8s8_requant) gemm_requant;
  decltype(KernelTable::peak_probe) probe;  // null in the emulated builds
};

// The AVX2 table (avx2.cc) and the AVX-512 table (avx512.cc) under another
// name with their int8 GEMM replaced: the VNNI and AMX tables differ from
// them only there.
KernelTable avx2_with_int8(const char* name, const Int8Gemm& int8);
KernelTable avx512_with_int8(const char* name, const Int8Gemm& int8);

}  // namespace x86
}  // namespace edgeopt
#endif
