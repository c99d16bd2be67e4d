#include "parallel_gemm.h"

#include <algorithm>

namespace edgeopt {
namespace {

// Chunks are whole tiles of the kernel's packing, and none smaller than
// kMinMacs multiply-adds: below that, waking a worker costs more than it saves.
constexpr double kMinMacs = 1 << 18;

int chunk_count(const ThreadPool* pool, int m, int k, int n_begin, int n_end, int tile) {
  if (!pool || pool->threads() <= 1) return 1;
  const int tiles = (n_end - n_begin + tile - 1) / tile;
  const double macs = static_cast<double>(m) * k * (n_end - n_begin);
  const int by_work = static_cast<int>(std::max(1.0, macs / kMinMacs));
  // Two chunks per thread: whoever is running takes the next one, so a busy
  // core (or a late worker) costs at most one chunk of imbalance.
  return std::max(1, std::min({2 * pool->threads(), tiles, by_work}));
}

// Column range of chunk i of `chunks` over [n_begin, n_end), tile-aligned from n_begin.
void chunk_range(int n_begin, int n_end, int tile, int chunks, int i, int* b, int* e) {
  const long long tiles = (n_end - n_begin + tile - 1) / tile;
  *b = static_cast<int>(std::min<long long>(n_end, n_begin + tiles * i / chunks * tile));
  *e = static_cast<int>(std::min<long long>(n_end, n_begin + tiles * (i + 1) / chunks * tile));
}

}  // namespace

void parallel_channels(ThreadPool* pool, int m, int k, int n_begin, int n_end, int tile, void (*run)(void*, int, int),
                       void* ctx) {
  struct Job {
    void (*run)(void*, int, int);
    void* ctx;
    int n_begin, n_end, tile, chunks;
    static void task(void* p, int i) {
      const Job& j = *static_cast<const Job*>(p);
      int b, e;
      chunk_range(j.n_begin, j.n_end, j.tile, j.chunks, i, &b, &e);
      if (b < e) j.run(j.ctx, b, e);
    }
  };
  tile = std::max(1, tile);
  const int chunks = chunk_count(pool, m, k, n_begin, n_end, tile);
  if (chunks <= 1) return run(ctx, n_begin, n_end);
  Job job{run, ctx, n_begin, n_end, tile, chunks};
  pool->parallel_for(chunks, &Job::task, &job);
}

void gemm_u8s8_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args) {
  split_channels(kt.gemm_u8s8, pool, args, args.w->k, kt.tile_n);
}

void gemm_f32_parallel(const KernelTable& kt, ThreadPool* pool, const GemmF32Args& args) {
  split_channels(kt.gemm_f32, pool, args, args.w->k, kt.tile_n);
}

void gemm_u8s8_dequant_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args,
                                const EpilogueArgs& epilogue) {
  struct Call {
    const KernelTable& kt;
    const GemmU8S8Args& args;
    const EpilogueArgs& epilogue;
    static void run(void* ctx, int b, int e) {
      const Call& c = *static_cast<const Call*>(ctx);
      GemmU8S8Args a = c.args;
      a.n_begin = b;
      a.n_end = e;
      c.kt.gemm_u8s8_dequant(a, c.epilogue);
    }
  } call{kt, args, epilogue};
  parallel_channels(pool, args.m, args.w->k, args.n_begin, args.n_end, kt.tile_n, &Call::run, &call);
}

}  // namespace edgeopt
