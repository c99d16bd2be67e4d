#include "quantize.h"

#include <algorithm>

namespace edgeopt {

void quantize_row_u8(const float* x, int k, uint8_t* q, float* scale, int32_t* zero_point) {
  float lo = 0.0f, hi = 0.0f;
  for (int i = 0; i < k; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const RowGrid g = row_grid(lo, hi);
  for (int i = 0; i < k; ++i) q[i] = quantize_u8(x[i], g);
  *scale = g.scale;
  *zero_point = static_cast<int32_t>(g.zero_point);
}

static float symmetric_scale(const float* w, size_t count, float qmax) {
  float m = 0.0f;
  for (size_t i = 0; i < count; ++i) m = std::max(m, std::fabs(w[i]));
  return m == 0.0f ? 1.0f : m / qmax;
}

static void quantize_block(const float* w, size_t count, float scale, float qmax, int8_t* q) {
  for (size_t i = 0; i < count; ++i) {
    q[i] = static_cast<int8_t>(std::clamp(round_even(w[i] / scale), -qmax, qmax));
  }
}

void quantize_symmetric_s8(const float* w, int n, int k, int bits, bool per_channel, int8_t* q, float* scales) {
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const size_t row = static_cast<size_t>(k);
  if (per_channel) {
    for (int r = 0; r < n; ++r) {
      scales[r] = symmetric_scale(w + r * row, row, qmax);
      quantize_block(w + r * row, row, scales[r], qmax, q + r * row);
    }
  } else {
    const size_t count = row * static_cast<size_t>(n);
    scales[0] = symmetric_scale(w, count, qmax);
    quantize_block(w, count, scales[0], qmax, q);
  }
}

void dequantize_s8(const int8_t* q, int n, int k, const float* scales, bool per_channel, float* w) {
  const size_t row = static_cast<size_t>(k);
  for (int r = 0; r < n; ++r) {
    const float s = per_channel ? scales[r] : scales[0];
    for (size_t i = 0; i < row; ++i) w[r * row + i] = static_cast<float>(q[r * row + i]) * s;
  }
}

std::vector<int32_t> weight_column_sums(const int8_t* w, int n, int k) {
  std::vector<int32_t> sums(n, 0);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < k; ++i) sums[j] += w[static_cast<size_t>(j) * k + i];
  return sums;
}

}  // namespace edgeopt
