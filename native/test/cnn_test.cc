// Native tests of the CNN kernels (cnn_kernels.h), no Node:
// 1. the scalar table against naive references written here, independently:
//    convolution in NCHW with double accumulation, pooling, broadcasting,
//    activations in double with libm;
// 2. every other table this CPU runs against the scalar table: bit-identical
//    for everything element-wise, within the documented bound for
//    convolutions (2 * K * 2^-24 * sum|x*w|, times the activation's slope);
// 3. range splits and the thread-pool drivers give the same bits as one call;
// 4. bad shapes throw E_SHAPE.
// Shapes: channels 1, 3, 7, 8, 9, 17, 63, 65; spatial 1, 2, 5, 13; padding on
// every side; stride 2 on odd inputs; dilation 2; groups 1, 2 and C; kernels
// 1, 3, 5, 7. No timing is asserted anywhere.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../core/activation.h"
#include "../core/cnn_kernels.h"
#include "../core/error.h"
#include "../core/parallel_cnn.h"
#include "../core/thread_pool.h"
#include "check.h"

using namespace edgeopt;
using edgeopt::test::failures;

namespace {

constexpr double kU = 1.0 / (1 << 24);  // float unit roundoff
const float kInf = std::numeric_limits<float>::infinity();

std::mt19937 rng(20240515);

std::vector<float> randoms(size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

// First index where two buffers differ bit-wise, or -1.
long first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_bits(a[i], b[i])) return static_cast<long>(i);
  return -1;
}

#define CHECK_SAME(kt, what, got, want)                                                   \
  do {                                                                                    \
    const long at_ = first_difference(got, want);                                         \
    CHECK(at_ < 0, "%s %s: element %ld is %.9g, scalar gives %.9g", (kt).name, what, at_, \
          at_ >= 0 && static_cast<size_t>(at_) < (got).size() ? (got)[at_] : 0.0,         \
          at_ >= 0 && static_cast<size_t>(at_) < (want).size() ? (want)[at_] : 0.0);      \
  } while (0)

// --- Reference activations, in double with libm ---

double ref_activate(double v, const Activation& a) {
  switch (a.kind) {
    case ActKind::None:
      return v;
    case ActKind::Relu:
      return v < 0 ? 0 : v;
    case ActKind::LeakyRelu:
      return v < 0 ? a.alpha * v : v;
    case ActKind::Clip:
      return std::min<double>(std::max<double>(v, a.lo), a.hi);
    case ActKind::HardSigmoid:
      return std::min(1.0, std::max(0.0, a.alpha * v + a.beta));
    case ActKind::HardSwish:
      return v * std::min(1.0, std::max(0.0, v / 6 + 0.5));
    case ActKind::Sigmoid:
      return 1 / (1 + std::exp(-v));
    case ActKind::Tanh:
      return std::tanh(v);
  }
  return v;
}

// The largest |d act / dv|: how far an input error can move the output.
double slope(const Activation& a) {
  switch (a.kind) {
    case ActKind::LeakyRelu:
      return std::max(1.0, std::fabs(static_cast<double>(a.alpha)));
    case ActKind::HardSigmoid:
      return std::fabs(static_cast<double>(a.alpha));
    case ActKind::HardSwish:
      return 1.5;
    case ActKind::Sigmoid:
      return 0.25;
    default:
      return 1.0;
  }
}

const std::vector<Activation>& all_activations() {
  static const std::vector<Activation> acts = {{ActKind::None},
                                               {ActKind::Relu},
                                               {ActKind::LeakyRelu, 0.1f},
                                               {ActKind::Clip, 0, 0, 0.0f, 6.0f},
                                               {ActKind::Clip, 0, 0, -0.5f, kInf},
                                               {ActKind::HardSigmoid, 0.2f, 0.5f},
                                               {ActKind::HardSwish},
                                               {ActKind::Sigmoid},
                                               {ActKind::Tanh}};
  return acts;
}

// Every table this CPU runs (all of them in the emulated build) carries CNN kernels.
std::vector<const CnnKernels*> tables() {
  std::vector<const CnnKernels*> t;
  for (const std::string& name : runnable_kernel_names()) {
    const CnnKernels* cnn = find_kernels(name)->cnn;
    CHECK(cnn != nullptr, "table %s has no CNN kernels", name.c_str());
    if (cnn) t.push_back(cnn);
  }
  return t;
}

const KernelTable& kernel_table_of(const CnnKernels* cnn) {
  for (const std::string& name : runnable_kernel_names())
    if (find_kernels(name)->cnn == cnn) return *find_kernels(name);
  return scalar_kernels();
}

// --- exp_f32 and the activations ---

double ulps(float got, double want) {
  const float w = static_cast<float>(want);
  const double spacing = std::max(std::ldexp(1.0, -149), std::fabs(std::nextafter(w, kInf) - static_cast<double>(w)));
  return std::fabs(static_cast<double>(got) - want) / spacing;
}

void test_exp_accuracy() {
  double worst = 0;
  for (int i = 0; i <= 1000000; ++i) {
    const float x = -87.0f + 175.3f * static_cast<float>(i) / 1000000.0f;
    worst = std::max(worst, ulps(exp_f32(x), std::exp(static_cast<double>(x))));
  }
  CHECK(worst <= 1.0, "exp_f32 is %.3f ulp off libm's exp (at most 1 expected)", worst);
  CHECK(exp_f32(0.0f) == 1.0f, "exp_f32(0) = %.9g", exp_f32(0.0f));
  CHECK(exp_f32(-kInf) == 0.0f && exp_f32(kInf) == kInf && exp_f32(-200.0f) == 0.0f && exp_f32(100.0f) == kInf,
        "exp_f32 limits");
  CHECK(std::isnan(exp_f32(std::nanf(""))), "exp_f32(NaN) must be NaN");
  double worst_tanh = 0, worst_sigmoid = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -12.0f + 24.0f * static_cast<float>(i) / 200000.0f;
    worst_tanh = std::max(worst_tanh, ulps(tanh_f32(x), std::tanh(static_cast<double>(x))));
    if (x > -10.0f) worst_sigmoid = std::max(worst_sigmoid, ulps(sigmoid_f32(x), 1 / (1 + std::exp(-double{x}))));
  }
  CHECK(worst_tanh <= 4.0, "tanh_f32 is %.2f ulp off", worst_tanh);
  CHECK(worst_sigmoid <= 4.0, "sigmoid_f32 is %.2f ulp off", worst_sigmoid);
  std::printf("exp_f32 %.3f ulp, tanh_f32 %.2f ulp, sigmoid_f32 %.2f ulp from libm (double)\n", worst, worst_tanh,
              worst_sigmoid);
}

// Values that exercise every branch: signs, zeros, the tanh switch at 0.25,
// the exp limits, infinities and NaN.
std::vector<float> activation_inputs() {
  std::vector<float> v = randoms(1000, -8.0f, 8.0f);
  for (float x : {0.0f, -0.0f, 0.25f, -0.25f, 0.2499999f, 3.0f, -3.0f, 6.0f, 88.0f, -88.0f, 90.0f, -104.0f, 1e-30f,
                  kInf, -kInf, std::nanf("")})
    v.push_back(x);
  return v;
}

void test_activations() {
  const std::vector<float> x = activation_inputs();
  for (const Activation& act : all_activations()) {
    std::vector<float> want(x.size());
    scalar_cnn_kernels().activation_f32(x.data(), want.data(), x.size(), act);
    for (size_t i = 0; i < x.size(); ++i) {
      CHECK(same_bits(want[i], activate(x[i], act)), "scalar activation_f32 != activate() at %zu", i);
      const double ref = ref_activate(x[i], act);
      if (std::isfinite(x[i]) && std::fabs(x[i]) < 80)
        // Relative to the output, plus (hardsigmoid/hardswish) the rounding of
        // alpha * x before the cancelling + beta, relative to the input.
        CHECK(std::fabs(want[i] - ref) <= 4 * kU * std::fabs(ref) + 2 * kU * std::fabs(x[i]) + 1e-37,
              "activation %d(%.9g) = %.9g, libm %.9g", static_cast<int>(act.kind), x[i], want[i], ref);
    }
    for (const CnnKernels* t : tables()) {
      for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, x.size()}) {
        std::vector<float> got(n), ref(want.begin(), want.begin() + n);
        t->activation_f32(x.data(), got.data(), n, act);
        CHECK_SAME(*t, "activation_f32", got, ref);
      }
      std::vector<float> in_place = x;  // y == x
      t->activation_f32(in_place.data(), in_place.data(), in_place.size(), act);
      CHECK_SAME(*t, "activation_f32 in place", in_place, want);
    }
  }
}

// --- Convolution ---

struct ConvCase {
  ConvShape s;
  Activation act;
  int batch;
  bool bias;
};

std::string describe(const ConvShape& s) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%dx%dx%d->%dx%dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d g%d", s.in_h, s.in_w, s.in_c,
                s.out_h, s.out_w, s.out_c, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.pad_top,
                s.pad_left, s.pad_bottom, s.pad_right, s.groups);
  return buf;
}

// Fills out_h/out_w from the rest; false when the output would be empty.
bool complete(ConvShape* s) {
  const int oh = (s->in_h + s->pad_top + s->pad_bottom - (s->dilation_h * (s->kh - 1) + 1));
  const int ow = (s->in_w + s->pad_left + s->pad_right - (s->dilation_w * (s->kw - 1) + 1));
  if (oh < 0 || ow < 0) return false;
  s->out_h = oh / s->stride_h + 1;
  s->out_w = ow / s->stride_w + 1;
  return true;
}

// Every channel count x every group kind x every kernel size, the other
// attributes cycling through their lists so each value shows up often.
std::vector<ConvCase> conv_cases() {
  const int channels[] = {1, 3, 7, 8, 9, 17, 63, 65};
  const int spatial[] = {1, 2, 5, 13};
  const int kernels[] = {1, 3, 5, 7};
  const int pads[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 1, 2, 1}, {2, 0, 1, 3}, {3, 3, 3, 3}};
  std::vector<ConvCase> cases;
  int cycle = 0;
  for (int c : channels)
    for (int groups_kind = 0; groups_kind < 4; ++groups_kind)
      for (int k : kernels) {
        ++cycle;
        ConvCase cc{};
        ConvShape& s = cc.s;
        s.in_c = c;
        switch (groups_kind) {
          case 0:  // dense
            s.groups = 1;
            s.out_c = channels[(cycle * 3) % 8];
            break;
          case 1:  // two groups
            if (c % 2) continue;
            s.groups = 2;
            s.out_c = 2 * ((cycle % 5) + 1);
            break;
          case 2:  // depthwise
            s.groups = c;
            s.out_c = c;
            break;
          case 3:  // depthwise with a channel multiplier of 2
            s.groups = c;
            s.out_c = 2 * c;
            break;
        }
        s.kh = k;
        s.kw = cycle % 7 == 0 ? std::max(1, k - 2) : k;  // some rectangular kernels
        s.in_h = spatial[cycle % 4];
        s.in_w = spatial[(cycle / 4 + cycle) % 4];
        s.stride_h = 1 + (cycle % 3 == 1);
        s.stride_w = 1 + (cycle % 5 == 2);
        s.dilation_h = 1 + (cycle % 4 == 3);
        s.dilation_w = 1 + (cycle % 6 == 5);
        const int* p = pads[cycle % 5];
        s.pad_top = p[0];
        s.pad_left = p[1];
        s.pad_bottom = p[2];
        s.pad_right = p[3];
        if (k == 1 && (cycle / 4) % 2 == 0) {  // the no-copy GEMM path
          s.stride_h = s.stride_w = 1;
          s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 0;
        }
        // Too small for the kernel: pad to "same" size instead.
        while (!complete(&s)) {
          ++s.pad_bottom;
          ++s.pad_right;
          ++s.pad_top;
          ++s.pad_left;
        }
        cc.act = all_activations()[cycle % all_activations().size()];
        cc.batch = 1 + (cycle % 4 == 0);
        cc.bias = cycle % 3 != 0;
        cases.push_back(cc);
      }
  // The shapes MobileNet and ResNet are made of, at small sizes: a 1x1 on
  // odd pixel counts, a 3x3 stride 2 on an odd input, a 5x5 depthwise.
  auto add = [&](ConvShape s, Activation act) {
    complete(&s);
    cases.push_back({s, act, 1, true});
  };
  add({13, 13, 17, 0, 0, 65, 1, 1}, {ActKind::Clip, 0, 0, 0, 6});
  add({13, 13, 24, 0, 0, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}, {ActKind::Relu});
  add({13, 13, 48, 0, 0, 48, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 48}, {ActKind::HardSwish});
  add({9, 9, 144, 0, 0, 144, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 144}, {ActKind::Clip, 0, 0, 0, 6});
  add({7, 7, 1100, 0, 0, 1100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1100}, {ActKind::None});  // more than one strip
  return cases;
}

// The naive reference: NCHW tensors, OIHW weights, double accumulation.
// Returns y (NHWC, like the kernels) and sum |x * w| + |bias| per output.
void naive_conv(const ConvShape& s, int batch, const std::vector<float>& x_nhwc, const std::vector<float>& w_ohwi,
                const std::vector<float>& bias, const Activation& act, std::vector<double>* y_nhwc,
                std::vector<double>* mag_nhwc) {
  const int icg = s.in_c / s.groups, ocg = s.out_c / s.groups;
  std::vector<double> x(x_nhwc.size()), w(w_ohwi.size());
  for (int n = 0; n < batch; ++n)  // NHWC -> NCHW
    for (int c = 0; c < s.in_c; ++c)
      for (int h = 0; h < s.in_h; ++h)
        for (int ww = 0; ww < s.in_w; ++ww)
          x[((size_t(n) * s.in_c + c) * s.in_h + h) * s.in_w + ww] =
              x_nhwc[((size_t(n) * s.in_h + h) * s.in_w + ww) * s.in_c + c];
  for (int o = 0; o < s.out_c; ++o)  // OHWI -> OIHW
    for (int i = 0; i < icg; ++i)
      for (int ky = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx)
          w[((size_t(o) * icg + i) * s.kh + ky) * s.kw + kx] = w_ohwi[((size_t(o) * s.kh + ky) * s.kw + kx) * icg + i];
  y_nhwc->assign(size_t(batch) * s.out_h * s.out_w * s.out_c, 0);
  mag_nhwc->assign(y_nhwc->size(), 0);
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < s.out_c; ++o) {
      const int g = o / ocg;
      for (int oy = 0; oy < s.out_h; ++oy)
        for (int ox = 0; ox < s.out_w; ++ox) {
          double acc = bias[o], mag = std::fabs(bias[o]);
          for (int i = 0; i < icg; ++i)
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
                const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                const double p = x[((size_t(n) * s.in_c + g * icg + i) * s.in_h + iy) * s.in_w + ix] *
                                 w[((size_t(o) * icg + i) * s.kh + ky) * s.kw + kx];
                acc += p;
                mag += std::fabs(p);
              }
          const size_t at = ((size_t(n) * s.out_h + oy) * s.out_w + ox) * s.out_c + o;
          (*y_nhwc)[at] = ref_activate(acc, act);
          (*mag_nhwc)[at] = mag;
        }
    }
}

std::vector<float> run_conv(const CnnKernels& cnn, const PackedConvF32& w, const std::vector<float>& x, int batch) {
  const ConvShape& s = w.shape;
  std::vector<float> y(size_t(batch) * s.out_h * s.out_w * s.out_c, std::nanf(""));
  std::vector<float> scratch(conv_scratch_floats(w));
  run_conv_f32(cnn, {&w, x.data(), y.data(), batch, 0, int64_t{batch} * s.out_h * s.out_w, 0, s.out_c, scratch.data()});
  return y;
}

void test_conv() {
  const std::vector<ConvCase> cases = conv_cases();
  int methods[4] = {};
  double worst_naive = 0, worst_simd = 0;  // in units of the bound
  for (const ConvCase& cc : cases) {
    const ConvShape& s = cc.s;
    const std::string name = describe(s);
    const int k = s.kh * s.kw * (s.in_c / s.groups);
    const std::vector<float> x = randoms(size_t(cc.batch) * s.in_h * s.in_w * s.in_c);
    const std::vector<float> w = randoms(size_t(s.out_c) * k, -0.5f, 0.5f);
    const std::vector<float> bias = cc.bias ? randoms(s.out_c) : std::vector<float>(s.out_c, 0.0f);
    PackedConvF32 ref_w;
    pack_conv_f32(scalar_kernels(), s, w.data(), cc.bias ? bias.data() : nullptr, cc.act, &ref_w);
    ++methods[static_cast<int>(ref_w.method)];
    const std::vector<float> want = run_conv(scalar_cnn_kernels(), ref_w, x, cc.batch);
    std::vector<double> exact, mag;
    naive_conv(s, cc.batch, x, w, bias, cc.act, &exact, &mag);
    const double sl = slope(cc.act);
    for (size_t i = 0; i < want.size(); ++i) {
      const double bound = sl * (k + 2) * kU * mag[i] + 4 * kU * std::fabs(exact[i]) + 1e-30;
      const double err = std::fabs(want[i] - exact[i]);
      worst_naive = std::max(worst_naive, err / bound);
      if (!(err <= bound)) {
        CHECK(false, "scalar conv %s act %d at %zu: %.9g, naive %.9g (bound %.3g)", name.c_str(),
              static_cast<int>(cc.act.kind), i, want[i], exact[i], bound);
        break;
      }
    }
    for (const CnnKernels* t : tables()) {
      PackedConvF32 pw;
      pack_conv_f32(kernel_table_of(t), s, w.data(), cc.bias ? bias.data() : nullptr, cc.act, &pw);
      const std::vector<float> got = run_conv(*t, pw, x, cc.batch);
      if (pw.method == ConvMethod::Direct) {
        ++methods[3];
        // The scalar definition of Direct is the scalar table's sum, bit for bit.
        CHECK_SAME(scalar_cnn_kernels(), ("direct on scalar " + name).c_str(),
                   run_conv(scalar_cnn_kernels(), pw, x, cc.batch), want);
      }
      for (size_t i = 0; i < want.size(); ++i) {
        const double bound = sl * 2 * (k + 1) * kU * mag[i] + 4 * kU * std::fabs(want[i]) + 1e-30;
        const double err = std::fabs(double{got[i]} - want[i]);
        worst_simd = std::max(worst_simd, err / bound);
        if (!(err <= bound)) {
          CHECK(false, "%s conv %s act %d at %zu: %.9g, scalar %.9g (bound %.3g)", t->name, name.c_str(),
                static_cast<int>(cc.act.kind), i, got[i], want[i], bound);
          break;
        }
      }
    }
  }
  CHECK(methods[0] >= 10 && methods[1] >= 10 && methods[2] >= 10, "conv cases cover every method (%d %d %d)",
        methods[0], methods[1], methods[2]);
  bool direct_tables = false;
  for (const CnnKernels* t : tables()) direct_tables = direct_tables || t->direct_max_k > 0;
  CHECK(!direct_tables || methods[3] >= 10, "conv cases cover the direct method (%d)", methods[3]);
  std::printf(
      "conv: %zu cases (scalar: pointwise %d, im2col %d, depthwise %d; other tables: direct %d); worst error / "
      "bound: scalar vs naive %.3f, tables vs scalar %.3f\n",
      cases.size(), methods[0], methods[1], methods[2], methods[3], worst_naive, worst_simd);
}

// Any split of pixels and channels, and the thread-pool driver, give the
// bits of one whole call.
void test_conv_splits() {
  ThreadPool pool(3);
  for (const ConvCase& cc : conv_cases()) {
    const ConvShape& s = cc.s;
    if (cc.batch * s.out_h * s.out_w < 4) continue;
    const int k = s.kh * s.kw * (s.in_c / s.groups);
    const std::vector<float> x = randoms(size_t(cc.batch) * s.in_h * s.in_w * s.in_c);
    const std::vector<float> w = randoms(size_t(s.out_c) * k);
    for (const CnnKernels* t : tables()) {
      PackedConvF32 pw;
      pack_conv_f32(kernel_table_of(t), s, w.data(), nullptr, cc.act, &pw);
      const std::vector<float> whole = run_conv(*t, pw, x, cc.batch);
      const int64_t pixels = int64_t{cc.batch} * s.out_h * s.out_w;
      std::vector<float> parts(whole.size(), std::nanf(""));
      std::vector<float> scratch(conv_scratch_floats(pw));
      const int64_t pcut[] = {0, pixels / 3, pixels / 3 + 1, pixels};
      const int ccut[] = {0, s.out_c / 2 + (s.out_c > 2), s.out_c};
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
          run_conv_f32(
              *t, {&pw, x.data(), parts.data(), cc.batch, pcut[i], pcut[i + 1], ccut[j], ccut[j + 1], scratch.data()});
      CHECK_SAME(*t, ("conv split " + describe(s)).c_str(), parts, whole);
      std::vector<float> threaded(whole.size(), std::nanf(""));
      std::vector<float> pool_scratch(conv_parallel_scratch_floats(pw, &pool));
      conv_f32_parallel(*t, &pool, pw, x.data(), threaded.data(), cc.batch, pool_scratch.data());
      CHECK_SAME(*t, ("conv threaded " + describe(s)).c_str(), threaded, whole);
    }
  }
}

void test_conv_errors() {
  const std::vector<float> w(10000, 0.1f);
  auto expect_shape_error = [&](ConvShape s, const char* what) {
    PackedConvF32 pw;
    bool threw = false;
    try {
      pack_conv_f32(scalar_kernels(), s, w.data(), nullptr, {}, &pw);
    } catch (const Error& e) {
      threw = e.code() == "E_SHAPE";
    }
    CHECK(threw, "pack_conv_f32 accepted %s", what);
  };
  ConvShape good{5, 5, 4, 3, 3, 6, 3, 3};
  PackedConvF32 pw;
  pack_conv_f32(scalar_kernels(), good, w.data(), nullptr, {}, &pw);  // must not throw
  ConvShape s = good;
  s.groups = 3;
  expect_shape_error(s, "groups that do not divide the channels");
  s = good;
  s.out_h = 4;
  expect_shape_error(s, "a wrong output height");
  s = good;
  s.stride_w = 0;
  expect_shape_error(s, "a zero stride");
  s = good;
  s.pad_left = -1;
  expect_shape_error(s, "a negative pad");
  s = good;
  s.in_c = 0;
  expect_shape_error(s, "zero channels");
  s = {1 << 20, 1 << 20, 4, (1 << 20) - 2, (1 << 20) - 2, 4, 3, 3};
  expect_shape_error(s, "an input of 2^42 elements");
}

// --- Pooling ---

struct PoolCase {
  PoolShape s;
  int batch;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  const int channels[] = {1, 3, 7, 8, 9, 17, 63, 65};
  const int spatial[] = {1, 2, 5, 13};
  int cycle = 0;
  for (int c : channels)
    for (int k : {1, 2, 3, 5})
      for (int variant = 0; variant < 3; ++variant) {
        ++cycle;
        PoolShape s;
        s.c = c;
        s.in_h = spatial[cycle % 4];
        s.in_w = spatial[(cycle + variant) % 4];
        s.kh = k;
        s.kw = variant == 2 ? std::max(1, k - 1) : k;
        s.stride_h = 1 + (cycle % 2);
        s.stride_w = 1 + ((cycle / 2) % 2);
        s.dilation_h = 1 + (cycle % 5 == 4);
        s.dilation_w = 1 + (cycle % 7 == 6);
        s.pad_top = s.pad_bottom = std::min(k / 2, cycle % 3);
        s.pad_left = k / 2;
        s.pad_right = (cycle % 4 == 1) ? 0 : k / 2;
        s.count_include_pad = variant == 1;
        const int span_h = s.dilation_h * (s.kh - 1) + 1, span_w = s.dilation_w * (s.kw - 1) + 1;
        const int ph = s.in_h + s.pad_top + s.pad_bottom - span_h, pw = s.in_w + s.pad_left + s.pad_right - span_w;
        if (ph < 0 || pw < 0) continue;
        // Every third case uses ceil_mode's extra output (windows past the pads).
        const bool ceil = cycle % 3 == 0;
        s.out_h = (ceil ? (ph + s.stride_h - 1) : ph) / s.stride_h + 1;
        s.out_w = (ceil ? (pw + s.stride_w - 1) : pw) / s.stride_w + 1;
        try {
          check_pool_shape(s);
        } catch (const Error&) {
          continue;  // a ceil window entirely in the padding: ONNX drops it too
        }
        cases.push_back({s, 1 + (cycle % 4 == 0)});
      }
  return cases;
}

void naive_pool(PoolKind kind, const PoolShape& s, int batch, const std::vector<float>& x, std::vector<double>* y,
                std::vector<double>* mag) {
  y->assign(size_t(batch) * s.out_h * s.out_w * s.c, 0);
  mag->assign(y->size(), 0);
  for (int n = 0; n < batch; ++n)
    for (int oy = 0; oy < s.out_h; ++oy)
      for (int ox = 0; ox < s.out_w; ++ox)
        for (int c = 0; c < s.c; ++c) {
          double acc = kind == PoolKind::Max ? -INFINITY : 0, m = 0;
          int inside = 0, padded = 0;
          for (int ky = 0; ky < s.kh; ++ky)
            for (int kx = 0; kx < s.kw; ++kx) {
              const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
              const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
              if (iy >= -s.pad_top && iy < s.in_h + s.pad_bottom && ix >= -s.pad_left && ix < s.in_w + s.pad_right)
                ++padded;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              ++inside;
              const double v = x[((size_t(n) * s.in_h + iy) * s.in_w + ix) * s.c + c];
              acc = kind == PoolKind::Max ? std::max(acc, v) : acc + v;
              m += std::fabs(v);
            }
          const size_t at = ((size_t(n) * s.out_h + oy) * s.out_w + ox) * s.c + c;
          (*y)[at] = kind == PoolKind::Max ? acc : acc / (s.count_include_pad ? padded : inside);
          (*mag)[at] = m / (s.count_include_pad ? padded : inside);
        }
}

void test_pool() {
  ThreadPool pool(2);
  const std::vector<PoolCase> cases = pool_cases();
  for (const PoolCase& pc : cases) {
    const PoolShape& s = pc.s;
    const std::vector<float> x = randoms(size_t(pc.batch) * s.in_h * s.in_w * s.c, -4, 4);
    const int64_t rows = int64_t{pc.batch} * s.out_h;
    for (PoolKind kind : {PoolKind::Max, PoolKind::Average}) {
      std::vector<float> want(size_t(rows) * s.out_w * s.c);
      auto scalar = kind == PoolKind::Max ? scalar_cnn_kernels().maxpool_f32 : scalar_cnn_kernels().avgpool_f32;
      scalar({&s, x.data(), want.data(), pc.batch, 0, rows});
      std::vector<double> exact, mag;
      naive_pool(kind, s, pc.batch, x, &exact, &mag);
      for (size_t i = 0; i < want.size(); ++i) {
        const double bound = kind == PoolKind::Max ? 0 : (s.kh * s.kw + 1) * kU * mag[i];
        if (!(std::fabs(want[i] - exact[i]) <= bound)) {
          CHECK(false, "scalar %s pool %dx%dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d cip%d -> %dx%d at %zu: %.9g vs %.9g",
                kind == PoolKind::Max ? "max" : "avg", s.in_h, s.in_w, s.c, s.kh, s.kw, s.stride_h, s.stride_w,
                s.dilation_h, s.dilation_w, s.pad_top, s.pad_left, s.pad_bottom, s.pad_right, s.count_include_pad,
                s.out_h, s.out_w, i, want[i], exact[i]);
          break;
        }
      }
      for (const CnnKernels* t : tables()) {
        std::vector<float> got(want.size(), std::nanf(""));
        auto kernel = kind == PoolKind::Max ? t->maxpool_f32 : t->avgpool_f32;
        kernel({&s, x.data(), got.data(), pc.batch, 0, rows / 2});
        kernel({&s, x.data(), got.data(), pc.batch, rows / 2, rows});
        CHECK_SAME(*t, kind == PoolKind::Max ? "maxpool_f32" : "avgpool_f32", got, want);
        std::vector<float> threaded(want.size(), std::nanf(""));
        pool_f32_parallel(*t, &pool, kind, s, x.data(), threaded.data(), pc.batch);
        CHECK_SAME(*t, "pool_f32_parallel", threaded, want);
      }
    }
  }
  std::printf("pool: %zu shapes x max/avg\n", cases.size());
  PoolShape bad{5, 5, 3, 6, 4, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, false};  // row 5's window starts past the input
  bool threw = false;
  try {
    check_pool_shape(bad);
  } catch (const Error& e) {
    threw = e.code() == "E_SHAPE";
  }
  CHECK(threw, "check_pool_shape accepted a window that lies in the padding");
}

void test_global_pool() {
  ThreadPool pool(2);
  for (int c : {1, 3, 7, 8, 9, 17, 63, 65})
    for (int64_t pixels : {1, 4, 25, 169})
      for (int batch : {1, 3}) {
        const std::vector<float> x = randoms(size_t(batch) * pixels * c, -2, 2);
        for (PoolKind kind : {PoolKind::Max, PoolKind::Average}) {
          std::vector<float> want(size_t(batch) * c);
          auto scalar =
              kind == PoolKind::Max ? scalar_cnn_kernels().global_maxpool_f32 : scalar_cnn_kernels().global_avgpool_f32;
          scalar({x.data(), want.data(), batch, pixels, c, 0, c});
          for (int n = 0; n < batch; ++n)
            for (int ch = 0; ch < c; ++ch) {
              double acc = kind == PoolKind::Max ? -INFINITY : 0, mag = 0;
              for (int64_t p = 0; p < pixels; ++p) {
                const double v = x[(n * pixels + p) * c + ch];
                acc = kind == PoolKind::Max ? std::max(acc, v) : acc + v;
                mag += std::fabs(v);
              }
              if (kind == PoolKind::Average) acc /= pixels;
              const double bound = kind == PoolKind::Max ? 0 : (pixels + 1) * kU * mag / pixels;
              CHECK(std::fabs(want[n * c + ch] - acc) <= bound, "scalar global pool c=%d pixels=%lld: %.9g vs %.9g", c,
                    static_cast<long long>(pixels), want[n * c + ch], acc);
            }
          for (const CnnKernels* t : tables()) {
            std::vector<float> got(want.size(), std::nanf(""));
            auto kernel = kind == PoolKind::Max ? t->global_maxpool_f32 : t->global_avgpool_f32;
            kernel({x.data(), got.data(), batch, pixels, c, 0, c / 3});
            kernel({x.data(), got.data(), batch, pixels, c, c / 3, c});
            CHECK_SAME(*t, "global pool", got, want);
            std::vector<float> threaded(want.size(), std::nanf(""));
            global_pool_f32_parallel(*t, &pool, kind, x.data(), threaded.data(), batch, pixels, c);
            CHECK_SAME(*t, "global_pool_f32_parallel", threaded, want);
          }
        }
      }
}

// --- Binary ops ---

struct BinaryCase {
  std::vector<int64_t> dims, a_strides, b_strides;
};

// Contiguous strides for `dims`, 0 where `bdims` (same rank) has a 1.
std::vector<int64_t> strides_for(const std::vector<int64_t>& dims, const std::vector<int64_t>& bdims) {
  std::vector<int64_t> st(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    st[i] = bdims[i] == 1 && dims[i] != 1 ? 0 : s;
    s *= bdims[i];
  }
  return st;
}

int64_t elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

void test_binary() {
  ThreadPool pool(2);
  // Output dims, and the operands' own dims (numpy broadcasting against them).
  const std::vector<std::vector<std::vector<int64_t>>> shapes = {
      {{13, 13, 17}, {13, 13, 17}, {13, 13, 17}},  // same shape (residual add)
      {{13, 13, 17}, {13, 13, 17}, {1, 1, 17}},    // channel vector (squeeze-excite gate)
      {{5, 5, 65}, {1, 1, 65}, {5, 5, 65}},        // vector on the left
      {{5, 7, 9}, {5, 7, 9}, {1, 1, 1}},           // scalar
      {{5, 7, 9}, {1, 1, 1}, {5, 7, 9}},           // scalar on the left
      {{2, 5, 3}, {2, 1, 3}, {1, 5, 1}},           // both broadcast
      {{3, 1, 8}, {3, 1, 8}, {3, 1, 1}},           // per-row scalar (strided rows)
      {{4, 63}, {4, 1}, {1, 63}},                  // outer product
      {{1}, {1}, {1}},                             // one element
      {{2, 3, 4, 5, 6}, {2, 1, 4, 1, 6}, {1, 3, 1, 5, 1}},
  };
  for (const auto& sh : shapes) {
    const std::vector<int64_t>& dims = sh[0];
    const std::vector<float> a = randoms(elements(sh[1]), -3, 3), b0 = randoms(elements(sh[2]), -3, 3);
    std::vector<float> b = b0;
    for (float& v : b)
      if (std::fabs(v) < 0.1f) v = 0.5f;  // keep division tame (inf results are compared too, but rarely)
    const std::vector<int64_t> as = strides_for(dims, sh[1]), bs = strides_for(dims, sh[2]);
    const BroadcastShape shape = make_broadcast(static_cast<int>(dims.size()), dims.data(), as.data(), bs.data());
    const int64_t n = broadcast_elements(shape);
    CHECK(n == elements(dims), "make_broadcast kept %lld of %lld elements", static_cast<long long>(n),
          static_cast<long long>(elements(dims)));
    for (BinaryFn fn : {BinaryFn::Add, BinaryFn::Sub, BinaryFn::Mul, BinaryFn::Div})
      for (const Activation& act : all_activations()) {
        std::vector<float> want(n);
        scalar_cnn_kernels().binary_f32({fn, &shape, a.data(), b.data(), want.data(), act, 0, n});
        // Naive: walk the original dims with the original strides.
        std::vector<int64_t> idx(dims.size(), 0);
        for (int64_t i = 0; i < n; ++i) {
          int64_t ao = 0, bo = 0;
          for (size_t d = 0; d < dims.size(); ++d) {
            ao += idx[d] * as[d];
            bo += idx[d] * bs[d];
          }
          const float va = a[ao], vb = b[bo];
          const float v = fn == BinaryFn::Add   ? va + vb
                          : fn == BinaryFn::Sub ? va - vb
                          : fn == BinaryFn::Mul ? va * vb
                                                : va / vb;
          if (!same_bits(want[i], activate(v, act))) {
            CHECK(false, "scalar binary %d act %d at %lld: %.9g vs %.9g", static_cast<int>(fn),
                  static_cast<int>(act.kind), static_cast<long long>(i), want[i], activate(v, act));
            break;
          }
          for (size_t d = dims.size(); d-- > 0;) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
          }
        }
        for (const CnnKernels* t : tables()) {
          std::vector<float> got(n, std::nanf(""));
          const int64_t cut = n / 3 + 1;
          t->binary_f32({fn, &shape, a.data(), b.data(), got.data(), act, 0, std::min(cut, n)});
          t->binary_f32({fn, &shape, a.data(), b.data(), got.data(), act, std::min(cut, n), n});
          CHECK_SAME(*t, "binary_f32", got, want);
          std::vector<float> threaded(n, std::nanf(""));
          binary_f32_parallel(*t, &pool, fn, shape, a.data(), b.data(), threaded.data(), act);
          CHECK_SAME(*t, "binary_f32_parallel", threaded, want);
          if (elements(sh[1]) == n) {  // y == a
            std::vector<float> in_place = a;
            t->binary_f32({fn, &shape, in_place.data(), b.data(), in_place.data(), act, 0, n});
            CHECK_SAME(*t, "binary_f32 in place", in_place, want);
          }
        }
      }
  }
  // Merging: a same-shape op is one dim; a channel vector over [h][w][c] is [h*w][c].
  const int64_t d3[] = {13, 13, 17}, same[] = {221, 17, 1}, vec[] = {0, 0, 1};
  const BroadcastShape merged = make_broadcast(3, d3, same, same);
  CHECK(merged.rank == 1 && merged.dims[0] == 13 * 13 * 17, "same-shape broadcast not merged to one dim");
  const BroadcastShape channel = make_broadcast(3, d3, same, vec);
  CHECK(channel.rank == 2 && channel.dims[0] == 169 && channel.b_strides[0] == 0, "channel vector not merged");
  bool threw = false;
  try {
    const int64_t bad[] = {3, 0};
    make_broadcast(2, bad, same, same);
  } catch (const Error& e) {
    threw = e.code() == "E_SHAPE";
  }
  CHECK(threw, "make_broadcast accepted a zero dim");
}

void test_bias_act() {
  for (int n : {1, 3, 7, 8, 9, 17, 63, 65})
    for (const Activation& act : all_activations())
      for (bool with_bias : {true, false}) {
        const int rows = 5, ldy = n + 3;
        const std::vector<float> y0 = randoms(size_t(rows) * ldy, -8, 8), bias = randoms(n, -2, 2);
        std::vector<float> want = y0;
        scalar_cnn_kernels().bias_act_f32(want.data(), ldy, rows, n, with_bias ? bias.data() : nullptr, act);
        for (int r = 0; r < rows; ++r)
          for (int j = 0; j < ldy; ++j) {
            const float v = y0[r * ldy + j];
            const float expect = j >= n ? v : activate(with_bias ? v + bias[j] : v, act);
            CHECK(same_bits(want[r * ldy + j], expect), "scalar bias_act n=%d act %d at %d,%d", n,
                  static_cast<int>(act.kind), r, j);
          }
        for (const CnnKernels* t : tables()) {
          std::vector<float> got = y0;
          t->bias_act_f32(got.data(), ldy, rows, n, with_bias ? bias.data() : nullptr, act);
          CHECK_SAME(*t, "bias_act_f32", got, want);
        }
      }
}

// --- Softmax, reduce-mean, LRN ---

void test_axis_ops() {
  ThreadPool pool(2);
  const int64_t shapes[][3] = {{1, 10, 1}, {7, 17, 1}, {3, 1000, 1}, {2, 5, 9}, {4, 63, 3}, {1, 169, 65}, {5, 1, 8}};
  for (const auto& sh : shapes) {
    const int64_t outer = sh[0], axis = sh[1], inner = sh[2];
    std::vector<float> x = randoms(size_t(outer * axis * inner), -20, 20);
    x[0] = -kInf;  // exp to exactly 0
    std::vector<float> sm(x.size()), mean(size_t(outer * inner));
    scalar_cnn_kernels().softmax_f32({x.data(), sm.data(), outer, axis, inner, 0, outer * inner});
    scalar_cnn_kernels().reduce_mean_f32({x.data(), mean.data(), outer, axis, inner, 0, outer * inner});
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double m = -INFINITY, s = 0, total = 0, mag = 0;
        for (int64_t k = 0; k < axis; ++k) m = std::max<double>(m, x[(o * axis + k) * inner + i]);
        for (int64_t k = 0; k < axis; ++k) {
          s += std::exp(double{x[(o * axis + k) * inner + i]} - m);
          if (std::isfinite(x[(o * axis + k) * inner + i])) {
            total += x[(o * axis + k) * inner + i];
            mag += std::fabs(x[(o * axis + k) * inner + i]);
          }
        }
        for (int64_t k = 0; k < axis; ++k) {
          const double v = x[(o * axis + k) * inner + i];
          const double want = std::exp(v - m) / s;
          const float got = sm[(o * axis + k) * inner + i];
          if (std::isnan(want) || !std::isfinite(v)) {  // -inf: exactly 0 (NaN for a column of -inf only)
            CHECK(std::isnan(want) ? std::isnan(got) : got == 0, "softmax of -inf: %.9g", got);
            continue;
          }
          // The sum's rounding, plus exp's amplification of the rounding of x - m.
          const double bound = ((axis + 8) + 2 * std::fabs(v - m)) * kU * want + 1e-38;
          CHECK(std::fabs(got - want) <= bound, "softmax %lldx%lldx%lld: %.9g vs %.9g", static_cast<long long>(outer),
                static_cast<long long>(axis), static_cast<long long>(inner), got, want);
        }
        if (!(o == 0 && i == 0))
          CHECK(std::fabs(mean[o * inner + i] - total / axis) <= (axis + 1) * kU * mag / axis,
                "reduce_mean %.9g vs %.9g", mean[o * inner + i], total / axis);
      }
    for (const CnnKernels* t : tables()) {
      std::vector<float> got(sm.size(), std::nanf("")), gm(mean.size(), std::nanf(""));
      const int64_t cols = outer * inner, cut = cols / 2;
      t->softmax_f32({x.data(), got.data(), outer, axis, inner, 0, cut});
      t->softmax_f32({x.data(), got.data(), outer, axis, inner, cut, cols});
      CHECK_SAME(*t, "softmax_f32", got, sm);
      t->reduce_mean_f32({x.data(), gm.data(), outer, axis, inner, 0, cut});
      t->reduce_mean_f32({x.data(), gm.data(), outer, axis, inner, cut, cols});
      CHECK_SAME(*t, "reduce_mean_f32", gm, mean);
      std::vector<float> in_place = x;
      t->softmax_f32({in_place.data(), in_place.data(), outer, axis, inner, 0, cols});
      CHECK_SAME(*t, "softmax_f32 in place", in_place, sm);
      std::vector<float> threaded(sm.size());
      softmax_f32_parallel(*t, &pool, x.data(), threaded.data(), outer, axis, inner);
      CHECK_SAME(*t, "softmax_f32_parallel", threaded, sm);
      reduce_mean_f32_parallel(*t, &pool, x.data(), threaded.data(), outer, axis, inner);
      threaded.resize(mean.size());
      CHECK_SAME(*t, "reduce_mean_f32_parallel", threaded, mean);
    }
  }
}

void test_lrn() {
  for (int c : {1, 3, 7, 17, 65})
    for (int size : {1, 2, 3, 5}) {
      const int64_t pixels = 11;
      const std::vector<float> x = randoms(size_t(pixels) * c, -3, 3);
      const float alpha = 1e-3f, beta = 0.75f, bias = 1.5f;
      std::vector<float> y(x.size());
      scalar_cnn_kernels().lrn_f32({x.data(), y.data(), pixels, c, size, alpha, beta, bias, 0, pixels});
      for (int64_t p = 0; p < pixels; ++p)
        for (int ch = 0; ch < c; ++ch) {
          double s = 0;
          for (int i = ch - (size - 1) / 2; i <= ch + size / 2; ++i)
            if (i >= 0 && i < c) s += double{x[p * c + i]} * x[p * c + i];
          const double want = x[p * c + ch] / std::pow(bias + alpha / size * s, double{beta});
          CHECK(std::fabs(y[p * c + ch] - want) <= 8 * kU * std::fabs(want), "lrn c=%d size=%d: %.9g vs %.9g", c, size,
                y[p * c + ch], want);
        }
      for (const CnnKernels* t : tables()) {
        std::vector<float> got(x.size());
        t->lrn_f32({x.data(), got.data(), pixels, c, size, alpha, beta, bias, 0, 5});
        t->lrn_f32({x.data(), got.data(), pixels, c, size, alpha, beta, bias, 5, pixels});
        CHECK_SAME(*t, "lrn_f32", got, y);
      }
    }
}

// --- Data movement ---

void test_concat_split() {
  ThreadPool pool(2);
  const int64_t sizes[] = {3, 17, 1, 65};
  const int64_t outer = 13, total = 86;
  std::vector<std::vector<float>> parts;
  std::vector<const void*> inputs;
  for (int64_t s : sizes) parts.push_back(randoms(size_t(outer * s)));
  for (const auto& p : parts) inputs.push_back(p.data());
  for (const CnnKernels* t : tables()) {
    std::vector<float> y(size_t(outer * total), std::nanf(""));
    concat_parallel(*t, &pool, 4, inputs.data(), sizes, y.data(), outer, 4);
    for (int64_t o = 0; o < outer; ++o) {
      int64_t at = 0;
      for (int i = 0; i < 4; ++i)
        for (int64_t j = 0; j < sizes[i]; ++j, ++at)
          CHECK(same_bits(y[o * total + at], parts[i][o * sizes[i] + j]), "%s concat at %lld,%lld", t->name,
                static_cast<long long>(o), static_cast<long long>(at));
    }
    std::vector<std::vector<float>> back(4);
    std::vector<void*> outputs;
    for (int i = 0; i < 4; ++i) {
      back[i].assign(parts[i].size(), std::nanf(""));
      outputs.push_back(back[i].data());
    }
    t->split({4, y.data(), sizes, outputs.data(), outer, 4, 0, 5});
    t->split({4, y.data(), sizes, outputs.data(), outer, 4, 5, outer});
    for (int i = 0; i < 4; ++i) CHECK_SAME(*t, "split", back[i], parts[i]);
    // int8 elements (part 2 reuses the movers): one byte each.
    std::vector<int8_t> b0(26), b1(13 * 3), by(13 * 5);
    for (size_t i = 0; i < b0.size(); ++i) b0[i] = static_cast<int8_t>(i);
    for (size_t i = 0; i < b1.size(); ++i) b1[i] = static_cast<int8_t>(-static_cast<int>(i));
    const void* bin[] = {b0.data(), b1.data()};
    const int64_t bs[] = {2, 3};
    t->concat({2, bin, bs, by.data(), 13, 1, 0, 13});
    CHECK(by[5] == b0[2] && by[7] == b1[3] && by[9] == b1[5], "%s concat of bytes", t->name);
  }
}

void test_pad() {
  ThreadPool pool(2);
  struct PadCase {
    std::vector<int64_t> shape, begin, end;
  };
  const std::vector<PadCase> cases = {
      {{5, 7, 3}, {1, 2, 0}, {2, 1, 0}},           // spatial pads of an NHWC image
      {{5, 7, 3}, {0, 0, 1}, {0, 0, 2}},           // channel pads
      {{2, 5, 7, 3}, {0, 1, 1, 0}, {0, 1, 1, 0}},  // a batch
      {{13}, {3}, {4}},
      {{4, 6}, {-1, 2}, {1, -2}},  // negative pads crop
      {{1, 1, 1}, {2, 2, 2}, {2, 2, 2}},
  };
  for (const PadCase& pc : cases) {
    const int rank = static_cast<int>(pc.shape.size());
    const PadShape s = make_pad(rank, pc.shape.data(), pc.begin.data(), pc.end.data());
    const std::vector<float> x = randoms(elements(pc.shape));
    std::vector<int64_t> out(rank);
    for (int d = 0; d < rank; ++d) out[d] = pc.shape[d] + pc.begin[d] + pc.end[d];
    std::vector<float> want(elements(out));
    const float value = 2.5f;
    std::vector<int64_t> idx(rank, 0);
    for (size_t i = 0; i < want.size(); ++i) {  // naive
      int64_t src = 0;
      bool inside = true;
      for (int d = 0; d < rank; ++d) {
        const int64_t j = idx[d] - pc.begin[d];
        inside = inside && j >= 0 && j < pc.shape[d];
        src = src * pc.shape[d] + j;
      }
      want[i] = inside ? x[src] : value;
      for (int d = rank; d-- > 0;) {
        if (++idx[d] < out[d]) break;
        idx[d] = 0;
      }
    }
    for (const CnnKernels* t : tables()) {
      std::vector<float> got(want.size(), std::nanf(""));
      const int64_t rows = pad_out_dim(s, 0);
      t->pad({&s, x.data(), got.data(), 4, &value, 0, rows / 2});
      t->pad({&s, x.data(), got.data(), 4, &value, rows / 2, rows});
      CHECK_SAME(*t, "pad", got, want);
      std::vector<float> threaded(want.size(), std::nanf(""));
      pad_parallel(*t, &pool, s, x.data(), threaded.data(), 4, &value);
      CHECK_SAME(*t, "pad_parallel", threaded, want);
    }
  }
  const int64_t shape[] = {3, 4}, crop[] = {-4, 0}, none[] = {0, 0};
  bool threw = false;
  try {
    make_pad(2, shape, crop, none);
  } catch (const Error& e) {
    threw = e.code() == "E_SHAPE";
  }
  CHECK(threw, "make_pad accepted a crop larger than the dim");
}

void test_transpose() {
  ThreadPool pool(2);
  struct TransposeCase {
    std::vector<int64_t> shape;
    std::vector<int> perm;
    int merged_rank;
  };
  const std::vector<TransposeCase> cases = {
      {{3, 13, 17}, {1, 2, 0}, 2},            // NCHW -> NHWC
      {{13, 17, 3}, {2, 0, 1}, 2},            // NHWC -> NCHW
      {{2, 65, 5, 7}, {0, 2, 3, 1}, 3},       // a batch of NCHW -> NHWC
      {{5, 7, 4, 9}, {0, 1, 3, 2}, 3},        // channel shuffle: [h][w][g][c/g] -> [h][w][c/g][g]
      {{1, 63, 1}, {2, 0, 1}, 1},             // size-1 dims only: a copy
      {{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}, 5},  // a general permutation
      {{17, 33}, {1, 0}, 2},
  };
  for (const TransposeCase& tc : cases) {
    const int rank = static_cast<int>(tc.shape.size());
    const TransposeShape s = make_transpose(rank, tc.shape.data(), tc.perm.data());
    CHECK(s.rank == tc.merged_rank, "make_transpose gave rank %d, expected %d", s.rank, tc.merged_rank);
    const std::vector<float> x = randoms(elements(tc.shape));
    std::vector<int64_t> out(rank), in_stride(rank, 1);
    for (int d = 0; d < rank; ++d) out[d] = tc.shape[tc.perm[d]];
    for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * tc.shape[d + 1];
    std::vector<float> want(x.size());
    std::vector<int64_t> idx(rank, 0), source(x.size());
    for (size_t i = 0; i < want.size(); ++i) {
      int64_t src = 0;
      for (int d = 0; d < rank; ++d) src += idx[d] * in_stride[tc.perm[d]];
      source[i] = src;
      want[i] = x[src];
      for (int d = rank; d-- > 0;) {
        if (++idx[d] < out[d]) break;
        idx[d] = 0;
      }
    }
    for (const CnnKernels* t : tables()) {
      std::vector<float> got(want.size(), std::nanf(""));
      const int64_t rows = s.in_shape[s.perm[0]];
      t->transpose({&s, x.data(), got.data(), 4, 0, rows / 2});
      t->transpose({&s, x.data(), got.data(), 4, rows / 2, rows});
      CHECK_SAME(*t, "transpose", got, want);
      std::vector<float> threaded(want.size(), std::nanf(""));
      transpose_parallel(*t, &pool, s, x.data(), threaded.data(), 4);
      CHECK_SAME(*t, "transpose_parallel", threaded, want);
      // The same permutation on bytes.
      std::vector<uint8_t> xb(x.size()), yb(x.size());
      for (size_t i = 0; i < xb.size(); ++i) xb[i] = static_cast<uint8_t>(i * 7);
      t->transpose({&s, xb.data(), yb.data(), 1, 0, rows});
      bool ok = true;
      for (size_t i = 0; i < want.size() && ok; ++i) ok = yb[i] == xb[source[i]];
      CHECK(ok, "%s transpose of bytes", t->name);
    }
  }
  const int64_t shape[] = {2, 3};
  const int dup[] = {0, 0};
  bool threw = false;
  try {
    make_transpose(2, shape, dup);
  } catch (const Error& e) {
    threw = e.code() == "E_SHAPE";
  }
  CHECK(threw, "make_transpose accepted a perm that is not a permutation");
}

}  // namespace

int main() {
  test_exp_accuracy();
  test_activations();
  test_conv();
  test_conv_splits();
  test_conv_errors();
  test_pool();
  test_global_pool();
  test_binary();
  test_bias_act();
  test_axis_ops();
  test_lrn();
  test_concat_split();
  test_pad();
  test_transpose();
  std::printf("cnn tables:");
  for (const CnnKernels* t : tables()) std::printf(" %s", t->name);
  std::printf("\n");
  if (failures) {
    std::printf("%d failed\n", failures);
    return 1;
  }
  std::printf("cnn tests passed\n");
  return 0;
}
