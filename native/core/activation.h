// The scalar definitions of the fused activations and of exp_f32: the
// reference every SIMD table and the TS twin (lib/backends/ts/cnn/activation.ts)
// reproduce operation for operation, so activations are bit-identical
// everywhere. Every step is one float operation (the build passes
// -ffp-contract=off, so nothing is fused into an FMA).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cnn_kernels.h"

namespace edgeopt {

// exp_f32: Cody-Waite reduction x = n*ln2 + r, |r| <= ln2/2, then
// e^r = 1 + r + r^2 * P(r) with a degree-4 P fitted for relative error
// (under 1 ulp over the whole range; measured in cnn_test.cc), times 2^n.
// Results below FLT_MIN flush to 0; x above kExpHi (where n would reach 128)
// gives +inf, about 0.35 before float's own overflow at ln(FLT_MAX).
namespace expf32 {
constexpr float kLog2e = 1.44269502f;
constexpr float kLn2Hi = 0.693359375f;  // few mantissa bits: n * kLn2Hi is exact
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kHi = 88.3762589f;   // largest float with round(x * kLog2e) <= 127
constexpr float kLo = -87.3365479f;  // round(x * kLog2e) >= -126 above it
constexpr float kP0 = 0.4999999403953552f, kP1 = 0.1666652113199234f, kP2 = 0.04166838899254799f,
                kP3 = 0.008368708193302155f, kP4 = 0.0013814601115882397f;
}  // namespace expf32

inline float exp_f32(float x) {
  using namespace expf32;
  if (x != x) return x;
  if (x > kHi) return std::numeric_limits<float>::infinity();
  if (x < kLo) return 0.0f;
  const float n = std::nearbyint(x * kLog2e);
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kP4;
  p = p * r + kP3;
  p = p * r + kP2;
  p = p * r + kP1;
  p = p * r + kP0;
  p = p * r * r + r;
  p = p + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// tanh: an odd Taylor polynomial below |x| = 0.25 (no cancellation near 0),
// else (1 - e) / (1 + e) with e = exp_f32(-2|x|), with x's sign.
namespace tanhf32 {
constexpr float kSmall = 0.25f;
constexpr float kT1 = -0.333333343f, kT2 = 0.133333340f, kT3 = -0.0539682545f,
                kT4 = 0.0218694881f;  // -1/3, 2/15, -17/315, 62/2835
}  // namespace tanhf32

inline float tanh_f32(float x) {
  using namespace tanhf32;
  const float a = std::fabs(x);
  if (a < kSmall) {
    const float z = x * x;
    float p = kT4;
    p = p * z + kT3;
    p = p * z + kT2;
    p = p * z + kT1;
    return x + x * z * p;
  }
  const float e = exp_f32(a * -2.0f);
  const float t = (1.0f - e) / (1.0f + e);
  return std::signbit(x) ? -t : t;
}

inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// std::clamp(v, lo, hi) when lo <= hi (else hi, as numpy.clip); NaN stays
// NaN. Written as the two selects SIMD max/min instructions make.
inline float clamp_f32(float v, float lo, float hi) {
  const float t = lo > v ? lo : v;
  return hi < t ? hi : t;
}

constexpr float kSixth = 1.0f / 6.0f;

inline float activate(float v, const Activation& a) {
  switch (a.kind) {
    case ActKind::None:
      return v;
    case ActKind::Relu:
      return v < 0.0f ? 0.0f : v;
    case ActKind::LeakyRelu:
      return v < 0.0f ? a.alpha * v : v;
    case ActKind::Clip:
      return clamp_f32(v, a.lo, a.hi);
    case ActKind::HardSigmoid:
      return clamp_f32(a.alpha * v + a.beta, 0.0f, 1.0f);
    case ActKind::HardSwish:
      return v * clamp_f32(v * kSixth + 0.5f, 0.0f, 1.0f);
    case ActKind::Sigmoid:
      return sigmoid_f32(v);
    case ActKind::Tanh:
      return tanh_f32(v);
  }
  return v;
}

// Relu and Clip are a clamp [lo, hi] (Relu: [0, +inf]); None is the identity
// clamp [-inf, +inf], which keeps NaN. Kernels apply these in registers; the
// other kinds run activation_f32 over the finished output.
struct ClampBounds {
  float lo, hi;
};

inline bool is_clamp(const Activation& a) {
  return a.kind == ActKind::None || a.kind == ActKind::Relu || a.kind == ActKind::Clip;
}

inline ClampBounds clamp_bounds(const Activation& a) {
  const float inf = std::numeric_limits<float>::infinity();
  if (a.kind == ActKind::Relu) return {0.0f, inf};
  if (a.kind == ActKind::Clip) return {a.lo, a.hi};
  return {-inf, inf};
}

}  // namespace edgeopt
