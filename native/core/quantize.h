// Quantization arithmetic shared by every backend. All in float32, rounding
// half to even (what PyTorch and ONNX do); the TS twin (lib/backends/ts)
// repeats these formulas operation for operation.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgeopt {

// Round half to even in the default FP environment.
inline float round_even(float v) { return std::nearbyint(v); }

// The uint8 grid of a dynamically quantized row, from its min and max taken
// with 0 included (lo <= 0 <= hi). Every kernel table calls these two, so the
// formula (and its float32 operation order) lives in one place.
struct RowGrid {
  float scale;
  float zero_point;  // integral, 0..255
};

inline RowGrid row_grid(float lo, float hi) {
  float s = (hi - lo) / 255.0f;
  if (s == 0.0f) s = 1.0f;
  return {s, std::clamp(round_even(-lo / s), 0.0f, 255.0f)};
}

inline uint8_t quantize_u8(float x, RowGrid g) {
  return static_cast<uint8_t>(std::clamp(round_even(x / g.scale) + g.zero_point, 0.0f, 255.0f));
}

// Dynamic activation quantization of one row, asymmetric uint8:
//   lo = min(0, min x), hi = max(0, max x), scale = (hi - lo) / 255 (1 if 0),
//   zp = clamp(round(-lo / scale), 0, 255), q = clamp(round(x / scale) + zp, 0, 255).
void quantize_row_u8(const float* x, int k, uint8_t* q, float* scale, int32_t* zero_point);

// Symmetric weight quantization of W[n][k] to `bits` (2..8):
//   qmax = 2^(bits-1) - 1, scale = max|w| / qmax (1 if 0), q = clamp(round(w / scale), -qmax, qmax).
// per_channel: one scale per row n, else one scale for the whole tensor.
void quantize_symmetric_s8(const float* w, int n, int k, int bits, bool per_channel, int8_t* q, float* scales);

// w = q * scale (scales per row when per_channel, else scales[0]).
void dequantize_s8(const int8_t* q, int n, int k, const float* scales, bool per_channel, float* w);

// sum_k W[j][k] for each output channel j of int8 W[n][k]: the term the
// activation zero point multiplies (PackedS8::col_sums and the sparse formats').
std::vector<int32_t> weight_column_sums(const int8_t* w, int n, int k);

}  // namespace edgeopt
