#include "parallel_gemm.h"

#include <algorithm>

namespace edgeopt {
namespace {

// Chunks are whole 16-channel tiles (the SIMD tables' packing unit), and none
// smaller than kMinMacs multiply-adds: below that, waking a worker costs more
// than it saves.
constexpr int kTile = 16;
constexpr double kMinMacs = 1 << 18;

int chunk_count(const ThreadPool* pool, int m, int k, int n_begin, int n_end) {
  if (!pool || pool->threads() <= 1) return 1;
  const int tiles = (n_end - n_begin + kTile - 1) / kTile;
  const double macs = static_cast<double>(m) * k * (n_end - n_begin);
  const int by_work = static_cast<int>(std::max(1.0, macs / kMinMacs));
  // Two chunks per thread: whoever is running takes the next one, so a busy
  // core (or a late worker) costs at most one chunk of imbalance.
  return std::max(1, std::min({2 * pool->threads(), tiles, by_work}));
}

// Column range of chunk i of `chunks` over [n_begin, n_end), tile-aligned from n_begin.
void chunk_range(int n_begin, int n_end, int chunks, int i, int* b, int* e) {
  const long long tiles = (n_end - n_begin + kTile - 1) / kTile;
  *b = static_cast<int>(std::min<long long>(n_end, n_begin + tiles * i / chunks * kTile));
  *e = static_cast<int>(std::min<long long>(n_end, n_begin + tiles * (i + 1) / chunks * kTile));
}

}  // namespace

void parallel_channels(ThreadPool* pool, int m, int k, int n_begin, int n_end, void (*run)(void*, int, int),
                       void* ctx) {
  struct Job {
    void (*run)(void*, int, int);
    void* ctx;
    int n_begin, n_end, chunks;
    static void task(void* p, int i) {
      const Job& j = *static_cast<const Job*>(p);
      int b, e;
      chunk_range(j.n_begin, j.n_end, j.chunks, i, &b, &e);
      if (b < e) j.run(j.ctx, b, e);
    }
  };
  const int chunks = chunk_count(pool, m, k, n_begin, n_end);
  if (chunks <= 1) return run(ctx, n_begin, n_end);
  Job job{run, ctx, n_begin, n_end, chunks};
  pool->parallel_for(chunks, &Job::task, &job);
}

void gemm_u8s8_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args) {
  split_channels(kt.gemm_u8s8, pool, args, args.w->k);
}

void gemm_f32_parallel(const KernelTable& kt, ThreadPool* pool, const GemmF32Args& args) {
  split_channels(kt.gemm_f32, pool, args, args.w->k);
}

}  // namespace edgeopt
