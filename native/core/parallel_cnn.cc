#include "parallel_cnn.h"

#include <algorithm>

namespace edgeopt {
namespace {

// A chunk does at least this much work (about one multiply-add or one
// element per unit): below it, waking a worker costs more than it saves.
constexpr double kMinChunkCost = 1 << 17;
// Two chunks per thread: whoever is free takes the next, so a busy core
// costs at most one chunk of imbalance.
constexpr int kChunksPerThread = 2;

int max_tasks(const ThreadPool* pool) { return pool && pool->threads() > 1 ? kChunksPerThread * pool->threads() : 1; }

int chunk_count(const ThreadPool* pool, int64_t n, int64_t align, double cost) {
  const int64_t units = (n + align - 1) / align;
  const double by_work = static_cast<double>(n) * cost / kMinChunkCost;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({max_tasks(pool), units, static_cast<int64_t>(by_work)})));
}

// Like parallel_range, with the task index (for per-task scratch).
void parallel_tasks(ThreadPool* pool, int64_t n, int64_t align, double cost,
                    void (*run)(void* ctx, int task, int64_t b, int64_t e), void* ctx) {
  if (n <= 0) return;
  const int chunks = chunk_count(pool, n, align, cost);
  if (chunks <= 1) return run(ctx, 0, 0, n);
  struct Job {
    void (*run)(void*, int, int64_t, int64_t);
    void* ctx;
    int64_t n, units, align;
    int chunks;
    static void task(void* p, int i) {
      const Job& j = *static_cast<const Job*>(p);
      const int64_t b = std::min(j.n, j.units * i / j.chunks * j.align);
      const int64_t e = std::min(j.n, j.units * (i + 1) / j.chunks * j.align);
      if (b < e) j.run(j.ctx, i, b, e);
    }
  } job{run, ctx, n, (n + align - 1) / align, align, chunks};
  pool->parallel_for(chunks, &Job::task, &job);
}

// Below this many output pixels per chunk a convolution splits channels instead.
constexpr int64_t kMinPixelsPerChunk = 16;
constexpr int kChannelAlign = 16;

double activation_cost(const Activation& act) {
  return act.kind == ActKind::Sigmoid || act.kind == ActKind::Tanh ? 8.0 : 1.0;
}

}  // namespace

void parallel_range(ThreadPool* pool, int64_t n, int64_t align, double cost, void (*run)(void*, int64_t, int64_t),
                    void* ctx) {
  struct Adapter {
    void (*run)(void*, int64_t, int64_t);
    void* ctx;
    static void call(void* p, int, int64_t b, int64_t e) {
      const Adapter& a = *static_cast<const Adapter*>(p);
      a.run(a.ctx, b, e);
    }
  } adapter{run, ctx};
  parallel_tasks(pool, n, align, cost, &Adapter::call, &adapter);
}

size_t conv_parallel_scratch_floats(const PackedConvF32& w, const ThreadPool* pool) {
  return conv_scratch_floats(w) * max_tasks(pool);
}

void conv_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const PackedConvF32& w, const float* x, float* y,
                       int batch, float* scratch) {
  const ConvShape& s = w.shape;
  const int64_t pixels = int64_t{batch} * s.out_h * s.out_w;
  const double pixel_cost = static_cast<double>(s.kh) * s.kw * (s.in_c / s.groups) * s.out_c;
  const size_t per_task = conv_scratch_floats(w);
  struct Ctx {
    const CnnKernels& cnn;
    ConvF32Args args;
    size_t per_task;
  } ctx{cnn, {&w, x, y, batch, 0, pixels, 0, s.out_c, scratch}, per_task};
  const int threads = pool ? pool->threads() : 1;
  if (pixels >= kMinPixelsPerChunk * kChunksPerThread * threads || s.out_c < 2 * kChannelAlign) {
    parallel_tasks(
        pool, pixels, 1, pixel_cost,
        [](void* p, int task, int64_t b, int64_t e) {
          const Ctx& c = *static_cast<const Ctx*>(p);
          ConvF32Args a = c.args;
          a.pixel_begin = b;
          a.pixel_end = e;
          a.scratch = c.args.scratch ? c.args.scratch + task * c.per_task : nullptr;
          run_conv_f32(c.cnn, a);
        },
        &ctx);
  } else {
    parallel_tasks(
        pool, s.out_c, kChannelAlign, pixel_cost * pixels / s.out_c,
        [](void* p, int task, int64_t b, int64_t e) {
          const Ctx& c = *static_cast<const Ctx*>(p);
          ConvF32Args a = c.args;
          a.oc_begin = static_cast<int>(b);
          a.oc_end = static_cast<int>(e);
          a.scratch = c.args.scratch ? c.args.scratch + task * c.per_task : nullptr;
          run_conv_f32(c.cnn, a);
        },
        &ctx);
  }
}

void pool_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, PoolKind kind, const PoolShape& shape, const float* x,
                       float* y, int batch) {
  auto kernel = kind == PoolKind::Max ? cnn.maxpool_f32 : cnn.avgpool_f32;
  const double row_cost = static_cast<double>(shape.out_w) * shape.c * shape.kh * shape.kw;
  split_range(pool, int64_t{batch} * shape.out_h, 1, row_cost, [&](int64_t b, int64_t e) {
    kernel({&shape, x, y, batch, b, e});
  });
}

void global_pool_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, PoolKind kind, const float* x, float* y,
                              int batch, int64_t pixels, int c) {
  auto kernel = kind == PoolKind::Max ? cnn.global_maxpool_f32 : cnn.global_avgpool_f32;
  split_range(pool, c, kChannelAlign, static_cast<double>(batch) * pixels, [&](int64_t b, int64_t e) {
    kernel({x, y, batch, pixels, c, static_cast<int>(b), static_cast<int>(e)});
  });
}

void binary_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, BinaryFn fn, const BroadcastShape& shape,
                         const float* a, const float* b, float* y, const Activation& act) {
  split_range(pool, broadcast_elements(shape), 64, activation_cost(act), [&](int64_t begin, int64_t end) {
    cnn.binary_f32({fn, &shape, a, b, y, act, begin, end});
  });
}

void activation_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, size_t count,
                             const Activation& act) {
  split_range(pool, static_cast<int64_t>(count), 64, activation_cost(act),
              [&](int64_t b, int64_t e) { cnn.activation_f32(x + b, y + b, static_cast<size_t>(e - b), act); });
}

void softmax_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t outer,
                          int64_t axis, int64_t inner) {
  split_range(pool, outer * inner, 1, 10.0 * axis, [&](int64_t b, int64_t e) {
    cnn.softmax_f32({x, y, outer, axis, inner, b, e});
  });
}

void reduce_mean_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t outer,
                              int64_t axis, int64_t inner) {
  split_range(pool, outer * inner, inner > 1 ? kChannelAlign : 1, static_cast<double>(axis), [&](int64_t b, int64_t e) {
    cnn.reduce_mean_f32({x, y, outer, axis, inner, b, e});
  });
}

void lrn_f32_parallel(const CnnKernels& cnn, ThreadPool* pool, const float* x, float* y, int64_t pixels, int c,
                      int size, float alpha, float beta, float bias) {
  split_range(pool, pixels, 1, static_cast<double>(c) * (size + 20), [&](int64_t b, int64_t e) {
    cnn.lrn_f32({x, y, pixels, c, size, alpha, beta, bias, b, e});
  });
}

void concat_parallel(const CnnKernels& cnn, ThreadPool* pool, int count, const void* const* inputs,
                     const int64_t* sizes, void* y, int64_t outer, int elem_bytes) {
  int64_t row = 0;
  for (int i = 0; i < count; ++i) row += sizes[i];
  split_range(pool, outer, 1, static_cast<double>(row) * elem_bytes / 16, [&](int64_t b, int64_t e) {
    cnn.concat({count, inputs, sizes, y, outer, elem_bytes, b, e});
  });
}

void split_parallel(const CnnKernels& cnn, ThreadPool* pool, int count, const void* x, const int64_t* sizes,
                    void* const* outputs, int64_t outer, int elem_bytes) {
  int64_t row = 0;
  for (int i = 0; i < count; ++i) row += sizes[i];
  split_range(pool, outer, 1, static_cast<double>(row) * elem_bytes / 16, [&](int64_t b, int64_t e) {
    cnn.split({count, x, sizes, outputs, outer, elem_bytes, b, e});
  });
}

void pad_parallel(const CnnKernels& cnn, ThreadPool* pool, const PadShape& shape, const void* x, void* y,
                  int elem_bytes, const void* value) {
  int64_t row = 1;
  for (int d = 1; d < shape.rank; ++d) row *= pad_out_dim(shape, d);
  split_range(pool, pad_out_dim(shape, 0), 1, static_cast<double>(row) * elem_bytes / 16, [&](int64_t b, int64_t e) {
    cnn.pad({&shape, x, y, elem_bytes, value, b, e});
  });
}

void transpose_parallel(const CnnKernels& cnn, ThreadPool* pool, const TransposeShape& shape, const void* x, void* y,
                        int elem_bytes) {
  int64_t row = 1;
  for (int d = 0; d < shape.rank; ++d) row *= shape.in_shape[d];
  const int64_t rows = shape.in_shape[shape.perm[0]];
  split_range(pool, rows, 1, static_cast<double>(row / rows) * elem_bytes / 4, [&](int64_t b, int64_t e) {
    cnn.transpose({&shape, x, y, elem_bytes, b, e});
  });
}

}  // namespace edgeopt
