// Shared by the CNN kernel tables (native/kernels/cnn_*.cc), not by callers:
// the GEMM-based convolution every table runs for ConvMethod::Pointwise and
// Im2col, parameterized by the table's epilogue.
#pragma once
#include <vector>

#include "activation.h"
#include "cnn_kernels.h"

namespace edgeopt {

// Pointwise: GEMM straight over the input pixels. Im2col: per block of
// w.block_pixels pixels and per group, patch rows into args.scratch, then
// the packed GEMM of the KernelTable that packed the weights; then the
// table's bias_act over the block while it is in cache.
using BiasActF32 = void (*)(float* y, size_t ldy, int64_t rows, int n, const float* bias, const Activation& act);
void conv_gemm_f32(BiasActF32 bias_act, const ConvF32Args& args);

// Depthwise convolution cut into the two shapes of work the ISA microkernels
// do. A row segment: `pixels` output pixels of one row whose taps all lie
// inside the input (the bulk of an image); a border pixel: any other, its
// padding taps pointing into zeros.
struct DepthwiseRow {
  const float* x;              // the first pixel's first tap, at channel 0 of the range
  const int64_t* row_offsets;  // per ky: floats from x to that tap row
  int64_t col_step;            // floats between kx taps (dilation_w * in_c)
  int64_t pixel_step;          // floats between pixels (stride_w * in_c)
  int kh, kw;
  const float* w;  // depthwise weights [kh*kw][w_stride] at channel 0 of the range
  int w_stride;
  const float* bias;  // at channel 0 of the range
  float* y;           // the first pixel's output at channel 0 of the range
  int64_t y_step;     // floats between output pixels (out_c)
  int pixels, channels;
  ClampBounds clamp;
};

struct DepthwisePixel {
  const float* const* in;  // per tap: the input pixel at channel 0 of the range, or zeros
  int taps;
  const float* w;
  int w_stride;
  const float* bias;
  float* y;
  int channels;
  ClampBounds clamp;
};

struct DepthwiseMicrokernels {
  void (*row)(const DepthwiseRow& r);
  void (*pixel)(const DepthwisePixel& p);
  void (*activation)(const float* x, float* y, size_t n, const Activation& act);
};

// The driver: walks the pixel range row by row, interior segments to
// mk.row, the rest to mk.pixel, then non-clamp activations over the outputs.
void depthwise_f32_rows(const DepthwiseMicrokernels& mk, const ConvF32Args& args);

// Direct convolution cut into microkernel calls: a block of up to
// DirectMicrokernel::rows output pixels times one tile of 16 output channels.
struct DirectTile {
  const float* const* in;  // in[r * taps + t]: pixel r's tap t at channel 0, or zeros in the padding
  int rows;                // pixels to store (pointers exist for all the kernel's rows)
  int taps, in_c;
  const float* w;              // the tile's weights [taps * in_c][16]
  const float* bias;           // the tile's 16 bias values
  float* y;                    // pixel 0's output at the tile's channel 0
  int64_t y_step;              // floats between output pixels (out_c)
  int store_begin, store_end;  // the tile's channels to store, within [0, 16)
  ClampBounds clamp;
};

struct DirectMicrokernel {
  int rows;  // pixels per block, at most kDirectMaxRows
  void (*tile)(const DirectTile& t);
  void (*activation)(const float* x, float* y, size_t n, const Activation& act);
};

constexpr int kDirectMaxRows = 8;

// ConvMethod::Direct over the args' ranges.
void conv_direct_f32(const DirectMicrokernel& mk, const ConvF32Args& args);
// The scalar definition: per output, K products in (ky, kx, ci) order from +0
// (padding taps add 0 * w), + bias, then the activation.
void conv_direct_reference(const ConvF32Args& args);

// A buffer of at least kZeroFloats zeros, for taps in the padding.
constexpr int kZeroFloats = 1024;
const float* zero_floats();

// Output pixel p of a batch: its image and position.
struct PixelPos {
  int64_t image;
  int oy, ox;
};
inline PixelPos pixel_pos(int64_t p, int out_h, int out_w) {
  const int64_t per_image = static_cast<int64_t>(out_h) * out_w;
  const int64_t image = p / per_image, rem = p - image * per_image;
  return {image, static_cast<int>(rem / out_w), static_cast<int>(rem % out_w)};
}

// The next output pixel's position, without dividing.
inline void next_pixel(PixelPos* pos, int out_h, int out_w) {
  if (++pos->ox < out_w) return;
  pos->ox = 0;
  if (++pos->oy < out_h) return;
  pos->oy = 0;
  ++pos->image;
}

// The taps of output pixels as pointers into an NHWC input (at channel 0):
// interior pixels (every tap inside) by adding precomputed offsets, the rest
// tap by tap, with zero_floats() for taps in the padding.
class TapPointers {
 public:
  explicit TapPointers(const ConvShape& s);
  void get(const float* x, const PixelPos& pos, const float** out) const;

 private:
  const ConvShape& s_;
  std::vector<int64_t> offsets_;       // per tap, from the window's first tap
  int oy_lo_, oy_hi_, ox_lo_, ox_hi_;  // interior output rows and columns: [lo, hi)
};

}  // namespace edgeopt
