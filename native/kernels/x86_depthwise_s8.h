// The int8 depthwise sums (DepthwiseS8Args) over V's int32 lanes, exact:
// inputs and weights are sign-extended to int32 and multiplied there, so no
// product or sum ever saturates (no vpmaddubsw). Channels go kBlock vectors at
// a time with the accumulators in registers across every tap; the tail runs
// the scalar definition. Whole blocks of channels can go two taps at a time
// through int16 multiply-adds instead (depthwise_s8_pairs). Include inside a
// target region; V is x86_ymm.h's Ymm or x86_zmm.h's Zmm.
#pragma once

namespace edgeopt {
namespace {

template <class V, int kVectors>
inline void depthwise_s8_block(const DepthwiseS8Args& a, int64_t at, int ch, int32_t* acc) {
  typename V::I sum[kVectors];
  for (int v = 0; v < kVectors; ++v) sum[v] = V::load(a.init + ch + v * V::kLanes);
  for (int t = 0; t < a.taps; ++t) {
    const int8_t* xt = a.x[t] + at + ch;
    const int16_t* wt = a.w + static_cast<size_t>(t) * a.c + ch;
    for (int v = 0; v < kVectors; ++v)
      sum[v] = V::add(sum[v], V::mullo(V::s8_to_s32(xt + v * V::kLanes), V::s16_to_s32(wt + v * V::kLanes)));
  }
  for (int v = 0; v < kVectors; ++v) V::store(acc + ch + v * V::kLanes, sum[v]);
}

// Channels [ch, ...) of the pixel whose inputs are `at` bytes past a.x's, in
// blocks of kBlock vectors, then of one; returns where it stopped.
template <class V>
inline int depthwise_s8_lanes(const DepthwiseS8Args& a, int64_t at, int ch, int32_t* acc) {
  constexpr int kBlock = 4;
  for (; ch + kBlock * V::kLanes <= a.c; ch += kBlock * V::kLanes) depthwise_s8_block<V, kBlock>(a, at, ch, acc);
  for (; ch + V::kLanes <= a.c; ch += V::kLanes) depthwise_s8_block<V, 1>(a, at, ch, acc);
  return ch;
}

// kBlocks blocks of 2 * V::kLanes channels of one pixel, from ch, with the
// blocks' weights in depthwise_pairs.h's layout at w (`stride` int16 apart):
// per pair of taps, the two inputs sign-extended to int16, interleaved and
// multiply-added with the paired weights (vpmaddwd: two products of int8
// values sum to at most 2^15, exact in int32); an odd last tap pairs with
// itself against a zero weight. The lo/hi sums come out in the layout's lane
// order and are put back in channel order once.
template <class V, int kBlocks>
inline void depthwise_s8_pair_blocks(const DepthwiseS8Args& a, int64_t at, int ch, const int16_t* w, size_t stride,
                                     int32_t* acc) {
  using I = typename V::I;
  constexpr int kBlock = 2 * V::kLanes;  // channels per int16 vector
  I lo[kBlocks], hi[kBlocks];
  for (int b = 0; b < kBlocks; ++b) lo[b] = hi[b] = V::zero();
  for (int t = 0; t < a.taps; t += 2, w += 2 * kBlock) {
    const int8_t* x0 = a.x[t] + at + ch;
    const int8_t* x1 = a.x[t + 1 < a.taps ? t + 1 : t] + at + ch;
    for (int b = 0; b < kBlocks; ++b) {
      const I v0 = V::s8_to_s16(x0 + b * kBlock), v1 = V::s8_to_s16(x1 + b * kBlock);
      lo[b] = V::add(lo[b], V::madd16(V::unpacklo16(v0, v1), V::load(w + b * stride)));
      hi[b] = V::add(hi[b], V::madd16(V::unpackhi16(v0, v1), V::load(w + b * stride + kBlock)));
    }
  }
  for (int b = 0; b < kBlocks; ++b) {
    const int c0 = ch + b * kBlock;
    V::store(acc + c0, V::add(V::load(a.init + c0), V::lanes_lo(lo[b], hi[b])));
    V::store(acc + c0 + V::kLanes, V::add(V::load(a.init + c0 + V::kLanes), V::lanes_hi(lo[b], hi[b])));
  }
}

// The whole blocks of 2 * V::kLanes channels of one pixel from a.w_pairs, two
// blocks at a time while there are two; returns where it stopped (0 without w_pairs).
template <class V>
inline int depthwise_s8_pairs(const DepthwiseS8Args& a, int64_t at, int32_t* acc) {
  constexpr int kBlock = 2 * V::kLanes;
  if (!a.w_pairs) return 0;
  const size_t stride = static_cast<size_t>((a.taps + 1) / 2) * 2 * kBlock;  // int16 per block
  int ch = 0;
  for (; ch + 2 * kBlock <= a.c; ch += 2 * kBlock)
    depthwise_s8_pair_blocks<V, 2>(a, at, ch, a.w_pairs + ch / kBlock * stride, stride, acc);
  for (; ch + kBlock <= a.c; ch += kBlock)
    depthwise_s8_pair_blocks<V, 1>(a, at, ch, a.w_pairs + ch / kBlock * stride, stride, acc);
  return ch;
}

// Each pixel: the tap-pair blocks of the widest vector type V when the table
// packed them, then V and the narrower types (Zmm, Ymm) a channel vector at a
// time, then the scalar definition.
template <class V, class... Vs>
void depthwise_s8_simd(const DepthwiseS8Args& a) {
  for (int p = 0; p < a.pixels; ++p) {
    const int64_t at = p * a.step;
    int32_t* acc = a.acc + static_cast<size_t>(p) * a.c;
    int ch = depthwise_s8_pairs<V>(a, at, acc);
    ch = depthwise_s8_lanes<V>(a, at, ch, acc);
    ((ch = depthwise_s8_lanes<Vs>(a, at, ch, acc)), ...);
    for (; ch < a.c; ++ch) {
      int32_t sum = a.init[ch];
      for (int t = 0; t < a.taps; ++t) sum += int32_t{a.x[t][at + ch]} * a.w[static_cast<size_t>(t) * a.c + ch];
      acc[ch] = sum;
    }
  }
}

}  // namespace
}  // namespace edgeopt
