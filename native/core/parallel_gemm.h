// GEMMs split over output channels on a ThreadPool. Every output element is
// computed by exactly one kernel call with the same inputs whatever the split,
// so results are identical for any thread count.
#pragma once
#include "kernels.h"
#include "thread_pool.h"

namespace edgeopt {

// pool may be null (one thread).
void gemm_u8s8_parallel(const KernelTable& kt, ThreadPool* pool, const GemmU8S8Args& args);
void gemm_f32_parallel(const KernelTable& kt, ThreadPool* pool, const GemmF32Args& args);

}  // namespace edgeopt
