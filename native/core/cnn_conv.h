// Shared by the CNN kernel tables (native/kernels/cnn_*.cc), not by callers:
// the GEMM-based convolution every table runs for ConvMethod::Pointwise and
// Im2col, parameterized by the table's epilogue.
#pragma once
#include "cnn_kernels.h"

namespace edgeopt {

// Pointwise: GEMM straight over the input pixels. Im2col: per block of
// w.block_pixels pixels and per group, patch rows into args.scratch, then
// the packed GEMM of the KernelTable that packed the weights; then
// epilogue.bias_act_f32 over the block while it is in cache.
void conv_gemm_f32(const CnnKernels& epilogue, const ConvF32Args& args);

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

}  // namespace edgeopt
