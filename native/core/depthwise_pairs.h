// The tap-pair weight layout of the x86 int8 depthwise kernels: an int16
// multiply-add (vpmaddwd) sums two taps of a channel in one int32 lane when
// the two taps' inputs and weights sit side by side. The kernel interleaves
// two taps' sign-extended inputs with unpacklo/unpackhi, which work inside
// 128-bit lanes: of each lane's 8 channels, the first 4 go to the "lo" vector
// and the last 4 to the "hi" one. These weights are laid out the same way, per
// block of `block` channels (two int16 vectors' worth of int32 lanes) and pair
// of taps: lo then hi, each block / 8 lanes of 4 (w[2p][ch], w[2p + 1][ch]);
// an odd last tap pairs with a zero weight. Only whole blocks are packed.
#pragma once
#include <cstdint>
#include <vector>

namespace edgeopt {

// w: taps x c (DepthwiseS8Args::w).
inline std::vector<int16_t> pack_depthwise_pairs(const int16_t* w, int taps, int c, int block) {
  std::vector<int16_t> out;
  if (block <= 0) return out;
  for (int b = 0; b + block <= c; b += block)
    for (int t = 0; t < taps; t += 2)
      for (int half = 0; half < 2; ++half)
        for (int lane = 0; lane < block / 8; ++lane)
          for (int j = 0; j < 4; ++j) {
            const int ch = b + 8 * lane + 4 * half + j;
            out.push_back(w[static_cast<size_t>(t) * c + ch]);
            out.push_back(t + 1 < taps ? w[static_cast<size_t>(t + 1) * c + ch] : int16_t{0});
          }
  return out;
}

}  // namespace edgeopt
