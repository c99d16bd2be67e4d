// The int8 depthwise sums (DepthwiseS8Args) over V's int32 lanes, exact:
// inputs and weights are sign-extended to int32 and multiplied there, so no
// product or sum ever saturates (no vpmaddubsw). Channels go kBlock vectors at
// a time with the accumulators in registers across every tap; the tail runs
// the scalar definition. Include inside a target region; V is x86_ymm.h's Ymm
// or x86_zmm.h's Zmm.
#pragma once

namespace edgeopt {
namespace {

template <class V, int kVectors>
inline void depthwise_s8_block(const DepthwiseS8Args& a, const int8_t* const* x, int ch, int32_t* acc) {
  typename V::I sum[kVectors];
  for (int v = 0; v < kVectors; ++v) sum[v] = V::load(a.init + ch + v * V::kLanes);
  for (int t = 0; t < a.taps; ++t) {
    const int8_t* xt = x[t] + ch;
    const int16_t* wt = a.w + static_cast<size_t>(t) * a.c + ch;
    for (int v = 0; v < kVectors; ++v)
      sum[v] = V::add(sum[v], V::mullo(V::s8_to_s32(xt + v * V::kLanes), V::s16_to_s32(wt + v * V::kLanes)));
  }
  for (int v = 0; v < kVectors; ++v) V::store(acc + ch + v * V::kLanes, sum[v]);
}

// Channels [ch, ...) of one pixel in blocks of kBlock vectors, then of one; returns where it stopped.
template <class V>
inline int depthwise_s8_lanes(const DepthwiseS8Args& a, const int8_t* const* x, int ch, int32_t* acc) {
  constexpr int kBlock = 4;
  for (; ch + kBlock * V::kLanes <= a.c; ch += kBlock * V::kLanes) depthwise_s8_block<V, kBlock>(a, x, ch, acc);
  for (; ch + V::kLanes <= a.c; ch += V::kLanes) depthwise_s8_block<V, 1>(a, x, ch, acc);
  return ch;
}

// Each pixel through the vector types from widest to narrowest (Zmm, Ymm),
// then the scalar definition.
template <class... Vs>
void depthwise_s8_simd(const DepthwiseS8Args& a) {
  for (int p = 0; p < a.pixels; ++p) {
    const int8_t* const* x = a.x + static_cast<size_t>(p) * a.taps;
    int32_t* acc = a.acc + static_cast<size_t>(p) * a.c;
    int ch = 0;
    ((ch = depthwise_s8_lanes<Vs>(a, x, ch, acc)), ...);
    for (; ch < a.c; ++ch) {
      int32_t sum = a.init[ch];
      for (int t = 0; t < a.taps; ++t) sum += int32_t{x[t][ch]} * a.w[static_cast<size_t>(t) * a.c + ch];
      acc[ch] = sum;
    }
  }
}

}  // namespace
}  // namespace edgeopt
