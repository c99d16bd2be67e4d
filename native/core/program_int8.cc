// The int8 ops of a compiled Program (program.h QuantizeSpec ... QConcatSpec):
// integer loops that define the results (the TS twin, lib/backends/ts/cnn/int8.ts,
// is bit-identical). Convolutions and element-wise ops split their chunk of
// images over the thread pool (parallel_cnn.h); the rest run on the calling thread.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cnn_conv.h"
#include "depthwise_pairs.h"
#include "error.h"
#include "parallel_cnn.h"
#include "program_ops.h"

namespace edgeopt {
namespace {

inline int8_t clamp_s8(int32_t v, int32_t lo = -128, int32_t hi = 127) {
  return static_cast<int8_t>(std::min(std::max(v, lo), hi));
}

// Taps [first, last] of a window starting at `start` (k taps `dilation` apart) inside [lo, hi).
inline void window_taps(int start, int k, int dilation, int lo, int hi, int* first, int* last) {
  *first = start >= lo ? 0 : std::min(k, (lo - start + dilation - 1) / dilation);
  const int reach = hi - 1 - start;
  *last = reach < 0 ? -1 : std::min(k - 1, reach / dilation);
}

// Quantization on the table's SIMD loop when it has one (the same integers).
struct QuantizeOp : CompiledProgram::Op {
  QuantizeSpec s;
  void (*simd)(const float*, size_t, float, int32_t, int8_t*);
  QuantizeOp(const KernelTable& kt, const QuantizeSpec& q) : s(q), simd(kt.quantize_static_s8) {}
  void run(const RunContext& c) const override { run_elements(c, 0, s.count * c.batch); }
  void run_elements(const RunContext& c, int64_t begin, int64_t end) const {
    if (s.dequantize) {
      const int8_t* x = c.at<int8_t>(s.x);
      float* y = c.f(s.y);
      for (int64_t i = begin; i < end; ++i) y[i] = static_cast<float>(x[i] - s.grid.zero_point) * s.grid.scale;
    } else {
      const float* x = c.f(s.x) + begin;
      int8_t* y = c.at<int8_t>(s.y) + begin;
      if (simd) return simd(x, static_cast<size_t>(end - begin), s.grid.scale, s.grid.zero_point, y);
      for (int64_t i = 0; i < end - begin; ++i) y[i] = quantize_static_s8(x[i], s.grid);
    }
  }
  TeamShape team() const override { return {TeamRole::Pixelwise, 0, {s.x}, s.y}; }
  void run_pixels(const RunContext& c, int64_t begin, int64_t end, int64_t pixels) const override {
    run_elements(c, begin * (s.count / pixels), end * (s.count / pixels));
  }
  std::string kernel() const override { return simd && !s.dequantize ? "quantize+simd" : ""; }
};

// The epilogue of a QConvSpec: int32 accumulators plus the bias, requantized per
// output channel with the Q31 multiplier and shift, offset and clamped to int8. The
// table's SIMD loop when it has one and no multiplier shifts left (conv multipliers
// are below 1 in practice), else the portable loop; the integers are the same.
struct ConvRequantize {
  std::vector<int32_t> bias, m0, right;
  std::vector<QuantizedMultiplier> multipliers;
  int32_t zero_point, lo, hi;
  bool left = false;  // some multiplier shifts left
  void (*simd)(const RequantizeS8Args&) = nullptr;
  ConvRequantize(const KernelTable* kt, const QConvSpec& q, const std::vector<TensorSpec>& t)
      : zero_point(q.output_zero_point), lo(q.lo), hi(q.hi) {
    const int n = q.shape.out_c;
    const auto* b = static_cast<const int32_t*>(t[q.bias].data);
    const auto* m = static_cast<const int32_t*>(t[q.multipliers].data);
    const auto* sh = static_cast<const int32_t*>(t[q.shifts].data);
    bias.assign(b, b + n);
    m0.assign(m, m + n);
    for (int i = 0; i < n; ++i) {
      multipliers.push_back({m[i], static_cast<int>(sh[i])});
      right.push_back(sh[i] > 0 ? 0 : -sh[i]);
      left = left || sh[i] > 0;
    }
    if (kt && !left) simd = kt->requantize_s8;
  }
  // y[r][j] for m rows of out_c accumulators (row strides ldc, ldy).
  void run(const int32_t* c, size_t ldc, int m, int8_t* y, size_t ldy) const {
    const int n = static_cast<int>(bias.size());
    if (simd) return simd({c, ldc, m, n, bias.data(), m0.data(), right.data(), zero_point, lo, hi, y, ldy});
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n; ++j)
        y[r * ldy + j] =
            clamp_s8(multiply_by_quantized_multiplier(c[r * ldc + j] + bias[j], multipliers[j]) + zero_point, lo, hi);
  }
};

// Scratch of the int8 convolutions, one per thread (pool workers and callers),
// grown to the largest block and kept: no allocation per run once warm.
struct ConvScratch {
  std::vector<uint8_t> patch, rows;
  std::vector<int32_t> acc, zero_points;
  std::vector<const int8_t*> taps;
};
ConvScratch& conv_scratch() {
  thread_local ConvScratch scratch;
  return scratch;
}
template <typename T>
T* at_least(std::vector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
  return v->data();
}

// ceil(a / b) for b > 0 and a >= 0, or a < 0 (then <= 0).
inline int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -(-a / b); }

// A depthwise int8 convolution on the table's depthwise_s8: one output row at a
// time, each tap's input pixel by pointer (padding taps point at a row of the
// input zero point, so they add zx * w), and the zero-point term
// -zx * (sum of the channel's weights) starts every sum: the accumulator is
// QConvSpec's sum over in-range taps of (x - zx) * w exactly. Output rows are
// split over the threads.
struct QDepthwiseOp : CompiledProgram::Op {
  QConvSpec s;
  const KernelTable& kt;
  std::vector<int16_t> weight;  // [tap][channel]
  std::vector<int16_t> pairs;   // weight in the table's tap-pair layout, if it has one
  std::vector<int32_t> init;    // -zx * the sum of each channel's weights
  std::vector<int8_t> padding;  // a run of the input zero point
  ConvRequantize requantize;
  QDepthwiseOp(const KernelTable& table, const QConvSpec& q, const std::vector<TensorSpec>& t)
      : s(q), kt(table), requantize(&table, q, t) {
    const ConvShape& p = s.shape;
    const int taps = p.kh * p.kw, c = p.out_c;
    const auto* w = static_cast<const int8_t*>(t[q.weight].data);
    weight.resize(static_cast<size_t>(taps) * c);
    init.assign(c, 0);
    for (int ch = 0; ch < c; ++ch)
      for (int tap = 0; tap < taps; ++tap) {
        weight[static_cast<size_t>(tap) * c + ch] = w[ch * taps + tap];
        init[ch] -= q.input_zero_point * w[ch * taps + tap];
      }
    // Long enough for a row segment whose taps of one kernel row all read it (a row above or below the image).
    padding.assign(static_cast<size_t>(p.out_w) * p.stride_w * c + c, static_cast<int8_t>(q.input_zero_point));
    pairs = pack_depthwise_pairs(weight.data(), taps, c, kt.depthwise_pair_channels);
  }
  void run(const RunContext& c) const override {
    const ConvShape& p = s.shape;
    const double row_cost = static_cast<double>(p.out_w) * p.kh * p.kw * p.out_c;
    split_range(c.pool, int64_t{c.batch} * p.out_h, 1, row_cost, [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) run_row(c, row, 0, p.out_w);
    });
  }
  TeamShape team() const override { return {TeamRole::Spatial, int64_t{s.shape.out_h} * s.shape.out_w, {s.x}, s.y}; }
  void run_pixels(const RunContext& c, int64_t begin, int64_t end, int64_t) const override {
    const int w = s.shape.out_w;
    for (int64_t row = begin / w; row * w < end; ++row)
      run_row(c, row, static_cast<int>(std::max<int64_t>(0, begin - row * w)),
              static_cast<int>(std::min<int64_t>(w, end - row * w)));
  }
  // Output columns [ox0, ox1) of output row `row` (of the batch's rows): the
  // columns whose taps all lie inside the input row in one call that steps
  // along it, each edge column in a call of its own.
  void run_row(const RunContext& c, int64_t row, int ox0, int ox1) const {
    const ConvShape& p = s.shape;
    const int taps = p.kh * p.kw, cols = ox1 - ox0;
    ConvScratch& scratch = conv_scratch();
    const int8_t** x = at_least(&scratch.taps, static_cast<size_t>(taps));
    int32_t* acc = at_least(&scratch.acc, static_cast<size_t>(cols) * p.out_c);
    const int64_t n = row / p.out_h;
    const int oy = static_cast<int>(row % p.out_h);
    const int8_t* image = c.at<int8_t>(s.x) + n * p.in_h * p.in_w * p.in_c;
    const int64_t step = int64_t{p.stride_w} * p.in_c;
    // Columns [ox, ox + count): each tap's input for column ox, or the zero-point run.
    auto columns = [&](int ox, int count) {
      for (int ky = 0, t = 0; ky < p.kh; ++ky) {
        const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
        for (int kx = 0; kx < p.kw; ++kx, ++t) {
          const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
          const bool inside = iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w;
          x[t] = inside ? image + (int64_t{iy} * p.in_w + ix) * p.in_c : padding.data();
        }
      }
      kt.depthwise_s8({x, step, count, taps, p.out_c, weight.data(), init.data(), acc + int64_t{ox - ox0} * p.out_c,
                       pairs.empty() ? nullptr : pairs.data()});
    };
    // [lo, hi): the columns whose kw taps all read input columns 0 .. in_w - 1.
    const int lo = std::clamp(ceil_div(p.pad_left, p.stride_w), ox0, ox1);
    const int hi = std::clamp(ceil_div(p.in_w + p.pad_left - (p.kw - 1) * p.dilation_w, p.stride_w), lo, ox1);
    for (int ox = ox0; ox < lo; ++ox) columns(ox, 1);
    if (lo < hi) columns(lo, hi - lo);
    for (int ox = hi; ox < ox1; ++ox) columns(ox, 1);
    requantize.run(acc, p.out_c, cols, c.at<int8_t>(s.y) + (row * p.out_w + ox0) * p.out_c, p.out_c);
  }
  std::string kernel() const override {
    return std::string("qdepthwise-") + kt.name + (requantize.simd ? "" : "+loop");
  }
};

// The accumulator of QConvSpec, sum over in-range taps of (x - zx) * w, is computed as
// sum x * w - zx * (sum of that tap's weights): the inner loops are plain int8 dot
// products over a group's input channels that the compiler vectorizes, and the
// integers are the same. Grouped convolutions that are not depthwise; dense ones run
// QConvGemmOp, depthwise ones QDepthwiseOp.
struct QConvOp : CompiledProgram::Op {
  QConvSpec s;
  std::vector<int8_t> weight;     // OHWI
  std::vector<int32_t> tap_sums;  // zx * the sum over input channels of each tap's weights: [oc][tap]
  ConvRequantize requantize;
  TeamShape team() const override { return {TeamRole::Serial, 0, {s.x}, s.y}; }
  QConvOp(const KernelTable& kt, const QConvSpec& q, const std::vector<TensorSpec>& t) : s(q), requantize(&kt, q, t) {
    const ConvShape& p = s.shape;
    const int taps = p.kh * p.kw, icg = p.in_c / p.groups;
    const auto* w = static_cast<const int8_t*>(t[q.weight].data);
    weight.assign(w, w + t[q.weight].elements);
    tap_sums.assign(static_cast<size_t>(p.out_c) * taps, 0);
    for (int oc = 0; oc < p.out_c; ++oc)
      for (int tap = 0; tap < taps; ++tap) {
        int32_t sum = 0;
        for (int ci = 0; ci < icg; ++ci) sum += w[(oc * taps + tap) * icg + ci];
        tap_sums[oc * taps + tap] = q.input_zero_point * sum;
      }
  }
  void run(const RunContext& c) const override {
    const ConvShape& p = s.shape;
    const int icg = p.in_c / p.groups, ocg = p.out_c / p.groups, taps = p.kh * p.kw;
    const int8_t* xs = c.at<int8_t>(s.x);
    int8_t* ys = c.at<int8_t>(s.y);
    const double row_cost = static_cast<double>(p.out_w) * taps * p.out_c * icg;
    split_range(c.pool, int64_t{c.batch} * p.out_h, 1, row_cost, [&](int64_t b, int64_t e) {
      int32_t* a = at_least(&conv_scratch().acc, static_cast<size_t>(p.out_c));
      for (int64_t row = b; row < e; ++row) {
        const int oy = static_cast<int>(row % p.out_h);
        const int8_t* x = xs + row / p.out_h * p.in_h * p.in_w * p.in_c;
        for (int ox = 0; ox < p.out_w; ++ox) {
          std::fill(a, a + p.out_c, 0);
          for (int ky = 0; ky < p.kh; ++ky) {
            const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < p.kw; ++kx) {
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= p.in_w) continue;
              const int tap = ky * p.kw + kx;
              const int8_t* xp = x + (static_cast<int64_t>(iy) * p.in_w + ix) * p.in_c;
              for (int oc = 0; oc < p.out_c; ++oc) {
                const int8_t* xg = xp + (oc / ocg) * icg;
                const int8_t* wp = weight.data() + (static_cast<int64_t>(oc) * taps + tap) * icg;
                int32_t sum = 0;
                for (int ci = 0; ci < icg; ++ci) sum += xg[ci] * wp[ci];
                a[oc] += sum - tap_sums[oc * taps + tap];
              }
            }
          }
          requantize.run(a, 0, 1, ys + (row * p.out_w + ox) * p.out_c, 0);
        }
      }
    });
  }
  std::string kernel() const override { return std::string("qconv-grouped") + (requantize.simd ? "+simd" : ""); }
};

// Pixels per GEMM block: the uint8 patch rows of a block stay in L2 (about 64 KiB),
// a multiple of the tables' row blocks (6 on AVX2, 4 on NEON), at most 1024.
constexpr int kRowMultiple = 12;
int qconv_block_pixels(int64_t k) {
  constexpr int64_t kBlockBytes = 64 << 10;
  const int64_t rows = std::min<int64_t>(kBlockBytes / k, 1024) / kRowMultiple * kRowMultiple;
  return static_cast<int>(std::max<int64_t>(kRowMultiple, rows));
}

// Int8 -> the uint8 the GEMM reads (x + 128: flip the sign bit).
inline void to_u8(const int8_t* x, int64_t n, uint8_t* a) {
  for (int64_t i = 0; i < n; ++i) a[i] = static_cast<uint8_t>(x[i]) ^ 0x80;
}

// Bytes a buffer read or written by copy_run holds past its last run.
constexpr int64_t kRunSlack = 8;

// Copies n bytes; short runs by 8-byte words, which read and write up to 7
// bytes past the run (into the buffers' slack, or the next run, written
// after): a call per tap costs more than the copy when in_c is small.
inline void copy_run(uint8_t* dst, const uint8_t* src, int64_t n) {
  if (n >= 64) return static_cast<void>(std::memcpy(dst, src, static_cast<size_t>(n)));
  for (int64_t i = 0; i < n; i += 8) std::memcpy(dst + i, src + i, 8);
}

// Patch rows (OHWI tap order) of output pixels [p0, p0 + rows) in uint8, the
// padding taps holding `pad` (the GEMM's zero point, so they add nothing).
// For each output row, the kh input rows its windows read are converted once
// into `buffer` with their padding columns written out, so a pixel's patch is
// kh runs of kw * in_c bytes (dilation_w 1; else kw runs of in_c) with no
// bounds tests. Rows are `lda` bytes apart (the bytes past k meet zero
// weights); `patch` needs kRunSlack bytes past the last row.
void im2col_u8(const ConvShape& s, const int8_t* x, int64_t p0, int rows, uint8_t pad, uint8_t* patch, int64_t lda,
               std::vector<uint8_t>* buffer) {
  const int64_t width = int64_t{s.out_w - 1} * s.stride_w + int64_t{s.kw - 1} * s.dilation_w + 1;
  const int64_t first = std::min<int64_t>(width, s.pad_left);  // columns [first, last) are input pixels
  const int64_t last = std::clamp<int64_t>(int64_t{s.pad_left} + s.in_w, first, width);
  const int64_t row_bytes = width * s.in_c + kRunSlack;
  uint8_t* padded = at_least(buffer, static_cast<size_t>(s.kh * row_bytes));
  const int64_t run = s.dilation_w == 1 ? int64_t{s.kw} * s.in_c : s.in_c;
  const int runs = s.dilation_w == 1 ? 1 : s.kw;
  const int64_t step = int64_t{s.stride_w} * s.in_c, tap_step = int64_t{s.dilation_w} * s.in_c;
  PixelPos pos = pixel_pos(p0, s.out_h, s.out_w);
  // One output row's pixels at a time: its input rows built once, then each
  // pixel's runs (a stem's are 3 bytes: the loop, not the copy, is the cost).
  for (int r = 0; r < rows;) {
    const int8_t* image = x + pos.image * s.in_h * s.in_w * s.in_c;
    for (int ky = 0; ky < s.kh; ++ky) {
      uint8_t* row = padded + ky * row_bytes;
      const int iy = pos.oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      if (iy < 0 || iy >= s.in_h) {
        std::memset(row, pad, static_cast<size_t>(width * s.in_c));
        continue;
      }
      std::memset(row, pad, static_cast<size_t>(first * s.in_c));
      to_u8(image + (int64_t{iy} * s.in_w + first - s.pad_left) * s.in_c, (last - first) * s.in_c,
            row + first * s.in_c);
      std::memset(row + last * s.in_c, pad, static_cast<size_t>((width - last) * s.in_c));
    }
    const int n = std::min(rows - r, s.out_w - pos.ox);
    const uint8_t* first_src = padded + int64_t{pos.ox} * step;
    for (int i = 0; i < n; ++i) {
      uint8_t* dst = patch + (r + i) * lda;
      const uint8_t* src = first_src + i * step;
      if (runs == 1 && run <= 8) {  // short runs: one word each, in order (each overwrites the last's spill)
        for (int ky = 0; ky < s.kh; ++ky) std::memcpy(dst + ky * run, src + ky * row_bytes, 8);
        continue;
      }
      for (int ky = 0; ky < s.kh; ++ky)
        for (int t = 0; t < runs; ++t, dst += run) copy_run(dst, src + ky * row_bytes + t * tap_step, run);
    }
    r += n;
    pos.ox += n - 1;
    next_pixel(&pos, s.out_h, s.out_w);
  }
}

// A dense (one group) int8 convolution as the kernel table's uint8 x int8 GEMM:
// rows are output pixels, columns output channels, k = kh * kw * in_c in OHWI
// order, weights packed once here. Activations enter as x + 128 with zero point
// zx + 128 (as static_quant.h feeds Dense), so the int32 accumulators are
// QConvOp's exactly, and the requantization is the same formula. Patch rows
// are padded to whole 4-byte k steps against zero weights (the sums are the
// same): the x86 GEMMs read such rows in place instead of copying each one.
struct QConvGemmOp : CompiledProgram::Op {
  QConvSpec s;
  const KernelTable& kt;
  PackedS8 weight;
  ConvRequantize requantize;
  bool pointwise;  // 1x1, stride 1, unpadded: patch rows are the input rows
  int block_pixels;
  // The table's gemm_u8s8_requant when it has one and no multiplier shifts
  // left: the int8 outputs straight from the sums in registers, the input
  // zero point folded into these biases (bias - (zp + 128) * col_sums).
  void (*fused)(const GemmU8S8Args&, const RequantizeS8Args&) = nullptr;
  std::vector<int32_t> fused_bias;
  QConvGemmOp(const KernelTable& table, const QConvSpec& q, const std::vector<TensorSpec>& t)
      : s(q), kt(table), requantize(&table, q, t) {
    const ConvShape& p = s.shape;
    const int k = p.kh * p.kw * p.in_c;
    pointwise = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 &&
                p.pad_bottom == 0 && p.pad_right == 0;
    const int lda = pointwise ? k : (k + 3) / 4 * 4;
    const auto* w = static_cast<const int8_t*>(t[q.weight].data);
    std::vector<int8_t> padded(static_cast<size_t>(p.out_c) * lda, 0);
    for (int oc = 0; oc < p.out_c; ++oc) std::memcpy(padded.data() + int64_t{oc} * lda, w + int64_t{oc} * k, k);
    kt.pack_s8(padded.data(), p.out_c, lda, &weight);
    block_pixels = qconv_block_pixels(lda);
    if (!kt.gemm_u8s8_requant || requantize.left) return;
    fused = kt.gemm_u8s8_requant;
    const int64_t zero = s.input_zero_point + 128;
    for (int oc = 0; oc < p.out_c; ++oc)  // int32 wraps as the two-step sums do
      fused_bias.push_back(static_cast<int32_t>(static_cast<uint32_t>(requantize.bias[oc]) -
                                                static_cast<uint32_t>(zero * weight.col_sums[oc])));
  }
  // Output pixels are split over the threads (row-block multiples), each thread
  // running blocks of block_pixels through its own scratch.
  void run(const RunContext& c) const override {
    const ConvShape& p = s.shape;
    const int64_t pixels = int64_t{c.batch} * p.out_h * p.out_w;
    const double pixel_cost = static_cast<double>(weight.k) * p.out_c;
    split_range(c.pool, pixels, kRowMultiple, pixel_cost, [&](int64_t b, int64_t e) { run_pixels(c, b, e, 0); });
  }
  TeamShape team() const override {
    return {pointwise ? TeamRole::Pixelwise : TeamRole::Spatial, int64_t{s.shape.out_h} * s.shape.out_w, {s.x}, s.y};
  }
  void run_pixels(const RunContext& c, int64_t b, int64_t e, int64_t) const override {
    const ConvShape& p = s.shape;
    const int k = weight.k;
    const uint8_t zero = static_cast<uint8_t>(s.input_zero_point + 128);
    const int8_t* x = c.at<int8_t>(s.x);
    int8_t* y = c.at<int8_t>(s.y);
    const int most = static_cast<int>(std::min<int64_t>(block_pixels, e - b));
    ConvScratch& scratch = conv_scratch();
    uint8_t* patch = at_least(&scratch.patch, static_cast<size_t>(most) * k + kRunSlack);
    // The two-step path's int32 sums and per-row zero points (the fused one reads neither).
    int32_t* acc = fused ? nullptr : at_least(&scratch.acc, static_cast<size_t>(most) * p.out_c);
    int32_t* zero_points = fused ? nullptr : at_least(&scratch.zero_points, static_cast<size_t>(most));
    if (!fused) std::fill(zero_points, zero_points + most, int32_t{zero});
    for (int64_t p0 = b; p0 < e; p0 += most) {
      const int rows = static_cast<int>(std::min<int64_t>(most, e - p0));
      if (pointwise)
        to_u8(x + p0 * p.in_c, int64_t{rows} * p.in_c, patch);
      else
        im2col_u8(p, x, p0, rows, zero, patch, k, &scratch.rows);
      const GemmU8S8Args g{patch, static_cast<size_t>(k),       zero_points, rows,   &weight,
                           acc,   static_cast<size_t>(p.out_c), 0,           p.out_c};
      if (fused) {
        const ConvRequantize& q = requantize;
        fused(g, {nullptr, 0, rows, p.out_c, fused_bias.data(), q.m0.data(), q.right.data(), q.zero_point, q.lo, q.hi,
                  y + p0 * p.out_c, static_cast<size_t>(p.out_c)});
        continue;
      }
      kt.gemm_u8s8(g);
      requantize.run(acc, p.out_c, rows, y + p0 * p.out_c, p.out_c);
    }
  }
  std::string kernel() const override { return std::string("qconv-gemm-") + kt.name; }
};

// The lookup on the table's SIMD loop when it has one (byte permutes need a
// CPU feature no table requires), else the portable loop.
struct QLutOp : CompiledProgram::Op {
  QLutSpec s;
  int8_t table[256];
  void (*simd)(const int8_t*, size_t, const int8_t*, int8_t*);
  QLutOp(const KernelTable& kt, const QLutSpec& q, const std::vector<TensorSpec>& t) : s(q), simd(kt.lut_s8) {
    std::memcpy(table, t[q.table].data, 256);
  }
  void run(const RunContext& c) const override { run_elements(c, 0, s.count * c.batch); }
  void run_elements(const RunContext& c, int64_t begin, int64_t end) const {
    const int8_t* x = c.at<int8_t>(s.x) + begin;
    int8_t* y = c.at<int8_t>(s.y) + begin;
    if (simd) return simd(x, static_cast<size_t>(end - begin), table, y);
    for (int64_t i = 0; i < end - begin; ++i) y[i] = table[x[i] + 128];
  }
  TeamShape team() const override { return {TeamRole::Pixelwise, 0, {s.x}, s.y}; }
  void run_pixels(const RunContext& c, int64_t begin, int64_t end, int64_t pixels) const override {
    run_elements(c, begin * (s.count / pixels), end * (s.count / pixels));
  }
  std::string kernel() const override { return simd ? "qlut+simd" : ""; }
};

// Elements are split over the threads. The table's binary_s8 runs them when
// every multiplier shifts right (TFLite's always do); otherwise Add rescales
// each input alone, so its 256 possible terms are tables built here, and the
// output requantization runs on the table's requantize_s8 when there is one
// and the multiplier shifts right, else per element. The integers are
// binary_s8.h's in every case.
struct QBinaryOp : CompiledProgram::Op {
  static constexpr int kChunk = 256;  // elements per requantize_s8 call
  QBinarySpec s;
  BinaryS8Args args{};  // pointers and count set per call
  void (*fused)(const BinaryS8Args&) = nullptr;
  int32_t a_term[256], b_term[256];  // Add: the rescaled input, by q + 128
  void (*simd)(const RequantizeS8Args&) = nullptr;
  std::vector<int32_t> zeros, m0, right;  // kChunk copies of the output multiplier
  QBinaryOp(const KernelTable& kt, const QBinarySpec& q) : s(q) {
    args.mul = s.mul;
    args.a_zero_point = s.a_zero_point, args.b_zero_point = s.b_zero_point, args.left_shift = s.left_shift;
    args.a_m0 = s.a_rescale.m0, args.a_right = -s.a_rescale.shift;
    args.b_m0 = s.b_rescale.m0, args.b_right = -s.b_rescale.shift;
    args.m0 = s.output.m0, args.right = -s.output.shift;
    args.zero_point = s.output_zero_point, args.lo = s.lo, args.hi = s.hi;
    const bool right_only = s.output.shift <= 0 && (s.mul || (s.a_rescale.shift <= 0 && s.b_rescale.shift <= 0));
    if (kt.binary_s8 && right_only) {
      fused = kt.binary_s8;
      return;
    }
    for (int v = -128; v < 128; ++v) {
      a_term[v + 128] = multiply_by_quantized_multiplier((v - s.a_zero_point) * (1 << s.left_shift), s.a_rescale);
      b_term[v + 128] = multiply_by_quantized_multiplier((v - s.b_zero_point) * (1 << s.left_shift), s.b_rescale);
    }
    if (!kt.requantize_s8 || s.output.shift > 0) return;
    simd = kt.requantize_s8;
    zeros.assign(kChunk, 0);
    m0.assign(kChunk, s.output.m0);
    right.assign(kChunk, -s.output.shift);
  }
  int32_t sum(int8_t a, int8_t b) const {
    return s.mul ? (a - s.a_zero_point) * (b - s.b_zero_point) : a_term[a + 128] + b_term[b + 128];
  }
  void run(const RunContext& c) const override {
    split_range(c.pool, s.count * c.batch, kChunk, 8.0,
                [&](int64_t begin, int64_t end) { run_elements(c, begin, end); });
  }
  TeamShape team() const override { return {TeamRole::Pixelwise, 0, {s.a, s.b}, s.y}; }
  void run_pixels(const RunContext& c, int64_t begin, int64_t end, int64_t pixels) const override {
    run_elements(c, begin * (s.count / pixels), end * (s.count / pixels));
  }
  void run_elements(const RunContext& c, int64_t begin, int64_t end) const {
    const int8_t* a = c.at<int8_t>(s.a);
    const int8_t* b = c.at<int8_t>(s.b);
    int8_t* y = c.at<int8_t>(s.y);
    if (fused) {
      BinaryS8Args p = args;
      p.a = a + begin, p.b = b + begin, p.y = y + begin, p.n = static_cast<size_t>(end - begin);
      return fused(p);
    }
    if (!simd) {
      for (int64_t i = begin; i < end; ++i)
        y[i] = clamp_s8(multiply_by_quantized_multiplier(sum(a[i], b[i]), s.output) + s.output_zero_point, s.lo, s.hi);
      return;
    }
    int32_t acc[kChunk];
    for (int64_t i = begin; i < end; i += kChunk) {
      const int n = static_cast<int>(std::min<int64_t>(kChunk, end - i));
      for (int j = 0; j < n; ++j) acc[j] = sum(a[i + j], b[i + j]);
      simd({acc, 0, 1, n, zeros.data(), m0.data(), right.data(), s.output_zero_point, s.lo, s.hi, y + i, 0});
    }
  }
  std::string kernel() const override { return fused ? "qbinary-simd" : simd ? "qbinary+simd" : "qbinary"; }
};

struct QPoolOp : CompiledProgram::Op {
  QPoolSpec s;
  explicit QPoolOp(const QPoolSpec& q) : s(q) { check_pool_shape(s.shape); }
  TeamShape team() const override { return {TeamRole::Serial, 0, {s.x}, s.y}; }
  void run(const RunContext& c) const override {
    const PoolShape& p = s.shape;
    const bool max = s.kind == PoolKind::Max;
    std::vector<int32_t> acc(p.c);
    for (int n = 0; n < c.batch; ++n) {
      const int8_t* x = c.at<int8_t>(s.x) + static_cast<int64_t>(n) * p.in_h * p.in_w * p.c;
      int8_t* y = c.at<int8_t>(s.y) + static_cast<int64_t>(n) * p.out_h * p.out_w * p.c;
      for (int oy = 0; oy < p.out_h; ++oy) {
        const int sy = oy * p.stride_h - p.pad_top;
        int fy, ly, py0, py1;
        window_taps(sy, p.kh, p.dilation_h, 0, p.in_h, &fy, &ly);
        window_taps(sy, p.kh, p.dilation_h, -p.pad_top, p.in_h + p.pad_bottom, &py0, &py1);
        for (int ox = 0; ox < p.out_w; ++ox) {
          const int sx = ox * p.stride_w - p.pad_left;
          int fx, lx, px0, px1;
          window_taps(sx, p.kw, p.dilation_w, 0, p.in_w, &fx, &lx);
          window_taps(sx, p.kw, p.dilation_w, -p.pad_left, p.in_w + p.pad_right, &px0, &px1);
          std::fill(acc.begin(), acc.end(), max ? -128 : 0);
          for (int ky = fy; ky <= ly; ++ky)
            for (int kx = fx; kx <= lx; ++kx) {
              const int8_t* xp =
                  x + ((static_cast<int64_t>(sy) + ky * p.dilation_h) * p.in_w + sx + kx * p.dilation_w) * p.c;
              for (int ch = 0; ch < p.c; ++ch) acc[ch] = max ? std::max<int32_t>(acc[ch], xp[ch]) : acc[ch] + xp[ch];
            }
          int8_t* out = y + (static_cast<int64_t>(oy) * p.out_w + ox) * p.c;
          if (max) {
            for (int ch = 0; ch < p.c; ++ch) out[ch] = static_cast<int8_t>(acc[ch]);
            continue;
          }
          const int32_t count = p.count_include_pad ? std::max(0, py1 - py0 + 1) * std::max(0, px1 - px0 + 1)
                                                    : (ly - fy + 1) * (lx - fx + 1);
          for (int ch = 0; ch < p.c; ++ch) {
            const int32_t half = count / 2;
            out[ch] = count <= 0 ? 0 : clamp_s8((acc[ch] >= 0 ? acc[ch] + half : acc[ch] - half) / count);
          }
        }
      }
    }
  }
};

struct QGlobalAvgPoolOp : CompiledProgram::Op {
  QGlobalAvgPoolSpec s;
  explicit QGlobalAvgPoolOp(const QGlobalAvgPoolSpec& q) : s(q) {}
  TeamShape team() const override { return {TeamRole::Serial, 0, {s.x}, s.y}; }
  void run(const RunContext& c) const override {
    std::vector<int32_t> acc(s.c);
    for (int n = 0; n < c.batch; ++n) {
      const int8_t* x = c.at<int8_t>(s.x) + static_cast<int64_t>(n) * s.pixels * s.c;
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t p = 0; p < s.pixels; ++p)
        for (int ch = 0; ch < s.c; ++ch) acc[ch] += x[p * s.c + ch] - s.input_zero_point;
      int8_t* y = c.at<int8_t>(s.y) + static_cast<int64_t>(n) * s.c;
      for (int ch = 0; ch < s.c; ++ch)
        y[ch] = clamp_s8(multiply_by_quantized_multiplier(acc[ch], s.output) + s.output_zero_point);
    }
  }
};

struct QConcatOp : CompiledProgram::Op {
  QConcatSpec s;
  explicit QConcatOp(const QConcatSpec& q) : s(q) {}
  TeamShape team() const override { return {TeamRole::Serial, 0, s.inputs, s.y}; }
  void run(const RunContext& c) const override {
    int64_t total = 0;
    for (int64_t size : s.sizes) total += size;
    int8_t* y = c.at<int8_t>(s.y);
    const int64_t outer = s.outer * c.batch;
    for (int64_t r = 0; r < outer; ++r) {
      int8_t* out = y + r * total;
      for (size_t i = 0; i < s.inputs.size(); ++i) {
        const int64_t size = s.sizes[i];
        const int8_t* x = c.at<int8_t>(s.inputs[i]) + r * size;
        if (!s.rescale[i])
          std::memcpy(out, x, static_cast<size_t>(size));
        else
          for (int64_t j = 0; j < size; ++j)
            out[j] = clamp_s8(multiply_by_quantized_multiplier(x[j] - s.zero_points[i], s.multipliers[i]) +
                              s.output_zero_point);
        out += size;
      }
    }
  }
};

}  // namespace

std::unique_ptr<CompiledProgram::Op> compile_int8_op(const KernelTable& kt, const OpVariant& v,
                                                     const std::vector<TensorSpec>& t) {
  if (const auto* q = std::get_if<QuantizeSpec>(&v)) return std::make_unique<QuantizeOp>(kt, *q);
  if (const auto* q = std::get_if<QConvSpec>(&v)) {
    const ConvShape& p = q->shape;
    if (p.groups == 1) return std::make_unique<QConvGemmOp>(kt, *q, t);
    if (p.groups == p.in_c && p.groups == p.out_c && kt.depthwise_s8) return std::make_unique<QDepthwiseOp>(kt, *q, t);
    return std::make_unique<QConvOp>(kt, *q, t);
  }
  if (const auto* q = std::get_if<QLutSpec>(&v)) return std::make_unique<QLutOp>(kt, *q, t);
  if (const auto* q = std::get_if<QBinarySpec>(&v)) return std::make_unique<QBinaryOp>(kt, *q);
  if (const auto* q = std::get_if<QPoolSpec>(&v)) return std::make_unique<QPoolOp>(*q);
  if (const auto* q = std::get_if<QGlobalAvgPoolSpec>(&v)) return std::make_unique<QGlobalAvgPoolOp>(*q);
  if (const auto* q = std::get_if<QConcatSpec>(&v)) return std::make_unique<QConcatOp>(*q);
  throw Error("E_UNSUPPORTED_OP", "not an int8 op");
}

}  // namespace edgeopt
