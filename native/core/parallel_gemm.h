// GEMMs split over output channels on a ThreadPool. Every output element is
// computed by exactly one kernel call with the same inputs whatever the split,
// so results are identical for any thread count.
#pragma once
#include "kernels.h"
#include "thread_pool.h"

namespace edgeopt {

// pool may be null (one thread). Calls run(ctx, b, e) over chunks of
// [n_begin, n_end) that are whole `tile`s of columns from n_begin; k is the
// work per (row, channel) that sizes the chunks.
void parallel_channels(ThreadPool* pool, int m, int k, int n_begin, int n_end, int tile,
                       void (*run)(void* ctx, int b, int e), void* ctx);
// Any GEMM whose Args has m, n_begin and n_end, split by parallel_channels.
template <typename Args>
void split_channels(void (*gemm)(const Args&), ThreadPool* pool, const Args& args, int k, int tile) {
  struct Call {
    void (*gemm)(const Args&);
    const Args* args;
    static void run(void* ctx, int b, int e) {
      const Call& c = *static_cast<const Call*>(ctx);
      Args a = *c.args;
      a.n_begin = b;
      a.n_end = e;
      c.gemm(a);
    }
  } call{gemm, &args};
  parallel_channels(pool, args.m, k, args.n_begin, args.n_end, tile, &Call::run, &call);
}

void gemm_u8s8_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args);
void gemm_f32_parallel(const KernelTable& kt, ThreadPool* pool, const GemmF32Args& args);
// kt.gemm_u8s8_dequant (which must be set) split the same way.
void gemm_u8s8_dequant_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args,
                                const EpilogueArgs& epilogue);

}  // namespace edgeopt
