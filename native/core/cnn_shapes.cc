// Shape checks and normalization for the CNN kernels: pooling windows,
// broadcasts, pads and transposes, each reduced once (at load) to the
// fewest dims the kernels walk.
#include <algorithm>
#include <string>

#include "cnn_kernels.h"
#include "error.h"

namespace edgeopt {
namespace {

constexpr int kMaxInputDims = 32;
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = int64_t{1} << 40;

[[noreturn]] void bad(const char* op, const std::string& what) {
  throw Error("E_SHAPE", std::string(op) + ": " + what);
}

void check_rank(const char* op, int rank) {
  if (rank < 0 || rank > kMaxInputDims) bad(op, "rank " + std::to_string(rank) + " is outside 0..32");
}

// True when a window of k taps starting at `start` (stride between taps
// `dilation`) has a tap inside [0, in).
bool window_has_tap(int64_t start, int64_t k, int64_t dilation, int64_t in) {
  const int64_t first = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  return first < k && start + first * dilation < in;
}

}  // namespace

void check_pool_shape(const PoolShape& s) {
  for (auto [v, name] : {std::pair<int64_t, const char*>{s.in_h, "in_h"},
                         {s.in_w, "in_w"},
                         {s.c, "c"},
                         {s.out_h, "out_h"},
                         {s.out_w, "out_w"},
                         {s.kh, "kh"},
                         {s.kw, "kw"},
                         {s.stride_h, "stride_h"},
                         {s.stride_w, "stride_w"},
                         {s.dilation_h, "dilation_h"},
                         {s.dilation_w, "dilation_w"}})
    if (v < 1 || v > kMaxDim) bad("pool", std::string(name) + " = " + std::to_string(v) + " is outside 1..2^20");
  for (auto [v, name] : {std::pair<int64_t, const char*>{s.pad_top, "pad_top"},
                         {s.pad_left, "pad_left"},
                         {s.pad_bottom, "pad_bottom"},
                         {s.pad_right, "pad_right"}})
    if (v < 0 || v > kMaxDim) bad("pool", std::string(name) + " = " + std::to_string(v) + " is outside 0..2^20");
  if (int64_t{s.in_h} * s.in_w * s.c > (int64_t{1} << 31) || int64_t{s.out_h} * s.out_w * s.c > (int64_t{1} << 31))
    bad("pool", "tensors larger than 2^31 elements");
  for (int oy = 0; oy < s.out_h; ++oy)
    if (!window_has_tap(int64_t{oy} * s.stride_h - s.pad_top, s.kh, s.dilation_h, s.in_h))
      bad("pool", "output row " + std::to_string(oy) + "'s window lies entirely in the padding");
  for (int ox = 0; ox < s.out_w; ++ox)
    if (!window_has_tap(int64_t{ox} * s.stride_w - s.pad_left, s.kw, s.dilation_w, s.in_w))
      bad("pool", "output column " + std::to_string(ox) + "'s window lies entirely in the padding");
}

BroadcastShape make_broadcast(int rank, const int64_t* dims, const int64_t* a_strides, const int64_t* b_strides) {
  check_rank("binary", rank);
  BroadcastShape s;
  int64_t total = 1;
  int64_t d[kMaxInputDims], as[kMaxInputDims], bs[kMaxInputDims];
  int n = 0;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 1 || a_strides[i] < 0 || b_strides[i] < 0)
      bad("binary", "dims must be positive and strides non-negative (dim " + std::to_string(i) + ")");
    total *= dims[i];
    if (total > kMaxElements) bad("binary", "more than 2^40 elements");
    if (dims[i] == 1) continue;
    if (n > 0 && as[n - 1] == a_strides[i] * dims[i] && bs[n - 1] == b_strides[i] * dims[i]) {
      d[n - 1] *= dims[i];  // the outer dim steps over exactly this one: one dim
      as[n - 1] = a_strides[i];
      bs[n - 1] = b_strides[i];
      continue;
    }
    d[n] = dims[i];
    as[n] = a_strides[i];
    bs[n] = b_strides[i];
    ++n;
  }
  if (n == 0) {  // a single element
    d[0] = 1;
    as[0] = bs[0] = 0;
    n = 1;
  }
  if (n > kMaxDims) bad("binary", "broadcast needs " + std::to_string(n) + " dims after merging; at most 8 supported");
  s.rank = n;
  for (int i = 0; i < n; ++i) {
    s.dims[i] = d[i];
    s.a_strides[i] = as[i];
    s.b_strides[i] = bs[i];
  }
  return s;
}

int64_t broadcast_elements(const BroadcastShape& s) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; ++i) n *= s.dims[i];
  return n;
}

PadShape make_pad(int rank, const int64_t* in_shape, const int64_t* begin, const int64_t* end) {
  check_rank("pad", rank);
  if (rank == 0) bad("pad", "cannot pad a scalar");
  int64_t in[kMaxInputDims], b[kMaxInputDims], e[kMaxInputDims];
  int n = 0;
  int64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    if (in_shape[i] < 1 || in_shape[i] > (int64_t{1} << 31))
      bad("pad", "dim " + std::to_string(i) + " = " + std::to_string(in_shape[i]) + " must be in 1..2^31");
    if (begin[i] < -in_shape[i] || end[i] < -in_shape[i] || begin[i] > kMaxDim || end[i] > kMaxDim)
      bad("pad", "pads of dim " + std::to_string(i) + " must be in -dim..2^20");
    const int64_t out = in_shape[i] + begin[i] + end[i];
    if (out < 1) bad("pad", "dim " + std::to_string(i) + " would be empty");
    total *= out;
    if (total > kMaxElements) bad("pad", "more than 2^40 output elements");
    if (n > 0 && begin[i] == 0 && end[i] == 0) {  // unpadded inner dim: part of the outer dim's rows
      in[n - 1] *= in_shape[i];
      b[n - 1] *= in_shape[i];
      e[n - 1] *= in_shape[i];
      continue;
    }
    in[n] = in_shape[i];
    b[n] = begin[i];
    e[n] = end[i];
    ++n;
  }
  if (n > kMaxDims) bad("pad", "needs " + std::to_string(n) + " dims after merging; at most 8 supported");
  PadShape s;
  s.rank = n;
  for (int i = 0; i < n; ++i) {
    s.in_shape[i] = in[i];
    s.begin[i] = b[i];
    s.end[i] = e[i];
  }
  return s;
}

int64_t pad_out_dim(const PadShape& s, int d) { return s.in_shape[d] + s.begin[d] + s.end[d]; }

TransposeShape make_transpose(int rank, const int64_t* in_shape, const int* perm) {
  check_rank("transpose", rank);
  bool seen[kMaxInputDims] = {};
  int64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]]) bad("transpose", "perm is not a permutation of 0..rank-1");
    seen[perm[i]] = true;
    if (in_shape[i] < 1) bad("transpose", "dim " + std::to_string(i) + " must be positive");
    total *= in_shape[i];
    if (total > kMaxElements) bad("transpose", "more than 2^40 elements");
  }
  // Drop size-1 dims, renumbering the input dims that stay.
  int renum[kMaxInputDims];
  int kept = 0;
  for (int i = 0; i < rank; ++i) renum[i] = in_shape[i] == 1 ? -1 : kept++;
  int64_t dims[kMaxInputDims];
  for (int i = 0; i < rank; ++i)
    if (renum[i] >= 0) dims[renum[i]] = in_shape[i];
  int p[kMaxInputDims], np = 0;
  for (int i = 0; i < rank; ++i)
    if (renum[perm[i]] >= 0) p[np++] = renum[perm[i]];
  TransposeShape s;
  if (np == 0) {
    s.rank = 1;
    s.in_shape[0] = 1;
    s.perm[0] = 0;
    return s;
  }
  // Runs of output dims that are consecutive input dims become one dim.
  int run_start[kMaxInputDims], run_len[kMaxInputDims], runs = 0;
  for (int i = 0; i < np; ++i) {
    if (i > 0 && p[i] == p[i - 1] + 1) {
      ++run_len[runs - 1];
    } else {
      run_start[runs] = p[i];
      run_len[runs] = 1;
      ++runs;
    }
  }
  if (runs > kMaxDims) bad("transpose", "needs " + std::to_string(runs) + " dims after merging; at most 8 supported");
  // Merged input dim of each run: its rank among the runs by input position.
  s.rank = runs;
  for (int r = 0; r < runs; ++r) {
    int order = 0;
    for (int q = 0; q < runs; ++q) order += run_start[q] < run_start[r];
    int64_t size = 1;
    for (int j = 0; j < run_len[r]; ++j) size *= dims[run_start[r] + j];
    s.in_shape[order] = size;
    s.perm[r] = order;
  }
  return s;
}

}  // namespace edgeopt
