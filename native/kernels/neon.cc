// NEON kernel table: armv8.0-a Advanced SIMD, which every arm64 core has
// (Cortex-A53 in the Raspberry Pi 3 and Zero 2, A72 in the Pi 4). Compiled for
// the baseline arch, no target attributes: nothing newer than armv8-a.
//
// int8: activations are shifted to int8 (arm64_u8s8.h); smull multiplies 8
// int8 pairs into exact int16 products (|-128 * -128| = 16384 fits), sadalp
// adds them pairwise into int32 lanes. (smlal would add two products in int16,
// which overflows for -128 * -128 twice.) So the int32 results equal scalar's.
//
// Float element-wise kernels repeat scalar.cc's operations in its order: no FMA
// (the build passes -ffp-contract=off, which also stops GCC fusing the vmul/vadd
// intrinsics), true division (vdivq_f32), round half to even (vrndnq_f32, the
// default FPCR mode, like std::nearbyint), and max/min by compare-and-select so
// -0 and NaN come out exactly as std::max/std::min return them.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>

#include "../core/cnn_kernels.h"
#include "../core/kernels.h"
#include "../core/quantize.h"
#include "arm64_u8s8.h"
#include "row_blocks.h"

namespace edgeopt {

void pack_s8_c16(const int8_t* w, int n, int k, PackedS8* out, const KernelTable* packer) {
  const size_t tile_bytes = c16_tile_bytes(k);
  out->n = n;
  out->k = k;
  out->data.assign(static_cast<size_t>(c16_tiles(n)) * tile_bytes, 0);
  out->col_sums.assign(n, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    int8_t* tile = out->data.data() + static_cast<size_t>(j / kC16Channels) * tile_bytes;
    int32_t s = 0;
    for (int i = 0; i < k; ++i) {
      tile[(static_cast<size_t>(i / kC16Chunk) * kC16Channels + j % kC16Channels) * kC16Chunk + i % kC16Chunk] = row[i];
      s += row[i];
    }
    out->col_sums[j] = s;
  }
  out->packer = packer;
}

namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) { pack_s8_c16(w, n, k, out, &neon_kernels()); }

struct SmullSadalp {
  static inline int32x4_t step(int32x4_t acc, int8x16_t a, int8x16_t w) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(w)));
    return vpadalq_s16(acc, vmull_high_s8(a, w));
  }
};

void gemm_u8s8(const GemmU8S8Args& p) { gemm_u8s8_c16<SmullSadalp>(p); }

// fp32 weights in tiles of 16 channels: for each k, the tile's 16 weights.
constexpr int kF32Tile = 16;

inline int f32_tiles(int n) { return (n + kF32Tile - 1) / kF32Tile; }

void pack_f32(const float* w, int n, int k, PackedF32* out) {
  out->n = n;
  out->k = k;
  out->data.assign(static_cast<size_t>(f32_tiles(n)) * k * kF32Tile, 0.0f);
  for (int j = 0; j < n; ++j) {
    float* dst = out->data.data() + static_cast<size_t>(j / kF32Tile) * k * kF32Tile + j % kF32Tile;
    const float* src = w + static_cast<size_t>(j) * k;
    for (int i = 0; i < k; ++i) dst[static_cast<size_t>(i) * kF32Tile] = src[i];
  }
  out->packer = &neon_kernels();
}

// Stores 4 columns starting at j, those inside [n_begin, n_end).
inline void store4_f32(float* dst, int n_begin, int n_end, int j, float32x4_t v) {
  if (j >= n_begin && j + 4 <= n_end) return vst1q_f32(dst + j, v);
  float tmp[4];
  vst1q_f32(tmp, v);
  for (int q = std::max(j, n_begin); q < std::min(j + 4, n_end); ++q) dst[q] = tmp[q - j];
}

// MR rows x T tiles; one FMA chain per output in k order, so results do not
// depend on the blocking, the row count or the thread split.
template <int MR, int T>
void f32_block(const GemmF32Args& p, int r0, int t0) {
  const int k = p.w->k;
  const size_t tile_floats = static_cast<size_t>(k) * kF32Tile;
  const float* w = p.w->data.data() + t0 * tile_floats;
  float32x4_t acc[MR][T][4];
  EDGEOPT_ARM_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
  for (int q = 0; q < 4; ++q) acc[r][t][q] = vdupq_n_f32(0.0f);
  for (int i = 0; i < k; ++i) {
    float32x4_t wv[T][4];
    EDGEOPT_ARM_UNROLL
    for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
    for (int q = 0; q < 4; ++q) wv[t][q] = vld1q_f32(w + t * tile_floats + static_cast<size_t>(i) * kF32Tile + 4 * q);
    EDGEOPT_ARM_UNROLL
    for (int r = 0; r < MR; ++r) {
      const float32x4_t xv = vdupq_n_f32(p.x[(r0 + r) * p.ldx + i]);
      EDGEOPT_ARM_UNROLL
      for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
      for (int q = 0; q < 4; ++q) acc[r][t][q] = vfmaq_f32(acc[r][t][q], wv[t][q], xv);
    }
  }
  EDGEOPT_ARM_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_ARM_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_ARM_UNROLL
  for (int q = 0; q < 4; ++q)
    store4_f32(p.y + (r0 + r) * p.ldy, p.n_begin, p.n_end, (t0 + t) * kF32Tile + 4 * q, acc[r][t][q]);
}

template <int MR, int T>
void f32_rows(const GemmF32Args& p, int r0, int t_begin, int t_end) {
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T) f32_block<MR, T>(p, r0, t);
  for (; t < t_end; ++t) f32_block<MR, 1>(p, r0, t);
}

void gemm_f32(const GemmF32Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const int t_begin = p.n_begin / kF32Tile, t_end = f32_tiles(p.n_end);
  // 4 rows x 1 tile = 16 accumulators; fewer rows, more tiles.
  for_row_blocks<4>(p.m, [&](int r, auto rows) {
    constexpr int R = decltype(rows)::value;
    f32_rows<R, tiles_for_rows(R, 16, 4, 3)>(p, r, t_begin, t_end);
  });
}

// std::max(v, 0.0f), i.e. `v < 0 ? 0 : v`: keeps -0 and NaN (fmax would not).
inline float32x4_t relu4(float32x4_t v) { return vbslq_f32(vcltq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), v); }

void epilogue_s32(const EpilogueArgs& p) {
  for (int r = 0; r < p.m; ++r) {
    const int32_t* c = p.c + r * p.ldc;
    float* y = p.y + r * p.ldy;
    const float32x4_t as = vdupq_n_f32(p.a_scale[r]);
    for (int j = 0; j + 4 <= p.n; j += 4) {
      const float32x4_t ws = p.w_scale_stride ? vld1q_f32(p.w_scale + j) : vdupq_n_f32(p.w_scale[0]);
      float32x4_t v = vmulq_f32(vcvtq_f32_s32(vld1q_s32(c + j)), vmulq_f32(as, ws));
      if (p.bias) v = vaddq_f32(v, vld1q_f32(p.bias + j));
      if (p.relu) v = relu4(v);
      vst1q_f32(y + j, v);
    }
  }
  // The last n % 4 columns of every row: scalar's code on that block.
  const int j = p.n & ~3;
  if (j == p.n) return;
  EpilogueArgs tail = p;
  tail.c = p.c + j;
  tail.n = p.n - j;
  tail.w_scale = p.w_scale + j * p.w_scale_stride;
  tail.bias = p.bias ? p.bias + j : nullptr;
  tail.y = p.y + j;
  scalar_kernels().epilogue_s32(tail);
}

// clamp(round_even(x / s) + zp, 0, 255) as uint32 lanes; NaN becomes 0 like
// the scalar float -> uint8 conversion (fcvtzu) does.
inline uint32x4_t quant4(const float* x, float32x4_t s, float32x4_t zp) {
  float32x4_t v = vaddq_f32(vrndnq_f32(vdivq_f32(vld1q_f32(x), s)), zp);
  v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(255.0f));
  return vcvtq_u32_f32(v);
}

inline uint16x8_t quant8(const float* x, float32x4_t s, float32x4_t zp) {
  return vcombine_u16(vmovn_u32(quant4(x, s, zp)), vmovn_u32(quant4(x + 4, s, zp)));
}

// quantize_row_u8 (quantize.h) vectorized. The running min/max select the new
// value only when strictly smaller/larger, as std::min/std::max do, so lanes
// never hold NaN or -0 and the lane reduction equals the scalar fold.
void quantize_row(const float* x, int k, uint8_t* q, float* scale, int32_t* zero_point) {
  float32x4_t lo = vdupq_n_f32(0.0f), hi = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 4 <= k; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    lo = vbslq_f32(vcltq_f32(v, lo), v, lo);
    hi = vbslq_f32(vcltq_f32(hi, v), v, hi);
  }
  float l = vminvq_f32(lo), h = vmaxvq_f32(hi);
  for (; i < k; ++i) {
    l = std::min(l, x[i]);
    h = std::max(h, x[i]);
  }
  const RowGrid g = row_grid(l, h);
  const float s = g.scale, zp_f = g.zero_point;
  const float32x4_t sv = vdupq_n_f32(s), zv = vdupq_n_f32(zp_f);
  i = 0;
  for (; i + 16 <= k; i += 16)
    vst1q_u8(q + i, vcombine_u8(vmovn_u16(quant8(x + i, sv, zv)), vmovn_u16(quant8(x + i + 8, sv, zv))));
  for (; i < k; ++i) q[i] = quantize_u8(x[i], g);
  *scale = g.scale;
  *zero_point = static_cast<int32_t>(g.zero_point);
}

void quantize_rows_u8(const float* x, int m, int k, uint8_t* q, float* scale, int32_t* zp) {
  for (int r = 0; r < m; ++r)
    quantize_row(x + static_cast<size_t>(r) * k, k, q + static_cast<size_t>(r) * k, scale + r, zp + r);
}

void bias_act_f32(float* y, int m, int n, const float* bias, bool relu) {
  for (int r = 0; r < m; ++r) {
    float* row = y + static_cast<size_t>(r) * n;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      float32x4_t v = vld1q_f32(row + j);
      if (bias) v = vaddq_f32(v, vld1q_f32(bias + j));
      if (relu) v = relu4(v);
      vst1q_f32(row + j, v);
    }
    if (j < n) scalar_kernels().bias_act_f32(row + j, 1, n - j, bias ? bias + j : nullptr, relu);
  }
}

void relu_f32(float* x, size_t count) {
  size_t i = 0;
  for (; i + 4 <= count; i += 4) vst1q_f32(x + i, relu4(vld1q_f32(x + i)));
  scalar_kernels().relu_f32(x + i, count - i);
}

// The kernels' arithmetic in register-only loops (EDGEOPT_ARM_PROBE8). int8:
// smull + sadalp, 8 multiply-adds per pair; fp32: fmla, 4 per instruction.
#define EDGEOPT_SMULL_SADALP(acc, t) "smull v" t ".8h, v0.8b, v1.8b\n\tsadalp v" acc ".4s, v" t ".8h\n\t"
#define EDGEOPT_FMLA(acc, t) "fmla v" acc ".4s, v0.4s, v1.4s\n\t"

uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind != PeakKind::Fp32) {
    EDGEOPT_ARM_PROBE8(iterations, EDGEOPT_SMULL_SADALP);
    return iterations * 8 * 8 * 2;
  }
  EDGEOPT_ARM_PROBE8(iterations, EDGEOPT_FMLA);
  return iterations * 8 * 4 * 2;
}

// DepthwiseS8Args, 16 channels a step: inputs widened to int16, smlal
// multiplies int16 pairs into int32 lanes exactly. Tails: the scalar definition.
void depthwise_s8(const DepthwiseS8Args& a) {
  for (int p = 0; p < a.pixels; ++p) {
    const int64_t at = p * a.step;
    int32_t* acc = a.acc + static_cast<size_t>(p) * a.c;
    int ch = 0;
    for (; ch + 16 <= a.c; ch += 16) {
      int32x4_t s0 = vld1q_s32(a.init + ch), s1 = vld1q_s32(a.init + ch + 4);
      int32x4_t s2 = vld1q_s32(a.init + ch + 8), s3 = vld1q_s32(a.init + ch + 12);
      for (int t = 0; t < a.taps; ++t) {
        const int8x16_t xv = vld1q_s8(a.x[t] + at + ch);
        const int16_t* w = a.w + static_cast<size_t>(t) * a.c + ch;
        const int16x8_t x0 = vmovl_s8(vget_low_s8(xv)), x1 = vmovl_high_s8(xv);
        const int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8);
        s0 = vmlal_s16(s0, vget_low_s16(x0), vget_low_s16(w0));
        s1 = vmlal_high_s16(s1, x0, w0);
        s2 = vmlal_s16(s2, vget_low_s16(x1), vget_low_s16(w1));
        s3 = vmlal_high_s16(s3, x1, w1);
      }
      vst1q_s32(acc + ch, s0);
      vst1q_s32(acc + ch + 4, s1);
      vst1q_s32(acc + ch + 8, s2);
      vst1q_s32(acc + ch + 12, s3);
    }
    for (; ch < a.c; ++ch) {
      int32_t sum = a.init[ch];
      for (int t = 0; t < a.taps; ++t) sum += int32_t{a.x[t][at + ch]} * a.w[static_cast<size_t>(t) * a.c + ch];
      acc[ch] = sum;
    }
  }
}

KernelTable make_table() {
  KernelTable t;
  t.name = "neon";
  t.tile_n = kF32Tile;  // a multiple of the int8 tiles (4 channels here, 8 for i8mm)
  t.pack_s8 = pack_s8;
  t.gemm_u8s8 = gemm_u8s8;
  t.pack_f32 = pack_f32;
  t.gemm_f32 = gemm_f32;
  t.epilogue_s32 = epilogue_s32;
  t.quantize_rows_u8 = quantize_rows_u8;
  t.bias_act_f32 = bias_act_f32;
  t.relu_f32 = relu_f32;
  t.peak_probe = peak_probe;
  t.cnn = &neon_cnn_kernels();
  t.depthwise_s8 = depthwise_s8;
  return t;
}

}  // namespace

const KernelTable& neon_kernels() {
  static const KernelTable table = make_table();
  return table;
}

KernelTable neon_with_int8(const char* name, decltype(KernelTable::pack_s8) pack, decltype(KernelTable::gemm_u8s8) gemm,
                           decltype(KernelTable::peak_probe) probe) {
  KernelTable t = neon_kernels();
  t.name = name;
  t.pack_s8 = pack;
  t.gemm_u8s8 = gemm;
  t.peak_probe = probe;
  return t;
}

}  // namespace edgeopt
#endif
