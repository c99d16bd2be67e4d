// ConvMethod::Direct: the driver the SIMD tables share and the scalar
// definition. A pixel block's taps are pointers into the input (or into
// zeros), computed once per block and shared by every channel tile.
#include <algorithm>
#include <vector>

#include "cnn_conv.h"

namespace edgeopt {

const float* zero_floats() {
  alignas(64) static const float zeros[kZeroFloats] = {};
  return zeros;
}

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// [lo, hi): outputs whose k taps (dilation apart, from o * stride - pad) are all in [0, in).
void interior(int in, int out, int k, int stride, int dilation, int pad, int* lo, int* hi) {
  *lo = static_cast<int>(std::min<int64_t>(out, ceil_div(pad, stride)));
  const int64_t last_start = int64_t{in} - 1 - int64_t{k - 1} * dilation + pad;
  *hi = static_cast<int>(std::max<int64_t>(*lo, last_start < 0 ? 0 : std::min<int64_t>(out, last_start / stride + 1)));
}

}  // namespace

TapPointers::TapPointers(const ConvShape& s) : s_(s), offsets_(static_cast<size_t>(s.kh) * s.kw) {
  for (int ky = 0, t = 0; ky < s.kh; ++ky)
    for (int kx = 0; kx < s.kw; ++kx, ++t)
      offsets_[t] = (int64_t{ky} * s.dilation_h * s.in_w + int64_t{kx} * s.dilation_w) * s.in_c;
  interior(s.in_h, s.out_h, s.kh, s.stride_h, s.dilation_h, s.pad_top, &oy_lo_, &oy_hi_);
  interior(s.in_w, s.out_w, s.kw, s.stride_w, s.dilation_w, s.pad_left, &ox_lo_, &ox_hi_);
}

void TapPointers::get(const float* x, const PixelPos& pos, const float** out) const {
  const ConvShape& s = s_;
  const float* image = x + pos.image * s.in_h * s.in_w * s.in_c;
  const int iy0 = pos.oy * s.stride_h - s.pad_top, ix0 = pos.ox * s.stride_w - s.pad_left;
  if (pos.oy >= oy_lo_ && pos.oy < oy_hi_ && pos.ox >= ox_lo_ && pos.ox < ox_hi_) {
    const float* first = image + (int64_t{iy0} * s.in_w + ix0) * s.in_c;
    for (size_t t = 0; t < offsets_.size(); ++t) out[t] = first + offsets_[t];
    return;
  }
  for (int ky = 0, t = 0; ky < s.kh; ++ky) {
    const int iy = iy0 + ky * s.dilation_h;
    for (int kx = 0; kx < s.kw; ++kx, ++t) {
      const int ix = ix0 + kx * s.dilation_w;
      const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
      out[t] = inside ? image + (int64_t{iy} * s.in_w + ix) * s.in_c : zero_floats();
    }
  }
}

void conv_direct_f32(const DirectMicrokernel& mk, const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int taps = s.kh * s.kw, k = taps * s.in_c;
  if (a.pixel_begin >= a.pixel_end || a.oc_begin >= a.oc_end) return;
  const ClampBounds clamp = clamp_bounds(w.act);
  std::vector<const float*> in(static_cast<size_t>(mk.rows) * taps);
  const TapPointers tap_pointers(s);
  PixelPos pos = pixel_pos(a.pixel_begin, s.out_h, s.out_w);
  const int t_first = a.oc_begin / kDirectTile, t_last = (a.oc_end - 1) / kDirectTile;
  for (int64_t p0 = a.pixel_begin; p0 < a.pixel_end; p0 += mk.rows) {
    const int rows = static_cast<int>(std::min<int64_t>(mk.rows, a.pixel_end - p0));
    for (int r = 0; r < rows; ++r, next_pixel(&pos, s.out_h, s.out_w))
      tap_pointers.get(a.x, pos, &in[size_t(r) * taps]);
    // A short block repeats its last pixel's taps: computed, never stored.
    for (int r = rows; r < mk.rows; ++r)
      std::copy(&in[size_t(rows - 1) * taps], &in[size_t(rows) * taps], &in[size_t(r) * taps]);
    for (int t = t_first; t <= t_last; ++t) {
      const int c0 = t * kDirectTile;
      mk.tile({in.data(), rows, taps, s.in_c, w.direct_weights.data() + size_t(t) * k * kDirectTile, w.bias.data() + c0,
               a.y + p0 * s.out_c + c0, s.out_c, std::max(a.oc_begin, c0) - c0,
               std::min(a.oc_end, c0 + kDirectTile) - c0, clamp});
    }
    if (!is_clamp(w.act))
      for (int r = 0; r < rows; ++r) {
        float* y = a.y + (p0 + r) * s.out_c + a.oc_begin;
        mk.activation(y, y, a.oc_end - a.oc_begin, w.act);
      }
  }
}

void conv_direct_reference(const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int taps = s.kh * s.kw, k = taps * s.in_c;
  std::vector<const float*> in(taps);
  const TapPointers tap_pointers(s);
  PixelPos pos = pixel_pos(a.pixel_begin, s.out_h, s.out_w);
  for (int64_t p = a.pixel_begin; p < a.pixel_end; ++p, next_pixel(&pos, s.out_h, s.out_w)) {
    tap_pointers.get(a.x, pos, in.data());
    for (int oc = a.oc_begin; oc < a.oc_end; ++oc) {
      const float* wt = w.direct_weights.data() + size_t(oc / kDirectTile) * k * kDirectTile + oc % kDirectTile;
      float acc = 0.0f;
      for (int t = 0; t < taps; ++t)
        for (int ci = 0; ci < s.in_c; ++ci) acc = acc + in[t][ci] * wt[size_t(t * s.in_c + ci) * kDirectTile];
      a.y[p * s.out_c + oc] = activate(acc + w.bias[oc], w.act);
    }
  }
}

}  // namespace edgeopt
