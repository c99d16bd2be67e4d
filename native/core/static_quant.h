// Static (calibrated) int8 activation quantization, TFLite's per-tensor scheme:
//   q = clamp(round_half_even(x / scale) + zero_point, -128, 127), all in float32.
// Shared by the CPU plan (which feeds its uint8 GEMM with q + 128 and zero
// point zp + 128: the int32 accumulators are the same) and by the reference
// NPU plugin, so both quantize identically. The TS twin repeats the formula.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace edgeopt {

struct StaticActivation {
  float scale;         // > 0
  int32_t zero_point;  // -128..127
};

// NaN (which the clamp keeps) goes to 0: what the TS twin's Int8Array store
// gives, and the low byte of x86's and arm64's float -> int32 conversion.
inline int8_t quantize_static_s8(float x, StaticActivation a) {
  const float v = std::nearbyint(x / a.scale) + static_cast<float>(a.zero_point);
  return v == v ? static_cast<int8_t>(std::min(std::max(v, -128.0f), 127.0f)) : int8_t{0};
}

}  // namespace edgeopt
