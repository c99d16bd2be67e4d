// Convolution packing (shape checks, the method choice, weights into the
// table's layout) and the GEMM-based convolution the tables share.
#include "cnn_conv.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "error.h"

namespace edgeopt {
namespace {

// Sizes past these are input errors, not models: they keep every index
// computation inside int64 and every buffer a sane size.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = int64_t{1} << 31;

// Im2col patch blocks (and pointwise row blocks) of about this many bytes:
// the block is written and read again at once, so it should stay in L2.
constexpr int64_t kBlockBytes = 64 << 10;
// Pixels per block are a multiple of the GEMM's row block (6 on AVX2, 8 on AVX-512, 4 on NEON).
constexpr int kRowMultiple = 24;

[[noreturn]] void bad_shape(const std::string& what) { throw Error("E_SHAPE", "conv: " + what); }

void check_range(int64_t v, int64_t lo, int64_t hi, const char* name) {
  if (v < lo || v > hi)
    bad_shape(std::string(name) + " = " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." +
              std::to_string(hi));
}

// The output size of one spatial axis (no ceil mode for Conv).
int64_t conv_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad0, int64_t pad1) {
  const int64_t span = dilation * (k - 1) + 1;
  const int64_t padded = in + pad0 + pad1;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

void check_conv_shape(const ConvShape& s) {
  for (auto [v, name] : {std::pair<int64_t, const char*>{s.in_h, "in_h"},
                         {s.in_w, "in_w"},
                         {s.in_c, "in_c"},
                         {s.out_h, "out_h"},
                         {s.out_w, "out_w"},
                         {s.out_c, "out_c"},
                         {s.kh, "kh"},
                         {s.kw, "kw"},
                         {s.stride_h, "stride_h"},
                         {s.stride_w, "stride_w"},
                         {s.dilation_h, "dilation_h"},
                         {s.dilation_w, "dilation_w"},
                         {s.groups, "groups"}})
    check_range(v, 1, kMaxDim, name);
  for (auto [v, name] : {std::pair<int64_t, const char*>{s.pad_top, "pad_top"},
                         {s.pad_left, "pad_left"},
                         {s.pad_bottom, "pad_bottom"},
                         {s.pad_right, "pad_right"}})
    check_range(v, 0, kMaxDim, name);
  if (s.in_c % s.groups || s.out_c % s.groups)
    bad_shape("groups = " + std::to_string(s.groups) + " must divide in_c = " + std::to_string(s.in_c) +
              " and out_c = " + std::to_string(s.out_c));
  const int64_t oh = conv_out(s.in_h, s.kh, s.stride_h, s.dilation_h, s.pad_top, s.pad_bottom);
  const int64_t ow = conv_out(s.in_w, s.kw, s.stride_w, s.dilation_w, s.pad_left, s.pad_right);
  if (oh != s.out_h || ow != s.out_w)
    bad_shape("output " + std::to_string(s.out_h) + "x" + std::to_string(s.out_w) + " does not match the input, " +
              "kernel, strides, dilations and pads (" + std::to_string(oh) + "x" + std::to_string(ow) + ")");
  const int64_t k = int64_t{s.kh} * s.kw * (s.in_c / s.groups);
  if (int64_t{s.in_h} * s.in_w * s.in_c > kMaxElements || int64_t{s.out_h} * s.out_w * s.out_c > kMaxElements ||
      k * s.out_c > kMaxElements)
    bad_shape("tensors larger than 2^31 elements");
}

int64_t round_down(int64_t v, int64_t m) { return v / m * m; }

}  // namespace

void pack_conv_f32(const KernelTable& kt, const ConvShape& s, const float* weight_ohwi, const float* bias,
                   const Activation& act, PackedConvF32* out) {
  check_conv_shape(s);
  out->shape = s;
  out->act = act;
  out->group_weights.clear();
  out->depthwise_weights.clear();
  out->direct_weights.clear();
  out->bias.assign((s.out_c + kDirectTile - 1) / kDirectTile * kDirectTile, 0.0f);
  if (bias) std::copy(bias, bias + s.out_c, out->bias.begin());
  const int taps = s.kh * s.kw, icg = s.in_c / s.groups, ocg = s.out_c / s.groups;
  const int64_t k = int64_t{taps} * icg;
  if (s.groups == s.in_c && s.out_c == s.in_c) {
    out->method = ConvMethod::Depthwise;
    out->channel_stride = (s.in_c + kDepthwiseChannelAlign - 1) / kDepthwiseChannelAlign * kDepthwiseChannelAlign;
    out->depthwise_weights.assign(static_cast<size_t>(taps) * out->channel_stride, 0.0f);
    for (int c = 0; c < s.in_c; ++c)
      for (int t = 0; t < taps; ++t)
        out->depthwise_weights[static_cast<size_t>(t) * out->channel_stride + c] = weight_ohwi[int64_t{c} * taps + t];
    out->block_pixels = 0;
    return;
  }
  if (s.groups == 1 && kt.cnn && k <= kt.cnn->direct_max_k) {
    out->method = ConvMethod::Direct;
    const int tiles = (s.out_c + kDirectTile - 1) / kDirectTile;
    out->direct_weights.assign(static_cast<size_t>(tiles) * k * kDirectTile, 0.0f);
    for (int oc = 0; oc < s.out_c; ++oc)
      for (int64_t i = 0; i < k; ++i)
        out->direct_weights[(static_cast<size_t>(oc / kDirectTile) * k + i) * kDirectTile + oc % kDirectTile] =
            weight_ohwi[oc * k + i];
    out->block_pixels = 0;
    return;
  }
  const bool pointwise = s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
                         s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  out->method = pointwise ? ConvMethod::Pointwise : ConvMethod::Im2col;
  const int64_t row_floats = pointwise ? std::max<int64_t>(k, s.out_c) : k;
  out->block_pixels = static_cast<int>(std::max<int64_t>(
      kRowMultiple, round_down(std::min<int64_t>(kBlockBytes / (4 * row_floats), 1024), kRowMultiple)));
  out->group_weights.resize(s.groups);
  for (int g = 0; g < s.groups; ++g)
    kt.pack_f32(weight_ohwi + int64_t{g} * ocg * k, ocg, static_cast<int>(k), &out->group_weights[g]);
}

size_t conv_scratch_floats(const PackedConvF32& w) {
  if (w.method != ConvMethod::Im2col) return 0;
  const ConvShape& s = w.shape;
  return static_cast<size_t>(w.block_pixels) * s.kh * s.kw * (s.in_c / s.groups);
}

void run_conv_f32(const CnnKernels& cnn, const ConvF32Args& args) {
  if (args.w->method == ConvMethod::Depthwise)
    cnn.depthwise_f32(args);
  else
    cnn.conv_f32(args);
}

namespace {

// n floats; short runs (the 1-3 channel stems) inline rather than a memcpy call.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, sizeof(float) * n);
  }
}

inline void zero_floats(float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = 0.0f;
}

// Patch rows of pixels [p0, p0 + rows) for group g: for each tap (ky, kx) the
// group's icg input channels, zeros where the tap falls in the padding. With
// one group and no horizontal dilation a row's kw taps are one contiguous run
// of the NHWC input, copied at once.
void im2col(const ConvShape& s, const float* x, int64_t p0, int rows, int g, float* patch) {
  const int icg = s.in_c / s.groups;
  const int64_t row_floats = int64_t{s.kw} * icg;
  const size_t k = static_cast<size_t>(s.kh) * row_floats;
  const bool runs = s.groups == 1 && s.dilation_w == 1;
  PixelPos pos = pixel_pos(p0, s.out_h, s.out_w);
  for (int r = 0; r < rows; ++r, next_pixel(&pos, s.out_h, s.out_w)) {
    const float* image = x + pos.image * s.in_h * s.in_w * s.in_c + int64_t{g} * icg;
    const int ix0 = pos.ox * s.stride_w - s.pad_left;
    float* dst = patch + r * k;
    for (int ky = 0; ky < s.kh; ++ky, dst += row_floats) {
      const int iy = pos.oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      if (iy < 0 || iy >= s.in_h) {
        zero_floats(dst, row_floats);
        continue;
      }
      const float* src_row = image + int64_t{iy} * s.in_w * s.in_c;
      if (runs) {
        const int first = std::min(s.kw, std::max(0, -ix0));
        const int last = std::max(first, std::min(s.kw, s.in_w - ix0));  // taps [first, last) are inside
        zero_floats(dst, int64_t{first} * icg);
        copy_floats(dst + int64_t{first} * icg, src_row + int64_t{ix0 + first} * s.in_c, int64_t{last - first} * icg);
        zero_floats(dst + int64_t{last} * icg, int64_t{s.kw - last} * icg);
        continue;
      }
      for (int kx = 0; kx < s.kw; ++kx) {
        const int ix = ix0 + kx * s.dilation_w;
        if (ix < 0 || ix >= s.in_w)
          zero_floats(dst + int64_t{kx} * icg, icg);
        else
          copy_floats(dst + int64_t{kx} * icg, src_row + int64_t{ix} * s.in_c, icg);
      }
    }
  }
}

}  // namespace

void conv_gemm_f32(BiasActF32 bias_act, const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int icg = s.in_c / s.groups, ocg = s.out_c / s.groups;
  const size_t k = static_cast<size_t>(s.kh) * s.kw * icg;
  if (a.pixel_begin >= a.pixel_end || a.oc_begin >= a.oc_end) return;
  const int g_first = a.oc_begin / ocg, g_last = (a.oc_end - 1) / ocg;
  for (int64_t p0 = a.pixel_begin; p0 < a.pixel_end; p0 += w.block_pixels) {
    const int rows = static_cast<int>(std::min<int64_t>(w.block_pixels, a.pixel_end - p0));
    float* y = a.y + p0 * s.out_c;
    for (int g = g_first; g <= g_last; ++g) {
      const PackedF32& wg = w.group_weights[g];
      const int n_begin = std::max(a.oc_begin, g * ocg) - g * ocg;
      const int n_end = std::min(a.oc_end, (g + 1) * ocg) - g * ocg;
      GemmF32Args gemm{nullptr, k, rows, &wg, y + int64_t{g} * ocg, static_cast<size_t>(s.out_c), n_begin, n_end};
      if (w.method == ConvMethod::Pointwise) {
        // 1x1 stride 1 unpadded: pixel p of the batch is input row p.
        gemm.x = a.x + p0 * s.in_c + int64_t{g} * icg;
        gemm.ldx = static_cast<size_t>(s.in_c);
      } else {
        im2col(s, a.x, p0, rows, g, a.scratch);
        gemm.x = a.scratch;
      }
      wg.packer->gemm_f32(gemm);
    }
    bias_act(y + a.oc_begin, static_cast<size_t>(s.out_c), rows, a.oc_end - a.oc_begin, w.bias.data() + a.oc_begin,
             w.act);
  }
}

}  // namespace edgeopt
