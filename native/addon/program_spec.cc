#include "program_spec.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "args.h"

namespace edgeopt::addon {
namespace {

// Field readers: E_FORMAT naming `where` and the field for anything malformed.
struct Reader {
  Napi::Object o;
  std::string where;

  [[noreturn]] void fail(const std::string& why) const { throw error(o.Env(), "E_FORMAT", where + ": " + why); }
  Napi::Value get(const char* key) const { return o.Get(key); }
  bool has(const char* key) const {
    const Napi::Value v = o.Get(key);
    return !v.IsUndefined() && !v.IsNull();
  }
  double number(const char* key) const {
    const Napi::Value v = get(key);
    if (!v.IsNumber()) fail(std::string(key) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    const double d = number(key);
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
      fail(std::string(key) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<int64_t>(d);
  }
  int index(const char* key) const { return static_cast<int>(integer(key, 0, std::numeric_limits<int32_t>::max())); }
  int optional_index(const char* key) const { return has(key) ? index(key) : -1; }
  int dim(const char* key) const { return static_cast<int>(integer(key, 0, 1 << 30)); }
  float real(const char* key) const {
    const double d = number(key);
    if (std::isnan(d)) fail(std::string(key) + " is NaN");
    return static_cast<float>(d);
  }
  bool flag(const char* key) const { return get(key).IsBoolean() && get(key).As<Napi::Boolean>().Value(); }
  std::string string(const char* key) const {
    const Napi::Value v = get(key);
    if (!v.IsString()) fail(std::string(key) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  }
  Reader object(const char* key) const {
    const Napi::Value v = get(key);
    if (!v.IsObject()) fail(std::string(key) + " must be an object");
    return {v.As<Napi::Object>(), where + "." + key};
  }
  std::vector<int64_t> ints(const char* key, int64_t lo, int64_t hi) const {
    const Napi::Value v = get(key);
    if (!v.IsArray()) fail(std::string(key) + " must be an array");
    const Napi::Array a = v.As<Napi::Array>();
    if (a.Length() > 64) fail(std::string(key) + " is too long");
    std::vector<int64_t> out;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const Napi::Value e = a.Get(i);
      const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
      if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
        fail(std::string(key) + "[" + std::to_string(i) + "] must be an integer in " + std::to_string(lo) + ".." +
             std::to_string(hi));
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }
};

Activation activation(const Reader& r) {
  const Reader a = r.object("act");
  const std::string kind = a.string("kind");
  const float inf = std::numeric_limits<float>::infinity();
  Activation act;
  if (kind == "none")
    act.kind = ActKind::None;
  else if (kind == "relu")
    act.kind = ActKind::Relu;
  else if (kind == "leakyrelu")
    act = {ActKind::LeakyRelu, a.real("alpha"), 0, 0, 0};
  else if (kind == "clip") {
    act.kind = ActKind::Clip;
    act.lo = a.has("min") ? a.real("min") : -inf;
    act.hi = a.has("max") ? a.real("max") : inf;
  } else if (kind == "hardsigmoid")
    act = {ActKind::HardSigmoid, a.real("alpha"), a.real("beta"), 0, 0};
  else if (kind == "hardswish")
    act.kind = ActKind::HardSwish;
  else if (kind == "sigmoid")
    act.kind = ActKind::Sigmoid;
  else if (kind == "tanh")
    act.kind = ActKind::Tanh;
  else
    a.fail("unknown activation '" + kind + "'");
  return act;
}

StaticActivation quant(const Reader& r, const char* key) {
  const Reader q = r.object(key);
  const float scale = q.real("scale");
  if (!(scale > 0) || !std::isfinite(scale)) q.fail("scale must be a finite number > 0");
  return {scale, static_cast<int32_t>(q.integer("zeroPoint", -128, 127))};
}

// The window fields ConvOp/QConvOp and PoolOp/QPoolOp share (program.ts).
ConvShape conv_shape(const Reader& r) {
  return {r.dim("inH"),       r.dim("inW"),       r.dim("inC"),    r.dim("outH"),    r.dim("outW"),
          r.dim("outC"),      r.dim("kh"),        r.dim("kw"),     r.dim("strideH"), r.dim("strideW"),
          r.dim("dilationH"), r.dim("dilationW"), r.dim("padTop"), r.dim("padLeft"), r.dim("padBottom"),
          r.dim("padRight"),  r.dim("groups")};
}
PoolShape pool_shape(const Reader& r) {
  return {r.dim("inH"),     r.dim("inW"),       r.dim("c"),         r.dim("outH"),
          r.dim("outW"),    r.dim("kh"),        r.dim("kw"),        r.dim("strideH"),
          r.dim("strideW"), r.dim("dilationH"), r.dim("dilationW"), r.dim("padTop"),
          r.dim("padLeft"), r.dim("padBottom"), r.dim("padRight"),  r.flag("countIncludePad")};
}
int32_t zero_point(const Reader& r, const char* key) { return static_cast<int32_t>(r.integer(key, -128, 127)); }
QuantizedMultiplier multiplier(const Reader& r, const char* m0, const char* shift) {
  return {static_cast<int32_t>(r.integer(m0, 0, std::numeric_limits<int32_t>::max())),
          static_cast<int>(r.integer(shift, -31, 30))};
}

std::vector<int> indices(const Reader& r, const char* key) {
  std::vector<int> out;
  for (int64_t v : r.ints(key, 0, std::numeric_limits<int32_t>::max())) out.push_back(static_cast<int>(v));
  return out;
}

OpVariant parse_op(const Reader& r, const std::string& op, SparsePolicy sparse) {
  if (op == "conv") {
    return ConvSpec{r.index("x"),  r.index("y"), r.index("weight"), r.optional_index("bias"),
                    conv_shape(r), activation(r)};
  }
  if (op == "dense")
    return DenseSpec{r.index("x"), r.index("y"), r.index("weight"), r.optional_index("bias"),
                     r.dim("m"),   r.dim("n"),   r.dim("k"),        activation(r)};
  if (op == "qdense") {
    QDenseSpec q{r.index("x"),
                 r.index("y"),
                 r.index("weight"),
                 r.index("scales"),
                 r.optional_index("bias"),
                 r.dim("m"),
                 r.dim("n"),
                 r.dim("k"),
                 static_cast<int32_t>(r.integer("zeroPoint", -255, 255)),
                 r.dim("groupSize"),
                 r.has("input"),
                 r.has("output"),
                 {1.0f, 0},
                 {1.0f, 0},
                 activation(r),
                 sparse};
    if (q.has_input) q.input = quant(r, "input");
    if (q.has_output) q.output = quant(r, "output");
    return q;
  }
  if (op == "maxpool" || op == "avgpool") {
    return PoolSpec{r.index("x"), r.index("y"), op == "maxpool" ? PoolKind::Max : PoolKind::Average, pool_shape(r)};
  }
  if (op == "globalavgpool" || op == "globalmaxpool")
    return GlobalPoolSpec{r.index("x"), r.index("y"), op == "globalmaxpool" ? PoolKind::Max : PoolKind::Average,
                          static_cast<int64_t>(r.dim("h")) * r.dim("w"), r.dim("c")};
  if (op == "binary") {
    const std::string fn = r.string("fn");
    BinaryFn f = fn == "add"   ? BinaryFn::Add
                 : fn == "sub" ? BinaryFn::Sub
                 : fn == "mul" ? BinaryFn::Mul
                               : BinaryFn::Div;
    if (fn != "add" && fn != "sub" && fn != "mul" && fn != "div") r.fail("unknown binary fn '" + fn + "'");
    return BinarySpec{r.index("a"),
                      r.index("b"),
                      r.index("y"),
                      f,
                      r.ints("shape", 0, 1 << 30),
                      r.ints("aStrides", 0, int64_t{1} << 40),
                      r.ints("bStrides", 0, int64_t{1} << 40),
                      activation(r)};
  }
  if (op == "unary") return UnarySpec{r.index("x"), r.index("y"), activation(r)};
  if (op == "softmax") return AxisSpec{r.index("x"), r.index("y"), true, r.dim("outer"), r.dim("axis"), r.dim("inner")};
  if (op == "reducemean")
    return AxisSpec{r.index("x"), r.index("y"), false, r.dim("outer"), r.dim("reduce"), r.dim("inner")};
  if (op == "concat")
    return ConcatSpec{indices(r, "inputs"), r.index("y"), r.dim("outer"), r.ints("sizes", 0, int64_t{1} << 40)};
  if (op == "split")
    return SplitSpec{r.index("x"), indices(r, "outputs"), r.dim("outer"), r.ints("sizes", 0, int64_t{1} << 40)};
  if (op == "pad")
    return PadSpec{r.index("x"),
                   r.index("y"),
                   r.ints("inShape", 0, 1 << 30),
                   r.ints("begin", 0, 1 << 20),
                   r.ints("end", 0, 1 << 20),
                   r.real("value")};
  if (op == "transpose") {
    std::vector<int> perm;
    for (int64_t p : r.ints("perm", 0, 63)) perm.push_back(static_cast<int>(p));
    return TransposeSpec{r.index("x"), r.index("y"), r.ints("inShape", 0, 1 << 30), perm};
  }
  if (op == "lrn")
    return LrnSpec{r.index("x"),  r.index("y"),    r.dim("h"),     r.dim("w"),    r.dim("c"),
                   r.dim("size"), r.real("alpha"), r.real("beta"), r.real("bias")};
  if (op == "quantize" || op == "dequantize") {
    const float scale = r.real("scale");
    if (!(scale > 0) || !std::isfinite(scale)) r.fail("scale must be a finite number > 0");
    return QuantizeSpec{r.index("x"),
                        r.index("y"),
                        op == "dequantize",
                        r.dim("count"),
                        {scale, static_cast<int32_t>(r.integer("zeroPoint", -128, 127))}};
  }
  if (op == "qconv") {
    QConvSpec c{};
    c.x = r.index("x"), c.y = r.index("y"), c.weight = r.index("weight"), c.bias = r.index("bias");
    c.multipliers = r.index("multipliers"), c.shifts = r.index("shifts");
    c.shape = conv_shape(r);
    c.input_zero_point = zero_point(r, "inputZeroPoint");
    c.output_zero_point = zero_point(r, "outputZeroPoint");
    c.lo = zero_point(r, "min");
    c.hi = zero_point(r, "max");
    return c;
  }
  if (op == "qlut") return QLutSpec{r.index("x"), r.index("y"), r.index("table"), r.dim("count")};
  if (op == "qbinary") {
    const std::string fn = r.string("fn");
    if (fn != "add" && fn != "mul") r.fail("unknown int8 binary fn '" + fn + "'");
    QBinarySpec b{};
    b.a = r.index("a"), b.b = r.index("b"), b.y = r.index("y"), b.mul = fn == "mul", b.count = r.dim("count");
    b.a_zero_point = zero_point(r, "aZeroPoint");
    b.b_zero_point = zero_point(r, "bZeroPoint");
    b.output_zero_point = zero_point(r, "outputZeroPoint");
    b.left_shift = static_cast<int>(r.integer("leftShift", 0, 20));
    b.a_rescale = multiplier(r, "aMultiplier", "aShift");
    b.b_rescale = multiplier(r, "bMultiplier", "bShift");
    b.output = multiplier(r, "multiplier", "shift");
    b.lo = zero_point(r, "min");
    b.hi = zero_point(r, "max");
    return b;
  }
  if (op == "qmaxpool" || op == "qavgpool")
    return QPoolSpec{r.index("x"), r.index("y"), op == "qmaxpool" ? PoolKind::Max : PoolKind::Average, pool_shape(r)};
  if (op == "qglobalavgpool")
    return QGlobalAvgPoolSpec{r.index("x"),
                              r.index("y"),
                              static_cast<int64_t>(r.dim("h")) * r.dim("w"),
                              r.dim("c"),
                              zero_point(r, "inputZeroPoint"),
                              zero_point(r, "outputZeroPoint"),
                              multiplier(r, "multiplier", "shift")};
  if (op == "qconcat") {
    QConcatSpec c{};
    c.inputs = indices(r, "inputs"), c.y = r.index("y"), c.outer = r.dim("outer");
    c.sizes = r.ints("sizes", 0, int64_t{1} << 40);
    const Napi::Value flags = r.get("rescale");
    if (!flags.IsArray() || flags.As<Napi::Array>().Length() != c.inputs.size())
      r.fail("rescale must be an array of one boolean per input");
    for (uint32_t i = 0; i < c.inputs.size(); ++i) {
      const Napi::Value f = flags.As<Napi::Array>().Get(i);
      if (!f.IsBoolean()) r.fail("rescale[" + std::to_string(i) + "] must be a boolean");
      c.rescale.push_back(f.As<Napi::Boolean>().Value());
    }
    for (int64_t z : r.ints("zeroPoints", -128, 127)) c.zero_points.push_back(static_cast<int32_t>(z));
    const std::vector<int64_t> m = r.ints("inputMultipliers", 0, std::numeric_limits<int32_t>::max());
    const std::vector<int64_t> sh = r.ints("inputShifts", -31, 30);
    if (m.size() != sh.size()) r.fail("inputMultipliers and inputShifts differ in length");
    for (size_t i = 0; i < m.size(); ++i)
      c.multipliers.push_back({static_cast<int32_t>(m[i]), static_cast<int>(sh[i])});
    c.output_zero_point = zero_point(r, "outputZeroPoint");
    return c;
  }
  throw error(r.o.Env(), "E_UNSUPPORTED_OP", r.where + ": op '" + op + "' is not a Program op");
}

DType dtype_of(const Reader& r) {
  const std::string d = r.string("dtype");
  if (d == "float32") return DType::F32;
  if (d == "int8") return DType::I8;
  if (d == "uint8") return DType::U8;
  if (d == "int32") return DType::I32;
  r.fail("unknown dtype '" + d + "'");
}

const void* constant_data(const Reader& r, DType dtype, size_t* count) {
  const Napi::Value v = r.get("data");
  const char* what = "data";
  switch (dtype) {
    case DType::F32:
      return typed_view<float>(v, what, -1, count);
    case DType::I8:
      return typed_view<int8_t>(v, what, -1, count);
    case DType::U8:
      return typed_view<uint8_t>(v, what, -1, count);
    case DType::I32:
      return typed_view<int32_t>(v, what, -1, count);
  }
  return nullptr;
}

std::vector<IoSpec> io_list(const Reader& r, const char* key, size_t tensors) {
  const Napi::Value v = r.get(key);
  if (!v.IsArray()) r.fail(std::string(key) + " must be an array");
  const Napi::Array a = v.As<Napi::Array>();
  std::vector<IoSpec> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) r.fail(std::string(key) + "[" + std::to_string(i) + "] must be an object");
    const Reader e{a.Get(i).As<Napi::Object>(), r.where + "." + key + "[" + std::to_string(i) + "]"};
    out.push_back({e.string("name"), static_cast<int>(e.integer("tensor", 0, static_cast<int64_t>(tensors) - 1))});
  }
  return out;
}

}  // namespace

SparsePolicy sparse_policy_arg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return SparsePolicy::Auto;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "auto") return SparsePolicy::Auto;
  if (s == "always") return SparsePolicy::Always;
  if (s == "never") return SparsePolicy::Never;
  throw error(v.Env(), "E_ARGUMENT", "sparse must be 'auto', 'always' or 'never'");
}

ProgramSpec parse_program(const Napi::Value& v, SparsePolicy sparse) {
  if (!v.IsObject()) throw error(v.Env(), "E_ARGUMENT", "expected a Program object");
  const Reader r{v.As<Napi::Object>(), "program"};
  ProgramSpec p;
  p.name = r.has("name") ? r.string("name") : "program";
  const Napi::Value tv = r.get("tensors"), ov = r.get("ops");
  if (!tv.IsArray() || !ov.IsArray()) r.fail("tensors and ops must be arrays");
  const Napi::Array tensors = tv.As<Napi::Array>(), ops = ov.As<Napi::Array>();
  if (tensors.Length() > (1u << 20) || ops.Length() > (1u << 20)) r.fail("has too many tensors or ops");
  for (uint32_t i = 0; i < tensors.Length(); ++i) {
    if (!tensors.Get(i).IsObject()) r.fail("tensors[" + std::to_string(i) + "] must be an object");
    const Reader t{tensors.Get(i).As<Napi::Object>(), "program.tensors[" + std::to_string(i) + "]"};
    TensorSpec s;
    s.name = t.has("name") ? t.string("name") : "";
    s.dtype = dtype_of(t);
    s.shape = t.ints("shape", 0, int64_t{1} << 31);
    if (t.has("data")) {
      size_t count = 0;
      s.kind = TensorSpec::Kind::Constant;
      s.data = constant_data(t, s.dtype, &count);
      int64_t want = 1;
      for (int64_t d : s.shape) want *= d;
      if (static_cast<int64_t>(count) != want) t.fail("data holds " + std::to_string(count) + " values for its shape");
    } else if (t.has("alias")) {
      s.kind = TensorSpec::Kind::View;
      s.alias = static_cast<int>(t.integer("alias", 0, static_cast<int64_t>(tensors.Length()) - 1));
    } else if (t.has("offset")) {
      s.kind = TensorSpec::Kind::Arena;
      s.offset = t.integer("offset", 0, int64_t{1} << 40);
    } else {
      s.kind = TensorSpec::Kind::External;  // must be an input or an output's root (validate_program)
    }
    p.tensors.push_back(std::move(s));
  }
  p.arena_bytes = r.integer("arenaBytes", 0, int64_t{1} << 40);
  p.inputs = io_list(r, "inputs", p.tensors.size());
  p.outputs = io_list(r, "outputs", p.tensors.size());
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    if (!ops.Get(i).IsObject()) r.fail("ops[" + std::to_string(i) + "] must be an object");
    const Reader o{ops.Get(i).As<Napi::Object>(), "program.ops[" + std::to_string(i) + "]"};
    const std::string node = o.has("node") ? o.string("node") : "?";
    Reader named{o.o, o.where + " (node '" + node + "')"};
    p.ops.push_back({node, parse_op(named, named.string("op"), sparse)});
  }
  guarded(v.Env(), [&] { validate_program(p); });
  return p;
}

}  // namespace edgeopt::addon
