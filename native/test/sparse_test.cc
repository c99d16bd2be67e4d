// Sparse kernels (core/sparse.h) against the dense scalar reference on the same
// pruned weights: int32 results equal bit for bit, for every sparse kernel set
// this CPU runs, odd shapes, densities 0..1, empty rows and columns, extreme
// values, column sub-ranges and thread splits. No timing is asserted.
#include "../core/sparse.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../core/dense.h"
#include "../core/kernels.h"
#include "../core/parallel_gemm.h"
#include "check.h"

using namespace edgeopt;

using edgeopt::test::failures;

enum class Pattern { Random, TwoFour, EmptyRowsCols, Extreme };

// Pruned weights: each kept with probability `density` (2:4: at most 2 of every 4).
static std::vector<int8_t> weights(int n, int k, double density, Pattern pat, std::mt19937& rng) {
  std::vector<int8_t> w(static_cast<size_t>(n) * k, 0);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> s8(-128, 127);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < k; ++i) {
      bool keep = u(rng) < density;
      if (pat == Pattern::TwoFour) keep = keep && (i % 4 == (j + i / 4) % 4 || i % 4 == (j + i / 4 + 2) % 4);
      if (pat == Pattern::EmptyRowsCols) keep = keep && j % 3 != 1 && i % 5 != 2;
      if (keep)
        w[static_cast<size_t>(j) * k + i] =
            pat == Pattern::Extreme ? ((i + j) % 3 == 0 ? 127 : -128) : static_cast<int8_t>(s8(rng) | 1);
    }
  return w;
}

struct Case {
  int m, k, n;
  double density;
  Pattern pat;
  int n_begin = 0, n_end = -1;
};

static void check_case(const SparseKernels& sk, const Case& t, std::mt19937& rng, ThreadPool* pool = nullptr) {
  const int m = t.m, k = t.k, n = t.n, nb = t.n_begin, ne = t.n_end < 0 ? n : t.n_end;
  const std::vector<int8_t> w = weights(n, k, t.density, t.pat, rng);
  std::vector<uint8_t> a(static_cast<size_t>(m) * (k + 3));
  std::vector<int32_t> zp(m);
  std::uniform_int_distribution<int> u8(0, 255);
  for (auto& v : a) v = t.pat == Pattern::Extreme ? 255 : static_cast<uint8_t>(u8(rng));
  for (auto& v : zp) v = u8(rng);
  const size_t lda = k + 3, cells = static_cast<size_t>(m) * n;
  const KernelTable& ref = scalar_kernels();
  PackedS8 dense;
  ref.pack_s8(w.data(), n, k, &dense);
  const int32_t sentinel = 0x7eadbeef;
  std::vector<int32_t> want(cells, sentinel), got(cells, sentinel);
  ref.gemm_u8s8({a.data(), lda, zp.data(), m, &dense, want.data(), static_cast<size_t>(n), nb, ne});
  auto compare = [&](const char* what) {
    for (size_t i = 0; i < cells; ++i)
      if (got[i] != want[i]) {
        CHECK(false, "%s %s m=%d k=%d n=%d [%d,%d) density=%.2f pattern=%d at %zu: %d != %d", sk.name, what, m, k, n,
              nb, ne, t.density, static_cast<int>(t.pat), i, got[i], want[i]);
        return;
      }
  };
  SparseS8 csr;
  pack_csr_s8(w.data(), n, k, &csr);
  gemm_csr_parallel(sk, pool, {a.data(), lda, zp.data(), m, &csr, got.data(), static_cast<size_t>(n), nb, ne});
  compare("csr");
  SparseWinS8 win;
  pack_win_s8(w.data(), n, k, &win);
  CHECK(win.nnz == csr.nnz, "window format keeps %zu of %zu non-zeros", win.nnz, csr.nnz);
  std::fill(got.begin(), got.end(), sentinel);
  gemm_win_parallel(sk, pool, {a.data(), lda, zp.data(), m, &win, got.data(), static_cast<size_t>(n), nb, ne});
  compare("window");
  if (is_2_4(w.data(), n, k)) {
    Sparse24S8 s24;
    pack_24_s8(w.data(), n, k, &s24);
    std::fill(got.begin(), got.end(), sentinel);
    gemm_24_parallel(sk, pool, {a.data(), lda, zp.data(), m, &s24, got.data(), static_cast<size_t>(n), nb, ne});
    compare("2:4");
  } else {
    CHECK(t.pat != Pattern::TwoFour, "2:4 weights not recognized as 2:4");
  }
}

static void test_shapes(const SparseKernels& sk) {
  std::mt19937 rng(7);
  const int ms[] = {1, 2, 3, 4, 5, 8, 9, 17, 33, 64, 65};
  const int ks[] = {1, 3, 4, 5, 17, 63, 64, 65, 129, 784, 1031};
  const int ns[] = {1, 3, 16, 17, 33, 65};
  const double densities[] = {0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0};
  int idx = 0;
  for (int m : ms)
    for (int k : ks)
      for (int n : ns)
        for (double d : densities) {
          ++idx;
          if (static_cast<long long>(m) * k * n > (1 << 18) && idx % 5) continue;
          const Pattern pat = idx % 4 == 0 ? Pattern::EmptyRowsCols : idx % 4 == 1 ? Pattern::TwoFour : Pattern::Random;
          check_case(sk, {m, k, n, d, pat}, rng);
        }
  for (int m : {1, 3, 8, 40}) {
    check_case(sk, {m, 129, 33, 1.0, Pattern::Extreme}, rng);
    check_case(sk, {m, 4099, 9, 1.0, Pattern::Extreme}, rng);  // the largest |sum|: 255 * -128 * k
    check_case(sk, {m, 15, 9, 0.7, Pattern::Extreme}, rng);    // k < 16: one window past the row
    check_case(sk, {m, 129, 33, 0.5, Pattern::TwoFour}, rng);
  }
}

// Column sub-ranges (as the pool hands out) and real thread splits.
static void test_ranges_and_threads(const SparseKernels& sk) {
  std::mt19937 rng(11);
  ThreadPool pool(3);
  for (int m : {1, 2, 7, 40})
    for (Pattern pat : {Pattern::Random, Pattern::TwoFour}) {
      check_case(sk, {m, 300, 70, 0.2, pat, 3, 68}, rng);
      check_case(sk, {m, 300, 70, 0.2, pat, 17, 18}, rng);
      check_case(sk, {m, 2000, 200, 0.1, pat}, rng, &pool);
    }
}

static void test_choice() {
  std::mt19937 rng(3);
  const SparseKernels& sk = sparse_scalar_kernels();
  const auto dense = weights(64, 64, 1.0, Pattern::Random, rng), sparse = weights(64, 64, 0.1, Pattern::Random, rng);
  const auto two_four = weights(64, 64, 1.0, Pattern::TwoFour, rng);
  // The scalar table picks one format for every call.
  auto format = [&](const std::vector<int8_t>& w, SparsePolicy p) {
    const FormatChoice c = choose_weight_format(w.data(), 64, 64, p, sk);
    CHECK(c.few == c.many, "scalar: one format for every call");
    return c.many;
  };
  CHECK(format(dense, SparsePolicy::Auto) == WeightFormat::Dense, "dense -> dense");
  CHECK(format(sparse, SparsePolicy::Auto) == WeightFormat::Csr, "10%% -> csr");
  CHECK(format(sparse, SparsePolicy::Never) == WeightFormat::Dense, "never");
  CHECK(format(dense, SparsePolicy::Always) == WeightFormat::Csr, "always");
  CHECK(format(two_four, SparsePolicy::Always) == WeightFormat::TwoFour, "2:4");
  // Beside an unmeasured SIMD dense table (arm64), auto keeps dense; always still packs sparse.
  const SparseKernels& beside = sparse_scalar_beside_simd_kernels();
  CHECK(!choose_weight_format(sparse.data(), 64, 64, SparsePolicy::Auto, beside).uses(WeightFormat::Csr),
        "beside simd: 10%% -> dense");
  CHECK(choose_weight_format(sparse.data(), 64, 64, SparsePolicy::Always, beside).many == WeightFormat::Csr,
        "beside simd: always -> csr");
#if defined(__x86_64__) || defined(_M_X64)
  // AVX2: up to 20 % kept, the window format below 16 rows and CSR from 16;
  // up to 35 %, the window format below 8 rows and dense from 8.
  const SparseKernels& avx = sparse_avx2_kernels();
  const auto mid = weights(64, 64, 0.3, Pattern::Random, rng);
  auto choice = [&](const std::vector<int8_t>& w, SparsePolicy p) {
    return choose_weight_format(w.data(), 64, 64, p, avx);
  };
  const FormatChoice c10 = choice(sparse, SparsePolicy::Auto), c30 = choice(mid, SparsePolicy::Auto);
  CHECK(c10.for_rows(15) == WeightFormat::Window && c10.for_rows(16) == WeightFormat::Csr, "avx2 10%% -> window, csr");
  CHECK(c30.for_rows(7) == WeightFormat::Window && c30.for_rows(8) == WeightFormat::Dense,
        "avx2 30%% -> window, dense");
  CHECK(!choice(dense, SparsePolicy::Auto).uses(WeightFormat::Window), "avx2 dense -> dense");
  CHECK(choice(dense, SparsePolicy::Auto).for_rows(1) == WeightFormat::Dense, "avx2 dense -> dense");
  const FormatChoice all = choice(dense, SparsePolicy::Always);
  CHECK(all.few == WeightFormat::Window && all.many == WeightFormat::Window, "avx2 always -> window");
  // Beside the faster x86 dense tables: the window format for one row at <= 20 % kept, else dense.
  const SparseKernels& one = sparse_avx2_one_row_kernels();
  const FormatChoice o10 = choose_weight_format(sparse.data(), 64, 64, SparsePolicy::Auto, one);
  CHECK(o10.for_rows(1) == WeightFormat::Window && o10.for_rows(2) == WeightFormat::Dense,
        "one-row 10%% -> window, dense");
  CHECK(!choose_weight_format(mid.data(), 64, 64, SparsePolicy::Auto, one).uses(WeightFormat::Window),
        "one-row 30%% -> dense");
  const FormatChoice oall = choose_weight_format(dense.data(), 64, 64, SparsePolicy::Always, one);
  CHECK(oall.few == WeightFormat::Window && oall.many == WeightFormat::Window, "one-row always -> window");
  for (const char* name : {"avx512", "avxvnni", "avx512vnni", "amx"})
    if (const KernelTable* kt = find_kernels(name))
      CHECK(&sparse_kernels_for(*kt) == &one, "%s: sparse partner is the one-row rule", name);
  if (const KernelTable* kt = find_kernels("avx2")) CHECK(&sparse_kernels_for(*kt) == &avx, "avx2: its own rule");
#endif
}

// Int8 layers on the same pruned weights give identical outputs whatever the packing.
static void test_plans(const KernelTable& kt) {
  std::mt19937 rng(5);
  const int k = 70, h = 45, o = 9;
  const auto w1 = weights(h, k, 0.08, Pattern::Random, rng), w2 = weights(o, h, 1.0, Pattern::TwoFour, rng);
  std::vector<float> s1(h, 0.01f), s2(1, 0.02f), b1(h, 0.1f);
  std::vector<std::vector<float>> outs;
  auto pool = ThreadPool::shared(2);
  for (SparsePolicy pol : {SparsePolicy::Never, SparsePolicy::Auto, SparsePolicy::Always}) {
    const DenseS8 l1(kt, {w1.data(), h, k, s1.data(), s1.size(), 0, 0, b1.data(), true, nullptr, pol});
    const DenseS8 l2(kt, {w2.data(), o, h, s2.data(), s2.size(), 0, 3, nullptr, false, nullptr, pol});
    if (pol == SparsePolicy::Never)
      CHECK(l1.kernel_name().rfind("dense-", 0) == 0, "never: %s", l1.kernel_name().c_str());
    if (pol == SparsePolicy::Always)
      CHECK(l2.kernel_name().rfind("sparse", 0) == 0, "always: %s", l2.kernel_name().c_str());
    for (int m : {1, 5, 8, 40}) {
      std::vector<float> x(static_cast<size_t>(m) * k), hid(static_cast<size_t>(m) * h), y(static_cast<size_t>(m) * o);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      std::mt19937 xr(m);
      for (float& v : x) v = nd(xr);
      DenseS8::Scratch scratch;
      l1.run(x.data(), m, hid.data(), pool.get(), scratch);
      l2.run(hid.data(), m, y.data(), pool.get(), scratch);
      outs.push_back(y);
    }
  }
  for (size_t i = 4; i < outs.size(); ++i)
    CHECK(outs[i] == outs[i % 4], "%s layer output %zu differs from dense", kt.name, i);
}

int main() {
  test_choice();
  for (const std::string& name : runnable_kernel_names()) test_plans(*find_kernels(name));
  std::vector<const SparseKernels*> sets = {&sparse_scalar_kernels()};
  for (const std::string& name : runnable_kernel_names()) {
    const SparseKernels& sk = sparse_kernels_for(*find_kernels(name));
    if (std::find(sets.begin(), sets.end(), &sk) == sets.end()) sets.push_back(&sk);
  }
  for (const SparseKernels* sk : sets) {
    const int before = failures;
    test_shapes(*sk);
    test_ranges_and_threads(*sk);
    std::printf("sparse kernels %s: %s\n", sk->name, failures == before ? "ok" : "FAILED");
  }
  if (failures) {
    std::printf("%d failed\n", failures);
    return 1;
  }
  std::printf("all sparse tests passed\n");
  return 0;
}
