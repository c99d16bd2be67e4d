// The depthwise convolution driver the SIMD tables share (cnn_conv.h): which
// pixels are interior row segments and which are border pixels is a property
// of the position alone, so a pixel's result never depends on the range it
// was computed in.
#include <algorithm>
#include <vector>

#include "cnn_conv.h"

namespace edgeopt {
namespace {

// Border pixels' padding taps read zeros; channels go in strips of at most
// this many so the zeros need not be as long as the channel count.
constexpr int kStrip = kZeroFloats;

int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

}  // namespace

void depthwise_f32_rows(const DepthwiseMicrokernels& mk, const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int c = s.in_c, taps = s.kh * s.kw;
  const int channels = a.oc_end - a.oc_begin;
  if (channels <= 0 || a.pixel_begin >= a.pixel_end) return;
  const ClampBounds clamp = clamp_bounds(w.act);
  // Output columns whose kw taps are all inside the input: [ox_lo, ox_hi).
  const int64_t ox_lo = std::min<int64_t>(s.out_w, ceil_div(s.pad_left, s.stride_w));
  const int64_t last_start = int64_t{s.in_w} - 1 - int64_t{s.kw - 1} * s.dilation_w + s.pad_left;
  const int64_t ox_hi = std::max(ox_lo, last_start < 0 ? 0 : std::min<int64_t>(s.out_w, last_start / s.stride_w + 1));
  std::vector<int64_t> row_offsets(s.kh);
  for (int ky = 0; ky < s.kh; ++ky) row_offsets[ky] = int64_t{ky} * s.dilation_h * s.in_w * c;
  std::vector<const float*> in(taps);
  const float* bias = w.bias.data() + a.oc_begin;
  const float* weights = w.depthwise_weights.data() + a.oc_begin;

  auto border_pixel = [&](const float* image, int oy, int64_t ox, float* y) {
    for (int c0 = 0; c0 < channels; c0 += kStrip) {
      for (int ky = 0, t = 0; ky < s.kh; ++ky) {
        const int64_t iy = int64_t{oy} * s.stride_h - s.pad_top + int64_t{ky} * s.dilation_h;
        for (int kx = 0; kx < s.kw; ++kx, ++t) {
          const int64_t ix = ox * s.stride_w - s.pad_left + int64_t{kx} * s.dilation_w;
          const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
          in[t] = inside ? image + (iy * s.in_w + ix) * c + a.oc_begin + c0 : zero_floats();
        }
      }
      mk.pixel(
          {in.data(), taps, weights + c0, w.channel_stride, bias + c0, y + c0, std::min(kStrip, channels - c0), clamp});
    }
  };

  for (int64_t p = a.pixel_begin; p < a.pixel_end;) {
    const PixelPos pos = pixel_pos(p, s.out_h, s.out_w);
    const int64_t end = std::min(a.pixel_end, p - pos.ox + s.out_w);  // this output row's part of the range
    const int64_t ox_end = pos.ox + (end - p);
    const float* image = a.x + pos.image * s.in_h * s.in_w * c;
    float* y_row = a.y + (p - pos.ox) * s.out_c + a.oc_begin;
    const int64_t iy0 = int64_t{pos.oy} * s.stride_h - s.pad_top;
    const bool rows_inside = iy0 >= 0 && iy0 + int64_t{s.kh - 1} * s.dilation_h < s.in_h;
    const int64_t seg_begin = rows_inside ? std::clamp<int64_t>(ox_lo, pos.ox, ox_end) : ox_end;
    const int64_t seg_end = rows_inside ? std::clamp<int64_t>(ox_hi, seg_begin, ox_end) : ox_end;
    for (int64_t ox = pos.ox; ox < seg_begin; ++ox) border_pixel(image, pos.oy, ox, y_row + ox * s.out_c);
    if (seg_begin < seg_end) {
      const float* x0 = image + (iy0 * s.in_w + seg_begin * s.stride_w - s.pad_left) * c + a.oc_begin;
      mk.row({x0, row_offsets.data(), int64_t{s.dilation_w} * c, int64_t{s.stride_w} * c, s.kh, s.kw, weights,
              w.channel_stride, bias, y_row + seg_begin * s.out_c, s.out_c, static_cast<int>(seg_end - seg_begin),
              channels, clamp});
    }
    for (int64_t ox = seg_end; ox < ox_end; ++ox) border_pixel(image, pos.oy, ox, y_row + ox * s.out_c);
    if (!is_clamp(w.act)) {
      float* y = y_row + pos.ox * s.out_c;
      if (channels == s.out_c)
        mk.activation(y, y, static_cast<size_t>(end - p) * channels, w.act);
      else
        for (int64_t q = 0; q < end - p; ++q) mk.activation(y + q * s.out_c, y + q * s.out_c, channels, w.act);
    }
    p = end;
  }
}

}  // namespace edgeopt
