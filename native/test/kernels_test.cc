// Native unit tests (no Node): every kernel table this CPU runs against the
// scalar reference, bit-exact on int32, over odd shapes and extreme values.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../core/kernels.h"
#include "../core/plan.h"
#include "../core/prune.h"
#include "../core/quantize.h"

using namespace edgeopt;

static int failures = 0;
#define CHECK(cond, ...)                         \
  do {                                           \
    if (!(cond)) {                               \
      ++failures;                                \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);         \
      std::fprintf(stderr, "\n");                \
    }                                            \
  } while (0)

enum class Fill { Random, Extreme };

static void check_gemm_u8s8(const KernelTable& kt, int m, int k, int n, Fill fill, std::mt19937& rng) {
  std::vector<uint8_t> a(static_cast<size_t>(m) * k);
  std::vector<int8_t> w(static_cast<size_t>(n) * k);
  std::vector<int32_t> zp(m);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), pick(0, 1);
  for (auto& v : a) v = fill == Fill::Extreme ? 255 : u8(rng);
  for (auto& v : w) v = fill == Fill::Extreme ? (pick(rng) ? 127 : -128) : s8(rng);
  for (auto& v : zp) v = u8(rng);
  const KernelTable& ref = scalar_kernels();
  PackedS8 pr, pk;
  ref.pack_s8(w.data(), n, k, &pr);
  kt.pack_s8(w.data(), n, k, &pk);
  std::vector<int32_t> cr(static_cast<size_t>(m) * n), ck(cr.size(), -1);
  ref.gemm_u8s8({a.data(), static_cast<size_t>(k), zp.data(), m, &pr, cr.data(), static_cast<size_t>(n), 0, n});
  kt.gemm_u8s8({a.data(), static_cast<size_t>(k), zp.data(), m, &pk, ck.data(), static_cast<size_t>(n), 0, n});
  for (size_t i = 0; i < cr.size(); ++i) {
    if (cr[i] != ck[i]) {
      CHECK(false, "%s gemm_u8s8 m=%d k=%d n=%d at %zu: %d != %d", kt.name, m, k, n, i, ck[i], cr[i]);
      return;
    }
  }
}

static void test_gemm_all_shapes(const KernelTable& kt) {
  std::mt19937 rng(1234);
  const int ms[] = {1, 2, 3, 4, 7, 8, 15, 16, 17, 64, 65};
  const int ks[] = {1, 3, 4, 15, 16, 17, 63, 64, 65, 127, 128, 129, 784};
  for (int m : ms)
    for (int k : ks)
      for (int n : {1, 3, 16, 17, 65, 129}) {
        check_gemm_u8s8(kt, m, k, n, Fill::Random, rng);
        if (m <= 4) check_gemm_u8s8(kt, m, k, n, Fill::Extreme, rng);
      }
}

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

static void test_plan_matches_layers() {
  // A 2-layer int8 plan equals the kernels called by hand.
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int m = 3, k = 17, h = 5, o = 4;
  std::vector<float> x(m * k), w1(h * k), w2(o * h), b1(h), b2(o);
  for (auto* v : {&x, &w1, &w2, &b1, &b2})
    for (auto& e : *v) e = nd(rng);
  std::vector<int8_t> q1(w1.size()), q2(w2.size());
  std::vector<float> s1(h), s2(o);
  quantize_symmetric_s8(w1.data(), h, k, 8, true, q1.data(), s1.data());
  quantize_symmetric_s8(w2.data(), o, h, 8, true, q2.data(), s2.data());
  Plan plan(scalar_kernels());
  plan.add_dense_s8(q1.data(), h, k, s1.data(), true, b1.data(), true);
  plan.add_dense_s8(q2.data(), o, h, s2.data(), true, b2.data(), false);
  std::vector<float> y(m * o);
  plan.run(x.data(), m, y.data());
  CHECK(plan.input_features() == k && plan.output_features() == o, "plan widths");
  for (float v : y) CHECK(std::isfinite(v), "non-finite output");
}

int main() {
  test_quantize_row();
  test_prune_ties();
  test_plan_matches_layers();
  for (const std::string& name : runnable_kernel_names()) {
    const KernelTable* kt = find_kernels(name);
    test_gemm_all_shapes(*kt);
    std::printf("kernel %s: checked\n", name.c_str());
  }
  if (failures) {
    std::printf("%d failed\n", failures);
    return 1;
  }
  std::printf("native tests passed\n");
  return 0;
}
