// Test-only emulation of the AMX tile intrinsics native/kernels/amx.cc uses,
// following the pseudo-code of Intel's instruction set reference (LDTILECFG,
// TILELOADD, TILESTORED, TILEZERO, TDPBUSD, TILERELEASE), per thread as the
// tile state is. Every #UD/#GP condition the kernel could hit (no or invalid
// configuration, shapes TDPBUSD rejects, a tile used as two operands) aborts,
// so the emulated tests fail where the hardware would fault.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace edgeopt::emulate {

struct TileState {
  bool configured = false;
  uint8_t rows[8] = {};
  uint16_t colsb[8] = {};
  uint8_t data[8][16][64] = {};
};

inline TileState& tiles() {
  thread_local TileState state;
  return state;
}

[[noreturn]] inline void tile_fault(const char* what) {
  std::fprintf(stderr, "AMX emulation: %s\n", what);
  std::abort();
}

inline int tile_index(int t) {
  if (t < 0 || t > 7) tile_fault("no such tile register");
  if (!tiles().configured) tile_fault("tile instruction without a loaded configuration (#UD)");
  return t;
}

// LDTILECFG: palette 0 releases; palette 1 allows 8 tiles of up to 16 rows x
// 64 bytes; reserved bytes must be 0. Loading zeroes every tile.
inline void tile_loadconfig(const void* config) {
  const uint8_t* c = static_cast<const uint8_t*>(config);
  TileState& s = tiles();
  s = TileState();
  if (c[0] == 0) return;
  if (c[0] != 1) tile_fault("unsupported palette (#GP)");
  for (int i = 2; i < 16; ++i)
    if (c[i]) tile_fault("reserved configuration bytes not zero (#GP)");
  for (int t = 0; t < 16; ++t) {
    uint16_t colsb;
    std::memcpy(&colsb, c + 16 + 2 * t, 2);
    const uint8_t rows = c[48 + t];
    if (t >= 8 ? (colsb || rows) : (colsb > 64 || rows > 16 || (colsb == 0) != (rows == 0)))
      tile_fault("invalid tile shape in the configuration (#GP)");
    if (t < 8) {
      s.colsb[t] = colsb;
      s.rows[t] = rows;
    }
  }
  s.configured = true;
}

inline void tile_release() { tiles() = TileState(); }

inline void tile_zero(int t) { std::memset(tiles().data[tile_index(t)], 0, sizeof tiles().data[0]); }

// Rows past the configured shape, and bytes past colsb, are zeroed.
inline void tile_loadd(int t, const void* base, long stride) {
  TileState& s = tiles();
  const int d = tile_index(t);
  std::memset(s.data[d], 0, sizeof s.data[d]);
  for (int r = 0; r < s.rows[d]; ++r)
    std::memcpy(s.data[d][r], static_cast<const uint8_t*>(base) + r * stride, s.colsb[d]);
}

inline void tile_stored(int t, void* base, long stride) {
  TileState& s = tiles();
  const int d = tile_index(t);
  for (int r = 0; r < s.rows[d]; ++r) std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.data[d][r], s.colsb[d]);
}

// TDPBUSD dst, a, b: dst (M x N int32) += a (M x K uint8 quads) . b (K quad
// rows x N int8 quads); each int32 adds its four u8 x s8 products, wrapping.
inline void tile_dpbusd(int dst, int a, int b) {
  TileState& s = tiles();
  const int c = tile_index(dst), x = tile_index(a), y = tile_index(b);
  if (c == x || c == y || x == y) tile_fault("TDPBUSD operands must be three different tiles (#UD)");
  const int m = s.rows[c], n = s.colsb[c] / 4, k = s.colsb[x] / 4;
  if (s.rows[x] != m || s.colsb[y] != s.colsb[c] || s.rows[y] != k || s.colsb[c] % 4 || s.colsb[x] % 4)
    tile_fault("TDPBUSD operand shapes do not match (#UD)");
  for (int i = 0; i < m; ++i)
    for (int q = 0; q < k; ++q)
      for (int j = 0; j < n; ++j) {
        uint32_t acc;
        std::memcpy(&acc, &s.data[c][i][4 * j], 4);
        for (int e = 0; e < 4; ++e)
          acc += static_cast<uint32_t>(static_cast<int32_t>(s.data[x][i][4 * q + e]) *
                                       static_cast<int32_t>(static_cast<int8_t>(s.data[y][q][4 * j + e])));
        std::memcpy(&s.data[c][i][4 * j], &acc, 4);
      }
}

}  // namespace edgeopt::emulate

// The intrinsics' names (GCC's are macros taking tile numbers).
#define _tile_loadconfig(config) edgeopt::emulate::tile_loadconfig(config)
#define _tile_release() edgeopt::emulate::tile_release()
#define _tile_zero(t) edgeopt::emulate::tile_zero(t)
#define _tile_loadd(t, base, stride) edgeopt::emulate::tile_loadd(t, base, static_cast<long>(stride))
#define _tile_stored(t, base, stride) edgeopt::emulate::tile_stored(t, base, static_cast<long>(stride))
#define _tile_dpbusd(dst, a, b) edgeopt::emulate::tile_dpbusd(dst, a, b)
