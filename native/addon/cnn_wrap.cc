#include "cnn_wrap.h"

#include <memory>
#include <string>
#include <vector>

#include "../core/parallel_cnn.h"
#include "cnn_args.h"

namespace edgeopt::addon {
namespace {

const CnnKernels& cnn_arg(const Napi::Value& v) { return *kernels_arg(v).cnn; }

Napi::Float32Array new_floats(Napi::Env env, long long n) {
  return Napi::Float32Array::New(env, static_cast<size_t>(n));
}

// The largest element an operand of these strides reads, plus one.
long long extent(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  long long e = 1;
  for (size_t i = 0; i < dims.size(); ++i) e += (dims[i] - 1) * strides[i];
  return e;
}

// conv(x, weight, bias | null, shape, act, batch, kernel?, threads?) -> y
Napi::Value Conv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ConvShape s = conv_shape_arg(info[3]);
  const Activation act = activation_arg(info[4]);
  const int batch = dim(info[5], "batch");
  const CnnKernels& cnn = cnn_arg(info[6]);
  const KernelTable& kt = kernels_arg(info[6]);
  const int threads = threads_arg(info[7]);
  if (s.in_c % s.groups || s.out_c % s.groups) throw error(env, "E_SHAPE", "conv: groups must divide inC and outC");
  const long long k = product(env, product(env, s.kh, s.kw, "kernel"), s.in_c / s.groups, "kernel");
  const float* x = typed_view<float>(
      info[0], "x", product(env, product(env, batch, product(env, s.in_h, s.in_w, "x"), "x"), s.in_c, "x"));
  const float* w = typed_view<float>(info[1], "weight", product(env, s.out_c, k, "weight"));
  const float* bias = info[2].IsNull() || info[2].IsUndefined() ? nullptr : typed_view<float>(info[2], "bias", s.out_c);
  return guarded(env, [&]() -> Napi::Value {
    PackedConvF32 packed;
    pack_conv_f32(kt, s, w, bias, act, &packed);
    std::shared_ptr<ThreadPool> pool = threads > 1 ? ThreadPool::shared(threads) : nullptr;
    std::vector<float> scratch(conv_parallel_scratch_floats(packed, pool.get()));
    Napi::Float32Array y =
        new_floats(env, product(env, product(env, batch, product(env, s.out_h, s.out_w, "y"), "y"), s.out_c, "y"));
    conv_f32_parallel(cnn, pool.get(), packed, x, y.Data(), batch, scratch.data());
    return y;
  });
}

PoolKind pool_kind_arg(const Napi::Value& v, const char* max_name, const char* avg_name) {
  const std::string k = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (k == max_name) return PoolKind::Max;
  if (k == avg_name) return PoolKind::Average;
  throw error(v.Env(), "E_ARGUMENT", std::string("kind must be '") + max_name + "' or '" + avg_name + "'");
}

// pool('maxpool' | 'avgpool', x, shape, batch, kernel?) -> y
Napi::Value Pool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const PoolKind kind = pool_kind_arg(info[0], "maxpool", "avgpool");
  const PoolShape s = pool_shape_arg(info[2]);
  const int batch = dim(info[3], "batch");
  const CnnKernels& cnn = cnn_arg(info[4]);
  guarded(env, [&] { check_pool_shape(s); });
  const float* x = typed_view<float>(
      info[1], "x", product(env, product(env, batch, product(env, s.in_h, s.in_w, "x"), "x"), s.c, "x"));
  Napi::Float32Array y =
      new_floats(env, product(env, product(env, batch, product(env, s.out_h, s.out_w, "y"), "y"), s.c, "y"));
  pool_f32_parallel(cnn, nullptr, kind, s, x, y.Data(), batch);
  return y;
}

// globalPool('globalmaxpool' | 'globalavgpool', x, pixels, c, batch, kernel?) -> y [batch][c]
Napi::Value GlobalPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const PoolKind kind = pool_kind_arg(info[0], "globalmaxpool", "globalavgpool");
  const int pixels = dim(info[2], "pixels"), c = dim(info[3], "c"), batch = dim(info[4], "batch");
  const CnnKernels& cnn = cnn_arg(info[5]);
  const float* x = typed_view<float>(info[1], "x", product(env, product(env, batch, pixels, "x"), c, "x"));
  Napi::Float32Array y = new_floats(env, product(env, batch, c, "y"));
  global_pool_f32_parallel(cnn, nullptr, kind, x, y.Data(), batch, pixels, c);
  return y;
}

// binary(fn, a, b, shape, aStrides, bStrides, act, kernel?) -> y (program.ts BinaryOp)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string f = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  const BinaryFn fn = f == "add"   ? BinaryFn::Add
                      : f == "sub" ? BinaryFn::Sub
                      : f == "mul" ? BinaryFn::Mul
                      : f == "div" ? BinaryFn::Div
                                   : throw error(env, "E_ARGUMENT", "fn must be 'add', 'sub', 'mul' or 'div'");
  const std::vector<int64_t> dims = int_list_arg(info[3], "shape", 1, int64_t{1} << 31);
  const std::vector<int64_t> as = int_list_arg(info[4], "aStrides", 0, int64_t{1} << 31);
  const std::vector<int64_t> bs = int_list_arg(info[5], "bStrides", 0, int64_t{1} << 31);
  if (as.size() != dims.size() || bs.size() != dims.size())
    throw error(env, "E_SHAPE", "aStrides and bStrides must have one entry per dim of shape");
  const Activation act = activation_arg(info[6]);
  const CnnKernels& cnn = cnn_arg(info[7]);
  const BroadcastShape shape =
      guarded(env, [&] { return make_broadcast(static_cast<int>(dims.size()), dims.data(), as.data(), bs.data()); });
  size_t a_len = 0, b_len = 0;
  const float* a = typed_view<float>(info[1], "a", -1, &a_len);
  const float* b = typed_view<float>(info[2], "b", -1, &b_len);
  if (extent(dims, as) > static_cast<long long>(a_len) || extent(dims, bs) > static_cast<long long>(b_len))
    throw error(env, "E_SHAPE", "an operand is shorter than its strides address");
  const long long n = broadcast_elements(shape);
  if (n > (1ll << 31)) throw error(env, "E_SHAPE", "binary: more than 2^31 elements");
  Napi::Float32Array y = new_floats(env, n);
  binary_f32_parallel(cnn, nullptr, fn, shape, a, b, y.Data(), act);
  return y;
}

// activation(x, act, kernel?) -> y
Napi::Value ActivationFn(const Napi::CallbackInfo& info) {
  size_t n = 0;
  const float* x = typed_view<float>(info[0], "x", -1, &n);
  const Activation act = activation_arg(info[1]);
  Napi::Float32Array y = new_floats(info.Env(), static_cast<long long>(n));
  cnn_arg(info[2]).activation_f32(x, y.Data(), n, act);
  return y;
}

// softmax / reduceMean(x, outer, axis, inner, kernel?) -> y
template <bool kSoftmax>
Napi::Value AxisOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int outer = dim(info[1], "outer"), axis = dim(info[2], "axis"), inner = dim(info[3], "inner");
  const CnnKernels& cnn = cnn_arg(info[4]);
  const long long cols = product(env, outer, inner, "x");
  const float* x = typed_view<float>(info[0], "x", product(env, cols, axis, "x"));
  Napi::Float32Array y = new_floats(env, kSoftmax ? cols * axis : cols);
  if (kSoftmax)
    softmax_f32_parallel(cnn, nullptr, x, y.Data(), outer, axis, inner);
  else
    reduce_mean_f32_parallel(cnn, nullptr, x, y.Data(), outer, axis, inner);
  return y;
}

// lrn(x, pixels, c, size, alpha, beta, bias, kernel?) -> y
Napi::Value Lrn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int pixels = dim(info[1], "pixels"), c = dim(info[2], "c"), size = dim(info[3], "size");
  for (int i = 4; i <= 6; ++i)
    if (!info[i].IsNumber()) throw error(env, "E_ARGUMENT", "alpha, beta and bias must be numbers");
  const float alpha = info[4].As<Napi::Number>().FloatValue(), beta = info[5].As<Napi::Number>().FloatValue(),
              bias = info[6].As<Napi::Number>().FloatValue();
  const CnnKernels& cnn = cnn_arg(info[7]);
  const float* x = typed_view<float>(info[0], "x", product(env, pixels, c, "x"));
  Napi::Float32Array y = new_floats(env, static_cast<long long>(pixels) * c);
  lrn_f32_parallel(cnn, nullptr, x, y.Data(), pixels, c, size, alpha, beta, bias);
  return y;
}

// concat(inputs: Float32Array[], sizes, outer, kernel?) -> y
Napi::Value Concat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int64_t> sizes = int_list_arg(info[1], "sizes", 1, int64_t{1} << 30);
  const int outer = dim(info[2], "outer");
  const CnnKernels& cnn = cnn_arg(info[3]);
  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != sizes.size())
    throw error(env, "E_SHAPE", "inputs must be an array with one entry per size");
  std::vector<const void*> inputs;
  long long total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    inputs.push_back(typed_view<float>(info[0].As<Napi::Array>().Get(static_cast<uint32_t>(i)), "inputs[i]",
                                       product(env, outer, sizes[i], "input")));
    total += sizes[i];
  }
  Napi::Float32Array y = new_floats(env, product(env, outer, total, "y"));
  concat_parallel(cnn, nullptr, static_cast<int>(sizes.size()), inputs.data(), sizes.data(), y.Data(), outer, 4);
  return y;
}

// split(x, sizes, outer, kernel?) -> Float32Array[]
Napi::Value Split(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int64_t> sizes = int_list_arg(info[1], "sizes", 1, int64_t{1} << 30);
  const int outer = dim(info[2], "outer");
  const CnnKernels& cnn = cnn_arg(info[3]);
  long long total = 0;
  for (int64_t s : sizes) total += s;
  const float* x = typed_view<float>(info[0], "x", product(env, outer, total, "x"));
  Napi::Array outs = Napi::Array::New(env, sizes.size());
  std::vector<void*> outputs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Napi::Float32Array o = new_floats(env, product(env, outer, sizes[i], "output"));
    outs.Set(static_cast<uint32_t>(i), o);
    outputs.push_back(o.Data());
  }
  split_parallel(cnn, nullptr, static_cast<int>(sizes.size()), x, sizes.data(), outputs.data(), outer, 4);
  return outs;
}

// pad(x, inShape, begin, end, value, kernel?) -> y
Napi::Value Pad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int64_t> in = int_list_arg(info[1], "inShape", 1, int64_t{1} << 31);
  const std::vector<int64_t> begin = int_list_arg(info[2], "begin", -(int64_t{1} << 31), 1 << 20);
  const std::vector<int64_t> end = int_list_arg(info[3], "end", -(int64_t{1} << 31), 1 << 20);
  if (begin.size() != in.size() || end.size() != in.size())
    throw error(env, "E_SHAPE", "begin and end must have one entry per dim");
  if (!info[4].IsNumber()) throw error(env, "E_ARGUMENT", "value must be a number");
  const float value = info[4].As<Napi::Number>().FloatValue();
  const CnnKernels& cnn = cnn_arg(info[5]);
  const PadShape shape =
      guarded(env, [&] { return make_pad(static_cast<int>(in.size()), in.data(), begin.data(), end.data()); });
  long long n_in = 1, n_out = 1;
  for (size_t d = 0; d < in.size(); ++d) {
    n_in = product(env, n_in, in[d], "x");
    n_out = product(env, n_out, in[d] + begin[d] + end[d], "y");
  }
  const float* x = typed_view<float>(info[0], "x", n_in);
  Napi::Float32Array y = new_floats(env, n_out);
  pad_parallel(cnn, nullptr, shape, x, y.Data(), 4, &value);
  return y;
}

// transpose(x, inShape, perm, kernel?) -> y
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int64_t> in = int_list_arg(info[1], "inShape", 1, int64_t{1} << 31);
  const std::vector<int64_t> perm64 = int_list_arg(info[2], "perm", 0, 31);
  if (perm64.size() != in.size()) throw error(env, "E_SHAPE", "perm must have one entry per dim");
  const std::vector<int> perm(perm64.begin(), perm64.end());
  const CnnKernels& cnn = cnn_arg(info[3]);
  const TransposeShape shape =
      guarded(env, [&] { return make_transpose(static_cast<int>(in.size()), in.data(), perm.data()); });
  long long n = 1;
  for (int64_t d : in) n = product(env, n, d, "x");
  const float* x = typed_view<float>(info[0], "x", n);
  Napi::Float32Array y = new_floats(env, n);
  transpose_parallel(cnn, nullptr, shape, x, y.Data(), 4);
  return y;
}

}  // namespace

Napi::Object CnnExports(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("conv", Napi::Function::New(env, Conv, "conv"));
  o.Set("pool", Napi::Function::New(env, Pool, "pool"));
  o.Set("globalPool", Napi::Function::New(env, GlobalPool, "globalPool"));
  o.Set("binary", Napi::Function::New(env, Binary, "binary"));
  o.Set("activation", Napi::Function::New(env, ActivationFn, "activation"));
  o.Set("softmax", Napi::Function::New(env, AxisOp<true>, "softmax"));
  o.Set("reduceMean", Napi::Function::New(env, AxisOp<false>, "reduceMean"));
  o.Set("lrn", Napi::Function::New(env, Lrn, "lrn"));
  o.Set("concat", Napi::Function::New(env, Concat, "concat"));
  o.Set("split", Napi::Function::New(env, Split, "split"));
  o.Set("pad", Napi::Function::New(env, Pad, "pad"));
  o.Set("transpose", Napi::Function::New(env, Transpose, "transpose"));
  return o;
}

}  // namespace edgeopt::addon
