// The row loop of every microkernel driver: blocks of MR rows, then one block
// of the 1..MR-1 rows left, each called with its row count as a compile-time
// constant (a microkernel's accumulator arrays must be registers, so their
// sizes are template arguments).
//
// Internal linkage, like the kernel headers that use it: an ISA file may
// instantiate these inside its `#pragma GCC target` region.
#pragma once
#include <type_traits>

namespace edgeopt {
namespace {

// f(std::integral_constant<int, rows>{}) for 1 <= rows <= N; nothing otherwise.
template <int N, class F>
inline void with_row_count(int rows, F&& f) {
  if constexpr (N >= 1) {
    if (rows == N) return f(std::integral_constant<int, N>{});
    with_row_count<N - 1>(rows, f);
  }
}

// f(r0, std::integral_constant<int, R>{}) for rows [r0, r0 + R) covering
// [0, m): R = MR for every full block, then the remainder.
template <int MR, class F>
inline void for_row_blocks(int m, F&& f) {
  int r = 0;
  for (; r + MR <= m; r += MR) f(r, std::integral_constant<int, MR>{});
  with_row_count<MR - 1>(m - r, [&](auto rows) { f(r, rows); });
}

// Tiles per microkernel call for `rows` rows: fewer rows take more tiles, so
// enough independent accumulator chains (`budget` vector registers, `vecs`
// per row and tile) hide the multiply latency; at most `max_tiles`.
constexpr int tiles_for_rows(int rows, int budget, int vecs, int max_tiles) {
  const int t = budget / (rows * vecs);
  return t < 1 ? 1 : t > max_tiles ? max_tiles : t;
}

}  // namespace
}  // namespace edgeopt
