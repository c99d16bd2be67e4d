// The CNN kernels split over a ThreadPool (one image, or a batch, over the
// cores). Every output element is computed by exactly one kernel call whose
// result does not depend on the range it was given, so results are identical
// for any thread count. pool may be null (one thread). Small work runs on the
// calling thread: waking a worker costs more than it saves.
#pragma once
#include "cnn_kernels.h"
#include "thread_pool.h"

namespace edgeopt {

// Calls run(ctx, b, e) over chunks of [0, n) (chunk borders multiples of
// `align`); cost is the work per item (about one multiply-add per unit), which
// decides how many chunks are worth it.
void parallel_range(ThreadPool* pool, int64_t n, int64_t align, double cost,
                    void (*run)(void* ctx, int64_t b, int64_t e), void* ctx);

// parallel_range for a lambda: runs `f(b, e)` over chunks of [0, n).
template <typename F>
void split_range(ThreadPool* pool, int64_t n, int64_t align, double cost, const F& f) {
  parallel_range(
      pool, n, align, cost, [](void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); },
      const_cast<F*>(&f));
}

// Convolution (any method) over a batch: splits output pixels, or output
// channels when there are few pixels. scratch: conv_parallel_scratch_floats
// floats (may be null when that is 0), reused by every call.
size_t conv_parallel_scratch_floats(const PackedConvF32& w, const ThreadPool* pool);
void conv_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const PackedConvF32& w, const float* x, float* y,
                       int batch, float* scratch);

void pool_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, PoolKind kind, const PoolShape& shape, const float* x,
                       float* y, int batch);
void global_pool_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, PoolKind kind, const float* x, float* y,
                              int batch, int64_t pixels, int c);
void binary_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, BinaryFn fn, const BroadcastShape& shape,
                         const float* a, const float* b, float* y, const Activation& act);
void activation_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, size_t count,
                             const Activation& act);
void softmax_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t outer,
                          int64_t axis, int64_t inner);
void reduce_mean_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t outer,
                              int64_t axis, int64_t inner);
void lrn_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t pixels, int c,
                      int size, float alpha, float beta, float bias);
void concat_parallel(const CnnKernels& cnn, ThreadPool* pool, int count, const void* const* inputs,
                     const int64_t* sizes, void* y, int64_t outer, int elem_bytes);
void split_parallel(const CnnKernels& cnn, ThreadPool* pool, int count, const void* x, const int64_t* sizes,
                    void* const* outputs, int64_t outer, int elem_bytes);
void pad_parallel(const CnnKernels& cnn, ThreadPool* pool, const PadShape& shape, const void* x, void* y,
                  int elem_bytes, const void* value);
void transpose_parallel(const CnnKernels& cnn, ThreadPool* pool, const TransposeShape& shape, const void* x, void* y,
                        int elem_bytes);

}  // namespace edgeopt
