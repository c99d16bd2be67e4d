// Native unit tests (no Node): every kernel table this CPU runs against the
// scalar reference. Integer results and the float epilogues must be equal bit
// for bit; fp32 GEMM (FMA, other summation order) within a rounding bound.
// Shapes sweep below, at and above the SIMD tiles; buffers are misaligned on
// purpose (u8/s8 by 1..3 bytes, float/int32 by 1..3 elements, since a float*
// off by a byte is undefined behaviour in C++ and a JS Float32Array cannot be).
// No timing is asserted anywhere.
#include "../core/kernels.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../core/depthwise_pairs.h"
#include "../core/parallel_gemm.h"
#include "../core/program.h"
#include "../core/prune.h"
#include "../core/quantize.h"
#include "../core/requantize.h"
#include "../core/static_quant.h"
#include "../core/thread_pool.h"
#include "../core/validate.h"
#include "check.h"
#include "dense_program.h"

using namespace edgeopt;

using edgeopt::test::failures;

// `count` elements starting `offset` elements into a fresh vector (the vector's
// own storage is 16-byte aligned, so offsets 1..3 are misaligned for SIMD).
template <typename T>
struct Buf {
  Buf(size_t count, int offset, T fill = T()) : store(count + offset + 1, fill), p(store.data() + offset), n(count) {}
  std::vector<T> store;
  T* p;
  size_t n;
  T& operator[](size_t i) { return p[i]; }
};

// A plain loop: GCC 12 misreads std::copy into an offset pointer (-Wstringop-overflow).
template <typename T>
static void copy_to(const std::vector<T>& from, T* to) {
  for (size_t i = 0; i < from.size(); ++i) to[i] = from[i];
}

static bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Random: uniform 8-bit weights. Extreme*: the largest products. Bounded:
// weights in [-64, 64] (every k pair within AVX2's vpmaddubsw bound, as 7-bit
// quantization gives). Spiky: Bounded plus rare +-127/-128 weights, as trained
// layers have (AVX2 spills their pairs). AtBound: pairs exactly at the bound
// (|w0| + |w1| = 128, same sign) times 255, the largest vpmaddubsw sums.
enum class Fill { Random, Extreme, ExtremeNeg, Bounded, Spiky, AtBound };

// --- int8 GEMM -------------------------------------------------------------

struct GemmCase {
  int m, k, n;
  Fill fill;
  int a_off = 0, w_off = 0, c_off = 0;
  int lda_pad = 0;
  int n_begin = 0, n_end = -1;  // -1: n
};

// The table's fused gemm_u8s8_dequant (where it has one) on a case's
// operands: floats bit-identical to the scalar epilogue over the scalar int32
// sums `cr`, in columns [nb, ne) only. The case number picks per-channel or
// per-tensor scales, bias or none, ReLU or none.
static void check_gemm_dequant(const KernelTable& kt, const GemmU8S8Args& args, const std::vector<int32_t>& cr,
                               int variant, std::mt19937& rng) {
  if (!kt.gemm_u8s8_dequant) return;
  const int m = args.m, n = args.w->n, nb = args.n_begin, ne = args.n_end;
  const bool per_channel = variant & 1, has_bias = variant & 2, relu = variant & 4;
  std::uniform_real_distribution<float> sc(1e-6f, 0.1f), bd(-5.0f, 5.0f);
  std::vector<float> as(m), ws(per_channel ? n : 1), bias(n);
  for (float& v : as) v = sc(rng);
  for (float& v : ws) v = sc(rng);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = i % 4 == 0 ? -0.0f : bd(rng);
  const float sentinel = -1234.5f;
  std::vector<float> yr(cr.size(), sentinel), yk(cr.size(), sentinel);
  EpilogueArgs e{cr.data(),
                 static_cast<size_t>(n),
                 m,
                 n,
                 as.data(),
                 ws.data(),
                 per_channel ? 1 : 0,
                 has_bias ? bias.data() : nullptr,
                 relu,
                 yr.data(),
                 static_cast<size_t>(n)};
  scalar_kernels().epilogue_s32(e);
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j)
      if (j < nb || j >= ne) yr[static_cast<size_t>(r) * n + j] = sentinel;
  e.c = nullptr;
  e.y = yk.data();
  kt.gemm_u8s8_dequant(args, e);
  for (size_t i = 0; i < yr.size(); ++i)
    if (!same_bits(yr[i], yk[i])) {
      CHECK(false, "%s gemm_u8s8_dequant m=%d k=%d n=%d [%d,%d) variant=%d at %zu: %a != %a", kt.name, m, args.w->k, n,
            nb, ne, variant, i, yk[i], yr[i]);
      return;
    }
}

// Channel j's Q31 multiplier (its right shift to *right): right shifts
// 0..31 by j; every 8th channel exactly 2^30 (rounding ties wherever the sum
// is odd), the one after it 0 (a zero real multiplier).
static int32_t q_multiplier(int j, std::mt19937& rng, int32_t* right) {
  const double mantissa = j % 8 == 5 ? 0.5 : j % 8 == 6 ? 0.0 : 0.5 + 0.5 * (rng() % 1000) / 1000.0;
  const QuantizedMultiplier q = quantize_multiplier(std::ldexp(mantissa, -(j % 32)));
  *right = -q.shift;
  return q.m0;
}

// The table's fused gemm_u8s8_requant (where it has one) on a case's
// operands: int8 outputs equal to requantize.h's formula over the raw sums
// (the scalar sums `cr` plus the zero-point term the caller folds into the
// bias), in columns [nb, ne) only. Multipliers cover right shifts 0..31; the
// variant picks the output zero point and clamp.
static void check_gemm_requant(const KernelTable& kt, const GemmU8S8Args& args, const std::vector<int32_t>& cr,
                               const int8_t* w, int variant, std::mt19937& rng) {
  if (!kt.gemm_u8s8_requant) return;
  const int m = args.m, k = args.w->k, n = args.w->n, nb = args.n_begin, ne = args.n_end;
  std::uniform_int_distribution<int32_t> small(-70000, 70000);
  std::vector<int32_t> bias(n), m0(n), right(n);
  std::vector<int64_t> col_sum(n, 0);
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < k; ++i) col_sum[j] += w[static_cast<size_t>(j) * k + i];
    bias[j] = small(rng);
    m0[j] = q_multiplier(j, rng, &right[j]);
  }
  // Odd variants clamp (ReLU-like bounds); even ones keep int8's own range.
  const int32_t zp = variant % 256 - 128, lo = variant % 2 ? -127 + variant % 3 : -128,
                hi = variant % 2 ? 126 - variant % 5 : 127;
  const int8_t sentinel = 0x5a;
  std::vector<int8_t> yr(cr.size(), sentinel), yk(cr.size(), sentinel);
  for (int r = 0; r < m; ++r)
    for (int j = nb; j < ne; ++j) {
      // The raw sum, wrapped to int32 as the kernels' adds wrap.
      const auto raw = static_cast<int32_t>(static_cast<uint32_t>(cr[static_cast<size_t>(r) * n + j]) +
                                            static_cast<uint32_t>(args.a_zero_point[r] * col_sum[j]));
      const int32_t v = multiply_by_quantized_multiplier(static_cast<int32_t>(static_cast<uint32_t>(raw) + bias[j]),
                                                         {m0[j], -right[j]}) +
                        zp;
      yr[static_cast<size_t>(r) * n + j] = static_cast<int8_t>(std::min(std::max(v, lo), hi));
    }
  kt.gemm_u8s8_requant(
      args, {nullptr, 0, 0, 0, bias.data(), m0.data(), right.data(), zp, lo, hi, yk.data(), static_cast<size_t>(n)});
  for (size_t i = 0; i < yr.size(); ++i)
    if (yr[i] != yk[i]) {
      CHECK(false, "%s gemm_u8s8_requant m=%d k=%d n=%d [%d,%d) variant=%d at %zu: %d != %d", kt.name, m, k, n, nb, ne,
            variant, i, yk[i], yr[i]);
      return;
    }
}

static void check_gemm_u8s8(const KernelTable& kt, const GemmCase& g, std::mt19937& rng) {
  const int m = g.m, k = g.k, n = g.n, nb = g.n_begin, ne = g.n_end < 0 ? n : g.n_end;
  const size_t lda = k + g.lda_pad;
  Buf<uint8_t> a(m * lda, g.a_off);
  Buf<int8_t> w(static_cast<size_t>(n) * k, g.w_off);
  std::vector<int32_t> zp(m);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), s7(-64, 64), pick(0, 1), spike(0, 1023);
  const bool random_a = g.fill == Fill::Random || g.fill == Fill::Bounded || g.fill == Fill::Spiky;
  for (size_t i = 0; i < a.n; ++i) a[i] = random_a ? u8(rng) : 255;
  for (size_t i = 0; i < w.n; ++i) {
    switch (g.fill) {
      case Fill::Random:
        w[i] = s8(rng);
        break;
      case Fill::Extreme:
        w[i] = pick(rng) ? 127 : -128;
        break;
      case Fill::ExtremeNeg:
        w[i] = -128;
        break;
      case Fill::Bounded:
        w[i] = s7(rng);
        break;
      case Fill::Spiky:
        w[i] = spike(rng) ? s7(rng) : pick(rng) ? 127 : -128;
        break;
      case Fill::AtBound: {
        // Weight i and its k-pair partner (k even/odd within row of length k).
        const int col = static_cast<int>(i % k), first = (col % 2 == 0) ? 1 : 0;
        static const int kPairsAt[][2] = {{-128, 0}, {0, -128}, {64, 64}, {-64, -64}, {100, 28}, {-27, -101}};
        const int choice = static_cast<int>((i / k + col / 2) % 6);
        w[i] = static_cast<int8_t>(kPairsAt[choice][first ? 0 : 1]);
        break;
      }
    }
  }
  for (auto& v : zp) v = random_a ? u8(rng) : 0;
  const KernelTable& ref = scalar_kernels();
  PackedS8 pr, pk;
  ref.pack_s8(w.p, n, k, &pr);
  kt.pack_s8(w.p, n, k, &pk);
  const int32_t sentinel = 0x7eadbeef;
  std::vector<int32_t> cr(static_cast<size_t>(m) * n, sentinel);
  Buf<int32_t> ck(cr.size(), g.c_off, sentinel);
  ref.gemm_u8s8({a.p, lda, zp.data(), m, &pr, cr.data(), static_cast<size_t>(n), nb, ne});
  kt.gemm_u8s8({a.p, lda, zp.data(), m, &pk, ck.p, static_cast<size_t>(n), nb, ne});
  const std::string table = kt.name;
  if ((table == "avx2" || table == "avx512") && static_cast<long long>(n) * k >= 256) {
    // The layout the exact x86 packer must pick (x86_pack.cc): vpmaddubsw
    // quads for bounded weights, int16 pairs for uniform 8-bit ones.
    if (g.fill == Fill::Bounded || g.fill == Fill::AtBound)
      CHECK(pk.layout == 1 && pk.spill_k.empty(), "avx2 packed bounded weights (n=%d k=%d) as layout %d, %zu spills", n,
            k, pk.layout, pk.spill_k.size());
    if (g.fill == Fill::Random && k >= 16)
      CHECK(pk.layout == 0, "avx2 packed uniform 8-bit weights (n=%d k=%d) as quads", n, k);
    if (g.fill == Fill::Spiky && static_cast<long long>(n) * k >= 100000)
      CHECK(pk.layout == 1 && !pk.spill_k.empty(), "avx2 packed spiky weights (n=%d k=%d) as layout %d, %zu spills", n,
            k, pk.layout, pk.spill_k.size());
  }
  // vpdpbusd and TDPBUSD multiply any int8 weights exactly: K-by-4 quads
  // (AMX: k padded to 64), nothing set aside.
  if (table == "avxvnni" || table == "avx512vnni" || table == "amx")
    CHECK(pk.layout == (table == "amx" ? 2 : 1) && pk.spill_k.empty(), "%s packed as layout %d with %zu spills",
          kt.name, pk.layout, pk.spill_k.size());
  for (size_t i = 0; i < cr.size(); ++i) {
    if (cr[i] != ck[i]) {
      CHECK(false, "%s gemm_u8s8 m=%d k=%d n=%d [%d,%d) fill=%d at %zu: %d != %d", kt.name, m, k, n, nb, ne,
            static_cast<int>(g.fill), i, ck[i], cr[i]);
      return;
    }
  }
  check_gemm_dequant(kt, {a.p, lda, zp.data(), m, &pk, nullptr, 0, nb, ne}, cr, m + k + n + static_cast<int>(g.fill),
                     rng);
  check_gemm_requant(kt, {a.p, lda, zp.data(), m, &pk, nullptr, 0, nb, ne}, cr, w.p, m + k + n, rng);
}

static void test_gemm_u8s8(const KernelTable& kt) {
  std::mt19937 rng(1234);
  const int ms[] = {1, 2, 3, 4, 7, 8, 15, 16, 17, 64, 65};
  const int ks[] = {1, 3, 4, 15, 16, 17, 63, 64, 65, 127, 128, 129, 784, 1024};
  const int* ns = ks;
  const int nk = sizeof ks / sizeof ks[0];
  int idx = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < nk; ++j)
      for (int l = 0; l < nk; ++l, ++idx) {
        const int m = ms[i], k = ks[j], n = ns[l];
        // Every small shape; one in seven of the large ones (deterministic).
        if (static_cast<long long>(m) * k * n > (1 << 19) && (i + j + l) % 7 != 0) continue;
        GemmCase g{m, k, n, Fill::Random};
        g.a_off = idx % 4;
        g.w_off = (idx / 4) % 4;
        g.c_off = (idx / 16) % 4;
        g.lda_pad = idx % 3 == 0 ? 5 : 0;
        check_gemm_u8s8(kt, g, rng);
        for (Fill f : {Fill::Bounded, Fill::Spiky}) {
          GemmCase b = g;
          b.fill = f;
          check_gemm_u8s8(kt, b, rng);
        }
        if (m <= 17 && static_cast<long long>(m) * k * n <= (1 << 20)) {
          check_gemm_u8s8(kt, {m, k, n, Fill::Extreme, g.a_off, g.w_off}, rng);
          check_gemm_u8s8(kt, {m, k, n, Fill::ExtremeNeg, g.w_off, g.a_off}, rng);
          check_gemm_u8s8(kt, {m, k, n, Fill::AtBound, g.a_off, g.w_off}, rng);
        }
      }
  // Column sub-ranges, as the thread pool hands out (aligned or not).
  for (int n : {17, 64, 129})
    for (int m : {1, 7}) {
      check_gemm_u8s8(kt, {m, 65, n, Fill::Random, 1, 2, 3, 0, 3, n - 2}, rng);
      check_gemm_u8s8(kt, {m, 65, n, Fill::Random, 0, 0, 0, 0, 16, n}, rng);
      check_gemm_u8s8(kt, {m, 65, n, Fill::Random, 0, 0, 0, 0, 0, 1}, rng);
      // K over several of the SIMD tables' K blocks, so partial sums are reloaded.
      check_gemm_u8s8(kt, {m, 1100, n, Fill::Random, 1, 2, 3, 0, 3, n - 2}, rng);
      check_gemm_u8s8(kt, {m, 1100, n, Fill::Spiky, 1, 2, 3, 0, 3, n - 2}, rng);
    }
  // Row panels (AVX2 splits rows so a panel's activations stay in L2): more
  // rows than one panel holds, with a remainder, in both layouts.
  for (Fill f : {Fill::Random, Fill::Bounded, Fill::Spiky}) check_gemm_u8s8(kt, {150, 4100, 33, f, 1, 0, 2, 3}, rng);
}

// --- fp32 GEMM (summation order may differ: bounded error) -----------------

static void check_gemm_f32(const KernelTable& kt, int m, int k, int n, int off, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Buf<float> x(static_cast<size_t>(m) * k, off), w(static_cast<size_t>(n) * k, (off + 1) % 4);
  for (size_t i = 0; i < x.n; ++i) x[i] = nd(rng);
  for (size_t i = 0; i < w.n; ++i) w[i] = nd(rng);
  PackedF32 pk;
  kt.pack_f32(w.p, n, k, &pk);
  Buf<float> y(static_cast<size_t>(m) * n, (off + 2) % 4, NAN);
  kt.gemm_f32({x.p, static_cast<size_t>(k), m, &pk, y.p, static_cast<size_t>(n), 0, n});
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j) {
      double exact = 0, mag = 0;
      for (int i = 0; i < k; ++i) {
        const double p = static_cast<double>(x[r * k + i]) * w[static_cast<size_t>(j) * k + i];
        exact += p;
        mag += std::fabs(p);
      }
      // Any summation order of k float products is within k * eps * sum|p|.
      const double tol = (k + 2) * 6e-8 * mag + 1e-30;
      const float got = y[static_cast<size_t>(r) * n + j];
      if (!(std::fabs(got - exact) <= tol)) {
        CHECK(false, "%s gemm_f32 m=%d k=%d n=%d at (%d,%d): %g vs %g", kt.name, m, k, n, r, j, got, exact);
        return;
      }
    }
}

// A column sub-range gives the same bits as the full call there, and writes nothing else.
static void check_gemm_f32_range(const KernelTable& kt, int m, int k, int n, int nb, int ne, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m) * k), w(static_cast<size_t>(n) * k);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  PackedF32 pk;
  kt.pack_f32(w.data(), n, k, &pk);
  std::vector<float> full(static_cast<size_t>(m) * n), part(full.size(), 12345.0f);
  kt.gemm_f32({x.data(), static_cast<size_t>(k), m, &pk, full.data(), static_cast<size_t>(n), 0, n});
  kt.gemm_f32({x.data(), static_cast<size_t>(k), m, &pk, part.data(), static_cast<size_t>(n), nb, ne});
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j) {
      const size_t i = static_cast<size_t>(r) * n + j;
      const bool in = j >= nb && j < ne;
      if (in ? !same_bits(part[i], full[i]) : part[i] != 12345.0f) {
        CHECK(false, "%s gemm_f32 range [%d,%d) m=%d k=%d n=%d at (%d,%d)", kt.name, nb, ne, m, k, n, r, j);
        return;
      }
    }
}

// Row r of an m-row product equals that row computed alone: every table sums
// each output in k order whatever its blocking (here m=13 runs K-blocked on
// SIMD tables, m=1 in one pass).
static void check_gemm_f32_rows_alone(const KernelTable& kt, int m, int k, int n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m) * k), w(static_cast<size_t>(n) * k), y(static_cast<size_t>(m) * n), y1(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  PackedF32 pk;
  kt.pack_f32(w.data(), n, k, &pk);
  kt.gemm_f32({x.data(), static_cast<size_t>(k), m, &pk, y.data(), static_cast<size_t>(n), 0, n});
  for (int r = 0; r < m; ++r) {
    kt.gemm_f32({x.data() + static_cast<size_t>(r) * k, static_cast<size_t>(k), 1, &pk, y1.data(),
                 static_cast<size_t>(n), 0, n});
    CHECK(std::memcmp(y1.data(), y.data() + static_cast<size_t>(r) * n, n * sizeof(float)) == 0,
          "%s gemm_f32 m=%d k=%d n=%d: row %d differs when computed alone", kt.name, m, k, n, r);
  }
}

static void test_gemm_f32(const KernelTable& kt) {
  std::mt19937 rng(99);
  int idx = 0;
  for (int m : {1, 2, 3, 4, 7, 8, 17, 65})
    for (int k : {1, 3, 16, 17, 65, 129, 784})
      for (int n : {1, 3, 15, 16, 17, 63, 129}) {
        if (static_cast<long long>(m) * k * n > (1 << 19) && ++idx % 3) continue;
        check_gemm_f32(kt, m, k, n, (m + k + n) % 4, rng);
      }
  for (int m : {1, 7})
    for (int n : {17, 129}) {
      check_gemm_f32_range(kt, m, 1100, n, 3, n - 2, rng);
      check_gemm_f32_range(kt, m, 65, n, 16, n, rng);
    }
  // Long K with full row blocks: the SIMD tables' K-blocked path.
  check_gemm_f32(kt, 7, 2100, 33, 1, rng);
  check_gemm_f32_range(kt, 13, 2100, 129, 3, 127, rng);
  check_gemm_f32_rows_alone(kt, 13, 2100, 129, rng);
}

// --- float element-wise kernels: bit-exact ---------------------------------

static void test_epilogue(const KernelTable& kt) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> big(INT_MIN, INT_MAX), small(-100000, 100000);
  std::uniform_real_distribution<float> sc(1e-6f, 0.1f), bd(-5.0f, 5.0f);
  for (int m : {1, 3, 8, 17})
    for (int n : {1, 7, 8, 9, 16, 63, 129})
      for (int variant = 0; variant < 8; ++variant) {
        const bool per_channel = variant & 1, has_bias = variant & 2, relu = variant & 4;
        const int off = (m + n + variant) % 4;
        Buf<int32_t> c(static_cast<size_t>(m) * n, off);
        for (size_t i = 0; i < c.n; ++i) c[i] = i % 5 == 0 ? big(rng) : small(rng);
        c[0] = INT_MIN;
        if (c.n > 1) c[1] = INT_MAX;
        Buf<float> as(m, (off + 1) % 4), ws(per_channel ? n : 1, (off + 2) % 4), bias(n, (off + 3) % 4);
        for (size_t i = 0; i < as.n; ++i) as[i] = sc(rng);
        for (size_t i = 0; i < ws.n; ++i) ws[i] = sc(rng);
        for (size_t i = 0; i < bias.n; ++i) bias[i] = i % 4 == 0 ? -0.0f : bd(rng);
        std::vector<float> yr(c.n);
        Buf<float> yk(c.n, off);
        const EpilogueArgs base{
            c.p,     static_cast<size_t>(n), m, n, as.p, ws.p, per_channel ? 1 : 0, has_bias ? bias.p : nullptr, relu,
            nullptr, static_cast<size_t>(n)};
        EpilogueArgs ar = base, ak = base;
        ar.y = yr.data();
        ak.y = yk.p;
        scalar_kernels().epilogue_s32(ar);
        kt.epilogue_s32(ak);
        for (size_t i = 0; i < yr.size(); ++i)
          if (!same_bits(yr[i], yk[i])) {
            CHECK(false, "%s epilogue m=%d n=%d variant=%d at %zu: %a != %a", kt.name, m, n, variant, i, yk[i], yr[i]);
            break;
          }
      }
}

// The table's int8 requantization against requantize.h's formula: random,
// small (rounding ties) and extreme accumulators, every right shift 0..31,
// multipliers of exactly 2^30 and 0, with and without a clamp inside int8's
// range, odd channel counts (SIMD tails).
static void test_requantize_s8(const KernelTable& kt) {
  if (!kt.requantize_s8) return;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> big(INT_MIN / 2, INT_MAX / 2), small(-70000, 70000);
  for (int m : {1, 3, 17})
    for (int n : {1, 7, 8, 9, 63, 65})
      for (bool clamp : {false, true}) {
        const int off = (m + n) % 4;
        Buf<int32_t> c(static_cast<size_t>(m) * n, off), bias(n, (off + 1) % 4), m0(n, (off + 2) % 4),
            right(n, (off + 3) % 4);
        for (size_t i = 0; i < c.n; ++i)
          c[i] = i % 3 == 0 ? big(rng) : i % 3 == 1 ? static_cast<int32_t>(i % 601) - 300 : small(rng);
        c[0] = INT_MIN / 2;
        for (int j = 0; j < n; ++j) {
          bias[j] = j % 2 ? small(rng) : 0;
          m0[j] = q_multiplier(j, rng, &right[j]);
        }
        const int32_t zp = static_cast<int32_t>(rng() % 256) - 128;
        const int32_t lo = clamp ? -127 + n % 5 : -128, hi = clamp ? 126 - m % 7 : 127;
        Buf<int8_t> y(c.n, off);
        kt.requantize_s8(
            {c.p, static_cast<size_t>(n), m, n, bias.p, m0.p, right.p, zp, lo, hi, y.p, static_cast<size_t>(n)});
        for (int r = 0; r < m; ++r)
          for (int j = 0; j < n; ++j) {
            const int32_t v = multiply_by_quantized_multiplier(c[r * n + j] + bias[j], {m0[j], -right[j]}) + zp;
            const int want = std::min(std::max(v, lo), hi);
            if (y[r * n + j] != want) {
              CHECK(false, "%s requantize_s8 m=%d n=%d clamp=%d at %d,%d: %d != %d", kt.name, m, n, clamp, r, j,
                    y[r * n + j], want);
              return;
            }
          }
      }
}

// The table's int8 Add and Mul against TFLite's formulas, written here: every
// pair of int8 inputs (65536 elements, so every SIMD width and the tail see
// each value), right shifts 0..31 for the output, odd lengths and offsets.
static void test_binary_s8(const KernelTable& kt) {
  if (!kt.binary_s8) return;
  std::mt19937 rng(13);
  const size_t all = 256 * 256;
  for (int variant = 0; variant < 12; ++variant) {
    const bool mul = variant % 3 == 2;
    const size_t n = variant < 6 ? all : 1 + rng() % 77;
    const int off = variant % 4;
    Buf<int8_t> a(n, off), b(n, (off + 1) % 4), y(n, (off + 2) % 4);
    for (size_t i = 0; i < n; ++i) {
      a[i] = static_cast<int8_t>(n == all ? static_cast<int>(i % 256) - 128 : static_cast<int>(rng() % 256) - 128);
      b[i] = static_cast<int8_t>(n == all ? static_cast<int>(i / 256) - 128 : static_cast<int>(rng() % 256) - 128);
    }
    auto multiplier = [&](double real) {
      const QuantizedMultiplier q = quantize_multiplier(real);
      return std::pair<int32_t, int32_t>{q.m0, -q.shift};
    };
    BinaryS8Args p{};
    p.a = a.p, p.b = b.p, p.y = y.p, p.n = n, p.mul = mul;
    p.a_zero_point = static_cast<int32_t>(rng() % 256) - 128;
    p.b_zero_point = variant == 0 ? -128 : static_cast<int32_t>(rng() % 256) - 128;
    p.left_shift = 20;
    std::tie(p.a_m0, p.a_right) = multiplier(0.5 * (0.05 + (rng() % 1000) / 1000.0));
    std::tie(p.b_m0, p.b_right) = multiplier(variant == 1 ? 0.5 : 0.5 * (0.05 + (rng() % 1000) / 1000.0));
    std::tie(p.m0, p.right) =
        multiplier(std::ldexp(0.5 + (rng() % 1000) / 2000.0, -(mul ? variant % 16 : 12 + variant)));
    p.zero_point = static_cast<int32_t>(rng() % 256) - 128;
    p.lo = variant == 3 ? 0 : -128, p.hi = variant == 4 ? 6 : 127;
    kt.binary_s8(p);
    for (size_t i = 0; i < n; ++i) {
      const int32_t da = a[i] - p.a_zero_point, db = b[i] - p.b_zero_point;
      const int32_t sum = mul ? da * db
                              : multiply_by_quantized_multiplier(da * (1 << 20), {p.a_m0, -p.a_right}) +
                                    multiply_by_quantized_multiplier(db * (1 << 20), {p.b_m0, -p.b_right});
      const int32_t v = multiply_by_quantized_multiplier(sum, {p.m0, -p.right}) + p.zero_point;
      const int want = std::min(std::max(v, p.lo), p.hi);
      if (y[i] != want) {
        CHECK(false, "%s binary_s8 %s n=%zu at %zu (a=%d b=%d): %d != %d", kt.name, mul ? "mul" : "add", n, i, a[i],
              b[i], y[i], want);
        return;
      }
    }
  }
}

// The table's int8 depthwise sums against their definition, written here:
// channel counts below, at and above the SIMD blocks (1, 3, 17, 24, 63, 65, 129),
// 1/9/25 taps, row segments stepping 1 or 2 pixels (and more channels than
// the pixel holds: a step shorter than c), taps that share one padding run,
// and extreme values (-128 and 127 inputs and weights, large starting sums).
static void test_depthwise_s8(const KernelTable& kt) {
  CHECK(kt.depthwise_s8 != nullptr, "%s has no depthwise_s8", kt.name);
  if (!kt.depthwise_s8) return;
  std::mt19937 rng(11);
  for (int c : {1, 3, 16, 17, 24, 32, 48, 63, 64, 65, 72, 120, 129})
    for (int taps : {1, 2, 9, 25})
      for (int extreme = 0; extreme < 3; ++extreme) {
        const int pixels = 1 + (c + taps) % 5, off = (c + taps + extreme) % 4;
        const int64_t step = int64_t{c} * (1 + (c + extreme) % 2) - (extreme == 2 && c > 1 ? 1 : 0);
        auto value = [&]() -> int8_t {
          if (extreme == 1) return -128;
          if (extreme == 2) return rng() % 2 ? int8_t{127} : int8_t{-128};
          return static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
        };
        // Each tap's own run of inputs, and one padding run some taps share.
        const int64_t span = (pixels - 1) * step + c;
        Buf<int8_t> x(static_cast<size_t>((taps + 1) * span), off);
        for (size_t i = 0; i < x.n; ++i) x[i] = value();
        std::vector<const int8_t*> ptr(taps);
        for (int t = 0; t < taps; ++t) ptr[t] = x.p + (t % 5 == 4 ? taps : t) * span;
        Buf<int16_t> w(static_cast<size_t>(taps) * c, (off + 1) % 4);
        for (size_t i = 0; i < w.n; ++i) w[i] = extreme == 1 ? int16_t{-128} : value();
        Buf<int32_t> init(c, (off + 2) % 4), acc(static_cast<size_t>(pixels) * c, (off + 3) % 4);
        for (int ch = 0; ch < c; ++ch) init[ch] = static_cast<int32_t>(rng() % 2000001) - 1000000;
        const std::vector<int16_t> pairs = pack_depthwise_pairs(w.p, taps, c, kt.depthwise_pair_channels);
        kt.depthwise_s8(
            {ptr.data(), step, pixels, taps, c, w.p, init.p, acc.p, pairs.empty() ? nullptr : pairs.data()});
        for (int p = 0; p < pixels; ++p)
          for (int ch = 0; ch < c; ++ch) {
            int64_t want = init[ch];
            for (int t = 0; t < taps; ++t) want += int64_t{ptr[t][p * step + ch]} * w[t * c + ch];
            if (acc[p * c + ch] != want) {
              CHECK(false, "%s depthwise_s8 c=%d taps=%d extreme=%d step=%lld at %d,%d: %d != %lld", kt.name, c, taps,
                    extreme, static_cast<long long>(step), p, ch, acc[p * c + ch], static_cast<long long>(want));
              return;
            }
          }
      }
}

static void check_quantize(const KernelTable& kt, const std::vector<float>& rows, int m, int k, int off,
                           const char* what) {
  Buf<float> x(rows.size(), off);
  copy_to(rows, x.p);
  std::vector<uint8_t> qr(rows.size());
  Buf<uint8_t> qk(rows.size(), (off + 1) % 4);
  std::vector<float> sr(m), sk(m);
  std::vector<int32_t> zr(m), zk(m);
  scalar_kernels().quantize_rows_u8(x.p, m, k, qr.data(), sr.data(), zr.data());
  kt.quantize_rows_u8(x.p, m, k, qk.p, sk.data(), zk.data());
  for (int r = 0; r < m; ++r)
    CHECK(same_bits(sr[r], sk[r]) && zr[r] == zk[r], "%s quantize %s k=%d row %d: scale %a/%a zp %d/%d", kt.name, what,
          k, r, sk[r], sr[r], zk[r], zr[r]);
  for (size_t i = 0; i < qr.size(); ++i)
    if (qr[i] != qk[i]) {
      CHECK(false, "%s quantize %s m=%d k=%d at %zu: %d != %d (x=%a)", kt.name, what, m, k, i, qk[i], qr[i], x[i]);
      return;
    }
}

static void test_quantize(const KernelTable& kt) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::uniform_real_distribution<float> pos(0.0f, 1e3f);
  for (int k : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 784, 1024}) {
    const int m = 3;
    std::vector<float> v(static_cast<size_t>(m) * k);
    for (auto& e : v) e = nd(rng);
    check_quantize(kt, v, m, k, k % 4, "normal");
    for (auto& e : v) e = pos(rng);
    check_quantize(kt, v, m, k, (k + 1) % 4, "positive");
    for (auto& e : v) e = -pos(rng);
    check_quantize(kt, v, m, k, (k + 2) % 4, "negative");
    std::fill(v.begin(), v.end(), 0.0f);
    check_quantize(kt, v, m, k, 0, "zeros");
    for (size_t i = 0; i < v.size(); ++i) v[i] = i % 2 ? -0.0f : 1.25f;
    check_quantize(kt, v, m, k, 1, "signed zeros");
    // Scale exactly 1 (range -100..155), so x.5 values are exact ties: round half to even.
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>(i % 41) - 20) + 0.5f;
    for (int r = 0; r < m && k >= 2; ++r) {
      v[static_cast<size_t>(r) * k] = -100.0f;
      v[static_cast<size_t>(r) * k + 1] = 155.0f;
    }
    check_quantize(kt, v, m, k, 2, "ties");
    for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 3 ? 1e-40f : -3e38f) * (i % 2 ? 1 : -1);  // denormals, huge
    check_quantize(kt, v, m, k, 3, "extreme magnitudes");
  }
}

// The table's static int8 quantization against quantize_static_s8 (the
// portable loop), and that against its formula written here: odd lengths
// (SIMD tails), ties, values past the int8 range, infinities, NaN, denormals.
static void test_quantize_static_s8(const KernelTable& kt) {
  const float nan = std::nanf("");
  CHECK(quantize_static_s8(nan, {0.5f, 3}) == 0 && quantize_static_s8(-nan, {0.5f, -3}) == 0, "NaN must give 0");
  CHECK(quantize_static_s8(INFINITY, {0.5f, 0}) == 127 && quantize_static_s8(-INFINITY, {0.5f, 0}) == -128,
        "infinities must clamp");
  CHECK(quantize_static_s8(2.5f, {1.0f, 0}) == 2 && quantize_static_s8(-3.5f, {1.0f, 1}) == -3, "ties go to even");
  if (!kt.quantize_static_s8) return;
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 40.0f);
  const float specials[] = {nan, -nan, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f, 3e38f, -3e38f, 0.5f, 1.5f};
  for (size_t n : {1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 784, 1001})
    for (const StaticActivation a : {StaticActivation{0.25f, 0}, StaticActivation{0.1f, -128},
                                     StaticActivation{1.0f, 127}, StaticActivation{3e-39f, 5}}) {
      const int off = static_cast<int>(n % 4);
      Buf<float> x(n, off);
      for (size_t i = 0; i < n; ++i) x[i] = i % 5 == 3 ? specials[(i / 5) % std::size(specials)] : nd(rng);
      if (a.scale == 1.0f)  // exact ties
        for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(static_cast<int>(i % 301) - 150) + 0.5f;
      Buf<int8_t> y(n, (off + 1) % 4);
      kt.quantize_static_s8(x.p, n, a.scale, a.zero_point, y.p);
      for (size_t i = 0; i < n; ++i) {
        const int8_t want = quantize_static_s8(x[i], a);
        if (y[i] != want) {
          CHECK(false, "%s quantize_static_s8 n=%zu scale=%a zp=%d at %zu: %d != %d (x=%a)", kt.name, n, a.scale,
                a.zero_point, i, y[i], want, x[i]);
          break;
        }
      }
    }
}

// The table's 256-entry byte lookup against its definition: every byte value,
// odd lengths and misaligned buffers.
static void test_lut_s8(const KernelTable& kt) {
  if (!kt.lut_s8) return;
  std::mt19937 rng(19);
  int8_t table[256];
  for (auto& t : table) t = static_cast<int8_t>(rng());
  for (size_t n : {1, 7, 63, 64, 65, 127, 129, 256, 1000}) {
    const int off = static_cast<int>(n % 4);
    Buf<int8_t> x(n, off), y(n, (off + 3) % 4);
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<int8_t>(n >= 256 ? i : rng());
    kt.lut_s8(x.p, n, table, y.p);
    for (size_t i = 0; i < n; ++i)
      if (y[i] != table[x[i] + 128]) {
        CHECK(false, "%s lut_s8 n=%zu at %zu: x=%d gives %d, not %d", kt.name, n, i, x[i], y[i], table[x[i] + 128]);
        break;
      }
  }
}

static void test_bias_relu(const KernelTable& kt) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const float specials[] = {-0.0f, 0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-40f, -1e-40f};
  for (int n : {1, 7, 8, 9, 17, 64, 65})
    for (int variant = 0; variant < 4; ++variant) {
      const int m = 3, off = (n + variant) % 4;
      std::vector<float> src(static_cast<size_t>(m) * n);
      for (size_t i = 0; i < src.size(); ++i) src[i] = i % 5 == 0 ? specials[i % 8] : nd(rng);
      Buf<float> bias(n, off);
      for (int j = 0; j < n; ++j) bias[j] = j % 3 == 0 ? -0.0f : nd(rng);
      std::vector<float> yr(src);
      Buf<float> yk(src.size(), (off + 1) % 4);
      copy_to(src, yk.p);
      const float* b = variant & 1 ? bias.p : nullptr;
      scalar_kernels().bias_act_f32(yr.data(), m, n, b, variant & 2);
      kt.bias_act_f32(yk.p, m, n, b, variant & 2);
      for (size_t i = 0; i < yr.size(); ++i)
        if (!same_bits(yr[i], yk[i])) {
          CHECK(false, "%s bias_act n=%d variant=%d at %zu: %a != %a", kt.name, n, variant, i, yk[i], yr[i]);
          break;
        }
      std::vector<float> rr(src);
      Buf<float> rk(src.size(), off);
      copy_to(src, rk.p);
      scalar_kernels().relu_f32(rr.data(), rr.size());
      kt.relu_f32(rk.p, src.size());
      for (size_t i = 0; i < rr.size(); ++i)
        if (!same_bits(rr[i], rk[i])) {
          CHECK(false, "%s relu n=%d at %zu: %a != %a", kt.name, n, i, rk[i], rr[i]);
          break;
        }
    }
}

// --- threads -----------------------------------------------------------------

static void test_parallel_gemm(const KernelTable& kt) {
  std::mt19937 rng(17);
  const int m = 5, k = 300, n = 1000;  // large enough to be split
  std::vector<uint8_t> a(m * k);
  std::vector<int8_t> w(n * k);
  std::vector<int32_t> zp(m, 7);
  std::vector<float> x(m * k), wf(n * k);
  for (auto& v : a) v = rng();
  for (auto& v : w) v = rng();
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  for (auto& v : wf) v = nd(rng);
  PackedS8 ps;
  PackedF32 pf;
  kt.pack_s8(w.data(), n, k, &ps);
  kt.pack_f32(wf.data(), n, k, &pf);
  std::vector<int32_t> c1(m * n);
  std::vector<float> y1(m * n);
  kt.gemm_u8s8({a.data(), static_cast<size_t>(k), zp.data(), m, &ps, c1.data(), static_cast<size_t>(n), 0, n});
  kt.gemm_f32({x.data(), static_cast<size_t>(k), m, &pf, y1.data(), static_cast<size_t>(n), 0, n});
  for (int threads : {2, 3, 4}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 3; ++rep) {
      std::vector<int32_t> c(m * n, -1);
      std::vector<float> y(m * n, NAN);
      gemm_u8s8_parallel(kt, &pool,
                         {a.data(), static_cast<size_t>(k), zp.data(), m, &ps, c.data(), static_cast<size_t>(n), 0, n});
      gemm_f32_parallel(kt, &pool, {x.data(), static_cast<size_t>(k), m, &pf, y.data(), static_cast<size_t>(n), 0, n});
      CHECK(c == c1, "%s gemm_u8s8 with %d threads differs from one thread", kt.name, threads);
      CHECK(std::memcmp(y.data(), y1.data(), y.size() * sizeof(float)) == 0,
            "%s gemm_f32 with %d threads differs from one thread", kt.name, threads);
    }
  }
}

static std::vector<float> run_plan(const KernelTable& kt, int threads, bool int8, const std::vector<float>& x, int m) {
  std::mt19937 rng(23);  // same weights for every call
  const auto d = test::dense_program(int8, rng, 200, 700, 33);
  const CompiledProgram program(d->spec, kt, threads);
  std::vector<float> y(static_cast<size_t>(m) * 33);
  const float* in = x.data();
  float* out = y.data();
  program.run(&in, &out, m);
  return y;
}

static void test_plans(const KernelTable& kt) {
  std::mt19937 rng(29);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int m = 9;
  std::vector<float> x(m * 200);
  for (auto& v : x) v = nd(rng);
  for (bool int8 : {true, false}) {
    const std::vector<float> y1 = run_plan(kt, 1, int8, x, m);
    for (int threads : {2, 3})
      CHECK(run_plan(kt, threads, int8, x, m) == y1, "%s %s plan: %d threads differ from 1", kt.name,
            int8 ? "int8" : "fp32", threads);
    for (float v : y1) CHECK(std::isfinite(v), "non-finite plan output");
  }
  // The int8 path is quantize -> integer GEMM -> epilogue, each bit-exact, so
  // a whole int8 plan matches the scalar plan exactly.
  CHECK(run_plan(kt, 2, true, x, m) == run_plan(scalar_kernels(), 1, true, x, m), "%s int8 plan differs from scalar",
        kt.name);
  // Concurrent runs of one program: the second caller computes on its own thread.
  std::mt19937 wrng(23);
  const auto d = test::dense_program(true, wrng, 200, 700, 33);
  const CompiledProgram plan(d->spec, kt, 2);
  std::vector<float> ya(m * 33), yb(m * 33);
  const float* in = x.data();
  float* pa = ya.data();
  float* pb = yb.data();
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) plan.run(&in, &pa, m);
  });
  for (int i = 0; i < 20; ++i) plan.run(&in, &pb, m);
  t.join();
  CHECK(ya == yb && ya == run_plan(kt, 1, true, x, m), "%s concurrent plan runs differ", kt.name);
}

// An int8 Program, quantize -> one-group qconv -> qlut -> dequantize (scale 1:
// the int8 values), on the table against
// QConvSpec's formula written here (the accumulator over in-range taps of
// (x - zx) * w): im2col's padded rows on small and odd channel counts,
// strides, dilation, uneven padding, images in one pixel block, 1 and 2 threads.
struct QConvCase {
  int in_c, in_h, in_w, out_c, kh, kw, stride, dilation, pad_top, pad_left, pad_bottom, pad_right;
};

static void test_qconv_program(const KernelTable& kt) {
  const QConvCase cases[] = {{1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1}, {1, 5, 7, 17, 3, 3, 2, 1, 1, 0, 2, 1},
                             {2, 9, 6, 3, 5, 5, 1, 2, 3, 2, 1, 4},    {3, 7, 11, 9, 3, 5, 2, 1, 0, 2, 1, 0},
                             {5, 6, 5, 16, 1, 3, 1, 2, 0, 2, 0, 1},   {17, 4, 9, 33, 3, 3, 1, 1, 1, 1, 1, 1},
                             {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    {3, 3, 3, 5, 7, 7, 1, 1, 3, 3, 3, 3}};
  std::mt19937 rng(31);
  const int batch = 3;
  for (const QConvCase& c : cases) {
    ConvShape s;
    s.in_c = c.in_c, s.in_h = c.in_h, s.in_w = c.in_w, s.out_c = c.out_c, s.kh = c.kh, s.kw = c.kw;
    s.stride_h = s.stride_w = c.stride, s.dilation_h = s.dilation_w = c.dilation;
    s.pad_top = c.pad_top, s.pad_left = c.pad_left, s.pad_bottom = c.pad_bottom, s.pad_right = c.pad_right;
    s.out_h = (c.in_h + c.pad_top + c.pad_bottom - c.dilation * (c.kh - 1) - 1) / c.stride + 1;
    s.out_w = (c.in_w + c.pad_left + c.pad_right - c.dilation * (c.kw - 1) - 1) / c.stride + 1;
    const int64_t in = int64_t{s.in_h} * s.in_w * s.in_c, out = int64_t{s.out_h} * s.out_w * s.out_c;
    const int k = s.kh * s.kw * s.in_c;
    const StaticActivation grid{0.05f, static_cast<int32_t>(rng() % 256) - 128};
    std::vector<int8_t> w(static_cast<size_t>(s.out_c) * k), table(256);
    std::vector<int32_t> bias(s.out_c), m0(s.out_c), shift(s.out_c);
    for (auto& v : w) v = static_cast<int8_t>(rng());
    for (auto& v : table) v = static_cast<int8_t>(rng());
    for (int j = 0; j < s.out_c; ++j) {
      bias[j] = static_cast<int32_t>(rng() % 20001) - 10000;
      const QuantizedMultiplier q = quantize_multiplier(std::ldexp(0.5 + (rng() % 1000) / 2000.0, -6 - j % 8));
      m0[j] = q.m0, shift[j] = q.shift;
    }
    ProgramSpec p;
    p.name = "qconv-test";
    auto tensor = [&](DType t, std::vector<int64_t> shape, const void* data, int64_t offset = -1) {
      TensorSpec ts;
      ts.dtype = t, ts.shape = std::move(shape), ts.data = data, ts.offset = offset;
      ts.kind = data ? TensorSpec::Kind::Constant : offset >= 0 ? TensorSpec::Kind::Arena : TensorSpec::Kind::External;
      p.tensors.push_back(ts);
      return static_cast<int>(p.tensors.size()) - 1;
    };
    const int64_t conv_at = (in + 63) / 64 * 64, lut_at = conv_at + (out + 63) / 64 * 64;
    const int x = tensor(DType::F32, {in}, nullptr), q = tensor(DType::I8, {in}, nullptr, 0),
              conv = tensor(DType::I8, {out}, nullptr, conv_at), lut = tensor(DType::I8, {out}, nullptr, lut_at),
              y = tensor(DType::F32, {out}, nullptr);
    p.ops.push_back({"quantize", QuantizeSpec{x, q, false, in, grid}});
    QConvSpec qc{q,
                 conv,
                 tensor(DType::I8, {static_cast<int64_t>(w.size())}, w.data()),
                 tensor(DType::I32, {s.out_c}, bias.data()),
                 tensor(DType::I32, {s.out_c}, m0.data()),
                 tensor(DType::I32, {s.out_c}, shift.data()),
                 s,
                 grid.zero_point,
                 static_cast<int32_t>(rng() % 256) - 128,
                 -128 + c.in_c,
                 127 - c.out_c};
    p.ops.push_back({"conv", qc});
    p.ops.push_back({"lut", QLutSpec{conv, lut, tensor(DType::I8, {256}, table.data()), out}});
    p.ops.push_back({"dequantize", QuantizeSpec{lut, y, true, out, {1.0f, 0}}});
    p.inputs = {{"x", x}};
    p.outputs = {{"y", y}};
    p.arena_bytes = lut_at + (out + 63) / 64 * 64;
    validate_program(p);
    std::normal_distribution<float> nd(0.0f, 4.0f);
    std::vector<float> xs(static_cast<size_t>(batch) * in);
    for (auto& v : xs) v = nd(rng);
    std::vector<float> want(static_cast<size_t>(batch) * out);
    for (int n = 0; n < batch; ++n)
      for (int oy = 0; oy < s.out_h; ++oy)
        for (int ox = 0; ox < s.out_w; ++ox)
          for (int oc = 0; oc < s.out_c; ++oc) {
            int32_t acc = 0;
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const int iy = oy * c.stride - c.pad_top + ky * c.dilation;
                const int ix = ox * c.stride - c.pad_left + kx * c.dilation;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                for (int ci = 0; ci < s.in_c; ++ci) {
                  const float v = xs[n * in + (int64_t{iy} * s.in_w + ix) * s.in_c + ci];
                  acc +=
                      (quantize_static_s8(v, grid) - grid.zero_point) * w[((oc * s.kh + ky) * s.kw + kx) * s.in_c + ci];
                }
              }
            const int32_t v =
                multiply_by_quantized_multiplier(acc + bias[oc], {m0[oc], shift[oc]}) + qc.output_zero_point;
            want[n * out + (int64_t{oy} * s.out_w + ox) * s.out_c + oc] = table[std::clamp(v, qc.lo, qc.hi) + 128];
          }
    for (int threads : {1, 2}) {
      const CompiledProgram program(p, kt, threads);
      std::vector<float> got(want.size(), NAN);
      const float* xin = xs.data();
      float* yout = got.data();
      program.run(&xin, &yout, batch);
      size_t i = 0;
      while (i < got.size() && got[i] == want[i]) ++i;
      CHECK(i == got.size(), "%s qconv in_c=%d %dx%d %dx%d out_c=%d, %d threads: output %zu is %g, not %g", kt.name,
            c.in_c, c.in_h, c.in_w, c.kh, c.kw, c.out_c, threads, i, i < got.size() ? got[i] : 0.0f,
            i < want.size() ? want[i] : 0.0f);
    }
  }
}

// --- core ops ----------------------------------------------------------------

static void test_quantize_row() {
  const float x[] = {-1.0f, 0.0f, 0.5f, 2.0f};
  uint8_t q[4];
  float scale;
  int32_t zp;
  quantize_row_u8(x, 4, q, &scale, &zp);
  CHECK(scale == 3.0f / 255.0f, "scale %g", scale);
  CHECK(zp == 85, "zero point %d", zp);  // round(1 / (3/255)) = 85
  CHECK(q[0] == 0 && q[1] == 85 && q[3] == 255, "q = %d %d %d %d", q[0], q[1], q[2], q[3]);
  const float zeros[] = {0.0f, 0.0f};
  quantize_row_u8(zeros, 2, q, &scale, &zp);
  CHECK(scale == 1.0f && zp == 0 && q[0] == 0, "all-zero row");
}

static void test_prune_ties() {
  const float w[] = {0.5f, -0.1f, 0.1f, 0.1f, -0.3f, 0.0f};
  uint8_t keep[6];
  const float t = magnitude_prune_mask(w, 6, 3, keep);
  // |w| sorted: 0.0(5) 0.1(1) 0.1(2) 0.1(3) ...: ties resolve by index, so 5, 1, 2 go.
  CHECK(keep[5] == 0 && keep[1] == 0 && keep[2] == 0 && keep[3] == 1, "tie order");
  CHECK(t == 0.1f, "threshold %g", t);
}

static void test_peak_probe(const KernelTable& kt) {
  if (!kt.peak_probe) return;  // optional (the emulated build has none)
  for (PeakKind kind : {PeakKind::Int8, PeakKind::Int8Narrow, PeakKind::Fp32})
    CHECK(kt.peak_probe(kind, 1000) > 0, "%s peak_probe(%d)", kt.name, static_cast<int>(kind));
  CHECK(kt.peak_probe(PeakKind::Int8, 0) == 0, "%s peak_probe(0)", kt.name);
}

// Many small jobs, from two submitting threads at once: every task runs exactly once.
static void test_thread_pool() {
  ThreadPool pool(3);
  auto submit = [&pool](int seed, int* bad) {
    for (int i = 0; i < 3000; ++i) {
      const int tasks = 1 + (i * 7 + seed) % 9;
      std::vector<std::atomic<int>> hits(tasks);
      for (auto& h : hits) h.store(0);
      pool.parallel_for(
          tasks, [](void* ctx, int t) { (*static_cast<std::vector<std::atomic<int>>*>(ctx))[t]++; }, &hits);
      for (auto& h : hits) *bad += h.load() != 1;
    }
  };
  int bad_a = 0, bad_b = 0;
  std::thread other(submit, 1, &bad_b);
  submit(0, &bad_a);
  other.join();
  CHECK(bad_a == 0 && bad_b == 0, "thread pool: %d and %d tasks not run exactly once", bad_a, bad_b);
}

// How long each member of test_thread_pool_team busy-waits (a setting, not a measurement).
constexpr std::chrono::microseconds kMemberWork{50};

// run_team calls every member exactly once, member 0 on the caller; members
// whose threads are awake run at once on their own threads (each member here
// busy-waits for kMemberWork, so the workers claim theirs), and one that has not started when
// member 0 returns runs on the caller after it. A second caller finds the pool
// busy and gets false, its fn uncalled.
static void test_thread_pool_team() {
  ThreadPool pool(3);
  struct Ctx {
    std::atomic<int> calls[3];
    std::thread::id ids[3];
  };
  int together = 0;
  for (int round = 0; round < 200; ++round) {
    Ctx ctx;
    for (auto& c : ctx.calls) c = 0;
    const bool ran = pool.run_team(
        [](void* p, int m) {
          Ctx& c = *static_cast<Ctx*>(p);
          c.ids[m] = std::this_thread::get_id();
          c.calls[m]++;
          const auto start = std::chrono::steady_clock::now();
          while (std::chrono::steady_clock::now() - start < kMemberWork) {
          }
        },
        &ctx);
    CHECK(ran && ctx.calls[0] == 1 && ctx.calls[1] == 1 && ctx.calls[2] == 1, "run_team round %d: calls %d %d %d",
          round, ctx.calls[0].load(), ctx.calls[1].load(), ctx.calls[2].load());
    CHECK(ctx.ids[0] == std::this_thread::get_id(), "run_team round %d: member 0 off the caller", round);
    together += ctx.ids[1] != ctx.ids[0] && ctx.ids[2] != ctx.ids[0] && ctx.ids[1] != ctx.ids[2];
  }
  CHECK(together > 0, "run_team: in 200 rounds back to back, the members never ran on three threads");
  // A team running on the pool: a second caller's run_team is refused and its parallel_for runs inline.
  std::atomic<int> phase{0};
  std::thread owner([&] {
    pool.run_team(
        [](void* p, int) {
          auto& ph = *static_cast<std::atomic<int>*>(p);
          if (ph.load() == 0) ph = 1;
          while (ph.load() < 2) std::this_thread::yield();
        },
        &phase);
  });
  while (phase.load() < 1) std::this_thread::yield();
  int calls = 0;
  const bool second = pool.run_team([](void* p, int) { ++*static_cast<int*>(p); }, &calls);
  std::vector<std::atomic<int>> hits(5);
  pool.parallel_for(
      5, [](void* p, int t) { (*static_cast<std::vector<std::atomic<int>>*>(p))[t]++; }, &hits);
  phase = 2;
  owner.join();
  CHECK(!second && calls == 0, "run_team on a busy pool: %d, %d calls", second, calls);
  for (auto& h : hits) CHECK(h.load() == 1, "parallel_for beside a team: a task ran %d times", h.load());
}

// The OS thread count of this process (Linux /proc), or -1 elsewhere.
static int os_threads() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "Threads: %d", &n) == 1) break;
  std::fclose(f);
  return n;
}

// One pool per thread count for the whole process: compiling, running and
// dropping 500 programs starts no thread after the first, and programs of one
// count share a pool (which outlives them).
static void test_shared_thread_pool() {
  CHECK(ThreadPool::shared(4) == ThreadPool::shared(4), "one pool per thread count");
  CHECK(ThreadPool::shared(4) != ThreadPool::shared(5), "a pool per distinct count");
  CHECK(ThreadPool::shared(5)->threads() == 5, "the pool has the threads asked for");
  std::mt19937 rng(31);
  const auto d = test::dense_program(false, rng, 8, 16, 3);
  { CompiledProgram(d->spec, active_kernels(), 3); }
  const int before = os_threads();
  std::vector<float> x(8, 1.0f), y(3);
  for (int i = 0; i < 500; ++i) {
    const CompiledProgram p(d->spec, active_kernels(), 3);
    const float* in = x.data();
    float* out = y.data();
    p.run(&in, &out, 1);
  }
  CHECK(os_threads() == before, "500 programs: %d OS threads before, %d after", before, os_threads());
}

// magnitude_prune_mask against the definition: sort by (|w|, index), prune a prefix.
static void test_prune_against_sort() {
  std::mt19937 rng(41);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> few(-3, 3);
  for (size_t n : {1, 2, 3, 17, 100, 1000, 4099, 70000})
    for (int kind = 0; kind < 4; ++kind) {
      std::vector<float> w(n);
      for (size_t i = 0; i < n; ++i) {
        // Normal values; heavy ties (few distinct magnitudes, signed zeros); tiny and huge; all equal.
        if (kind == 0)
          w[i] = nd(rng);
        else if (kind == 1)
          w[i] = few(rng) == 0 ? (i % 2 ? -0.0f : 0.0f) : 0.25f * few(rng);
        else if (kind == 2)
          w[i] = (i % 3 == 0 ? 1e-42f : i % 3 == 1 ? -3e38f : INFINITY) * (i % 2 ? 1 : -1);
        else
          w[i] = -1.5f;
      }
      std::vector<uint32_t> order(n);
      for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const float ma = std::fabs(w[a]), mb = std::fabs(w[b]);
        return ma < mb || (ma == mb && a < b);
      });
      for (size_t p : {size_t{0}, size_t{1}, n / 3, n / 2, n - 1, n, n + 5}) {
        std::vector<uint8_t> keep(n), want(n, 1);
        const float t = magnitude_prune_mask(w.data(), n, p, keep.data());
        float want_t = 0.0f;
        for (size_t i = 0; i < std::min(p, n); ++i) {
          want[order[i]] = 0;
          want_t = std::max(want_t, std::fabs(w[order[i]]));
        }
        CHECK(keep == want && t == want_t, "prune n=%zu kind=%d count=%zu: threshold %g vs %g", n, kind, p, t, want_t);
      }
    }
}

// --- input validation ---------------------------------------------------

static void test_first_non_finite() {
  const float bad[] = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY};
  // Finite extremes must pass: the largest, the smallest subnormal, -0.
  const float fine[] = {FLT_MAX, -FLT_MAX, 1e-45f, -0.0f, 0.0f, 1.0f};
  for (size_t n : {0, 1, 7, 1023, 1024, 1025, 5000}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = fine[i % 6];
    CHECK(first_non_finite(x.data(), n) == -1, "first_non_finite: n=%zu all finite", n);
    for (size_t at : {size_t{0}, n / 2, n > 0 ? n - 1 : 0, size_t{1024}, size_t{1023}}) {
      if (at >= n) continue;
      for (float b : bad) {
        std::vector<float> y = x;
        y[at] = b;
        if (at + 1 < n) y[n - 1] = INFINITY;  // a later one must not win
        const long long got = first_non_finite(y.data(), n);
        CHECK(got == static_cast<long long>(at), "first_non_finite: n=%zu bad at %zu, got %lld", n, at, got);
      }
    }
  }
}

int main() {
  test_first_non_finite();
  test_quantize_row();
  test_prune_ties();
  test_prune_against_sort();
  test_thread_pool();
  test_thread_pool_team();
  test_shared_thread_pool();
  for (const std::string& name : runnable_kernel_names()) {
    const KernelTable& kt = *find_kernels(name);
    const int before = failures;
    test_gemm_u8s8(kt);
    test_gemm_f32(kt);
    test_epilogue(kt);
    test_requantize_s8(kt);
    test_binary_s8(kt);
    test_depthwise_s8(kt);
    test_quantize(kt);
    test_quantize_static_s8(kt);
    test_lut_s8(kt);
    test_bias_relu(kt);
    test_parallel_gemm(kt);
    test_plans(kt);
    test_qconv_program(kt);
    test_peak_probe(kt);
    std::printf("kernel %s: %s\n", name.c_str(), failures == before ? "ok" : "FAILED");
  }
  if (failures) {
    std::printf("%d failed\n", failures);
    return 1;
  }
  std::printf("native tests passed\n");
  return 0;
}
