#include "program.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "error.h"
#include "program_ops.h"
#include "program_team.h"

namespace edgeopt {

size_t dtype_bytes(DType t) { return t == DType::F32 || t == DType::I32 ? 4 : 1; }

const char* op_name(const OpVariant& op) {
  static const char* const kNames[] = {"conv",  "dense",  "qdense",  "pool",  "globalpool",     "binary", "unary",
                                       "axis",  "concat", "split",   "pad",   "transpose",      "lrn",    "quantize",
                                       "qconv", "qlut",   "qbinary", "qpool", "qglobalavgpool", "qconcat"};
  return kNames[op.index()];
}

std::vector<std::string> native_program_ops() {
  return {"conv",       "dense",    "qdense",         "maxpool",    "avgpool", "globalavgpool", "globalmaxpool",
          "binary",     "unary",    "softmax",        "concat",     "split",   "pad",           "transpose",
          "reducemean", "lrn",      "quantize",       "dequantize", "qconv",   "qlut",          "qbinary",
          "qmaxpool",   "qavgpool", "qglobalavgpool", "qconcat"};
}

namespace {

constexpr int64_t kAlign = 64;

[[noreturn]] void bad(const ProgramSpec& p, size_t op, const std::string& why, const char* code = "E_FORMAT") {
  throw Error(code, "program '" + p.name + "': op " + std::to_string(op) + " (node '" + p.ops[op].node + "', " +
                        op_name(p.ops[op].op) + ") " + why);
}

int root_of(const ProgramSpec& p, int t) { return p.tensors[t].alias >= 0 ? p.tensors[t].alias : t; }

}  // namespace

int64_t root_elements(const ProgramSpec& p, int t) { return p.tensors[root_of(p, t)].elements; }

// ---------------------------------------------------------------- validation

namespace {

struct Checker {
  ProgramSpec& p;
  size_t op = 0;

  [[noreturn]] void fail(const std::string& why, const char* code = "E_FORMAT") const { bad(p, op, why, code); }

  const TensorSpec& t(int i, const char* what) const {
    if (i < 0 || static_cast<size_t>(i) >= p.tensors.size())
      fail(std::string(what) + " names tensor " + std::to_string(i) + " of " + std::to_string(p.tensors.size()));
    return p.tensors[i];
  }
  // An activation (not a constant) of exactly `elements` elements per image.
  void act(int i, int64_t elements, const char* what, DType dtype = DType::F32) const {
    const TensorSpec& x = t(i, what);
    if (x.kind == TensorSpec::Kind::Constant) fail(std::string(what) + " must be an activation, not a constant");
    if (x.dtype != dtype) fail(std::string(what) + " has the wrong dtype");
    if (x.elements != elements)
      fail(std::string(what) + " '" + x.name + "' holds " + std::to_string(x.elements) + " values per image, the op " +
               std::to_string(elements),
           "E_SHAPE");
  }
  void written(int i, int64_t elements, const char* what, DType dtype = DType::F32) const {
    act(i, elements, what, dtype);
    if (p.tensors[root_of(p, i)].kind == TensorSpec::Kind::External &&
        std::any_of(p.inputs.begin(), p.inputs.end(),
                    [&](const IoSpec& in) { return root_of(p, in.tensor) == root_of(p, i); }))
      fail(std::string(what) + " writes over a program input");
  }
  void constant(int i, int64_t elements, const char* what, DType dtype = DType::F32) const {
    const TensorSpec& x = t(i, what);
    if (x.kind != TensorSpec::Kind::Constant || !x.data) fail(std::string(what) + " must be a constant with data");
    if (x.dtype != dtype) fail(std::string(what) + " has the wrong dtype");
    if (x.elements != elements)
      fail(std::string(what) + " has " + std::to_string(x.elements) + " values, expected " + std::to_string(elements),
           "E_SHAPE");
  }
  static int64_t mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0 || (b && a > (int64_t{1} << 40) / b)) throw Error("E_SHAPE", "size overflow");
    return a * b;
  }
  void positive(std::initializer_list<int64_t> v, const char* what) const {
    for (int64_t x : v)
      if (x < 1 || x > (int64_t{1} << 30)) fail(std::string(what) + " must be in 1..2^30", "E_SHAPE");
  }
  void activation(const Activation& a) const {
    if (a.kind == ActKind::Clip && (a.lo != a.lo || a.hi != a.hi)) fail("clip bounds are NaN");
  }

  void conv_shape(const ConvShape& s) const {
    positive({s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h,
              s.dilation_w, s.groups},
             "conv sizes");
    if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0) fail("has negative pads", "E_SHAPE");
    if (s.in_c % s.groups || s.out_c % s.groups) fail("groups do not divide the channels", "E_SHAPE");
    auto out = [](int in, int k, int stride, int dil, int b, int e) {
      return (in + b + e - dil * (k - 1) - 1) / stride + 1;
    };
    if (s.out_h != out(s.in_h, s.kh, s.stride_h, s.dilation_h, s.pad_top, s.pad_bottom) ||
        s.out_w != out(s.in_w, s.kw, s.stride_w, s.dilation_w, s.pad_left, s.pad_right))
      fail("output size does not follow from the input, window, strides and pads", "E_SHAPE");
  }
  void operator()(const ConvSpec& c) const {
    const ConvShape& s = c.shape;
    conv_shape(s);
    act(c.x, mul(mul(s.in_h, s.in_w), s.in_c), "x");
    written(c.y, mul(mul(s.out_h, s.out_w), s.out_c), "y");
    constant(c.weight, mul(mul(s.out_c, mul(s.kh, s.kw)), s.in_c / s.groups), "weight");
    if (c.bias >= 0) constant(c.bias, s.out_c, "bias");
    activation(c.act);
  }
  void operator()(const DenseSpec& d) const {
    positive({d.m, d.n, d.k}, "dense sizes");
    act(d.x, mul(d.m, d.k), "x");
    written(d.y, mul(d.m, d.n), "y");
    constant(d.weight, mul(d.n, d.k), "weight");
    if (d.bias >= 0) constant(d.bias, d.n, "bias");
    activation(d.act);
  }
  void operator()(const QDenseSpec& d) const {
    positive({d.m, d.n, d.k}, "qdense sizes");
    if (d.k > 32768) fail("has K > 32768 (int32 accumulators could overflow)", "E_SHAPE");
    act(d.x, mul(d.m, d.k), "x");
    written(d.y, mul(d.m, d.n), "y");
    constant(d.weight, mul(d.n, d.k), "weight", DType::I8);
    const TensorSpec& s = t(d.scales, "scales");
    if (s.kind != TensorSpec::Kind::Constant || s.dtype != DType::F32 || !s.data)
      fail("scales must be float32 constants");
    if (d.group_size < 0 || d.group_size > d.k) fail("groupSize must be in 0..k", "E_SHAPE");
    const int64_t groups = d.group_size ? (d.k + d.group_size - 1) / d.group_size : 1;
    if (d.group_size ? s.elements != d.n * groups : (s.elements != 1 && s.elements != d.n))
      fail("has " + std::to_string(s.elements) + " scales for " + std::to_string(d.n) + " channels", "E_SHAPE");
    if (d.bias >= 0) constant(d.bias, d.n, "bias");
    if (d.act.kind != ActKind::None && d.act.kind != ActKind::Relu) fail("fuses an activation other than relu");
  }
  void pool_shape(const PoolShape& s) const {
    positive({s.in_h, s.in_w, s.c, s.out_h, s.out_w, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w},
             "pool sizes");
    if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0) fail("has negative pads", "E_SHAPE");
    // Every window must start inside the padded input.
    if ((s.out_h - 1) * s.stride_h - s.pad_top >= s.in_h + s.pad_bottom ||
        (s.out_w - 1) * s.stride_w - s.pad_left >= s.in_w + s.pad_right)
      fail("has windows past the input", "E_SHAPE");
  }
  void operator()(const PoolSpec& q) const {
    const PoolShape& s = q.shape;
    pool_shape(s);
    act(q.x, mul(mul(s.in_h, s.in_w), s.c), "x");
    written(q.y, mul(mul(s.out_h, s.out_w), s.c), "y");
  }
  void operator()(const GlobalPoolSpec& g) const {
    positive({g.pixels, g.c}, "global pool sizes");
    act(g.x, mul(g.pixels, g.c), "x");
    written(g.y, g.c, "y");
  }
  void operator()(const BinarySpec& b) const {
    const size_t rank = b.shape.size();
    if (rank == 0 || rank > kMaxDims || b.a_strides.size() != rank || b.b_strides.size() != rank)
      fail("shape and strides must have the same rank, 1.." + std::to_string(kMaxDims));
    int64_t total = 1;
    for (int64_t d : b.shape) {
      positive({d}, "binary dims");
      total = mul(total, d);
    }
    written(b.y, total, "y");
    for (const auto& [i, strides, what] : {std::tuple{b.a, &b.a_strides, "a"}, std::tuple{b.b, &b.b_strides, "b"}}) {
      const TensorSpec& x = t(i, what);
      if (x.dtype != DType::F32) fail(std::string(what) + " must be float32");
      int64_t reach = 0;
      for (size_t d = 0; d < rank; ++d) {
        if ((*strides)[d] < 0) fail("has negative strides", "E_SHAPE");
        reach += mul(b.shape[d] - 1, (*strides)[d]);
      }
      if (reach >= x.elements) fail(std::string("operand ") + what + " is read past its end", "E_SHAPE");
    }
    activation(b.act);
  }
  void operator()(const UnarySpec& u) const {
    const TensorSpec& x = t(u.x, "x");
    act(u.x, x.elements, "x");
    written(u.y, x.elements, "y");
    activation(u.act);
  }
  void operator()(const AxisSpec& a) const {
    positive({a.outer, a.axis, a.inner}, "axis sizes");
    act(a.x, mul(mul(a.outer, a.axis), a.inner), "x");
    written(a.y, a.softmax ? mul(mul(a.outer, a.axis), a.inner) : mul(a.outer, a.inner), "y");
  }
  void operator()(const ConcatSpec& c) const {
    if (c.inputs.empty() || c.inputs.size() != c.sizes.size()) fail("needs one size per input");
    positive({c.outer}, "outer");
    int64_t total = 0;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      positive({c.sizes[i]}, "sizes");
      act(c.inputs[i], mul(c.outer, c.sizes[i]), "input");
      total += c.sizes[i];
    }
    written(c.y, mul(c.outer, total), "y");
  }
  void operator()(const SplitSpec& s) const {
    if (s.outputs.empty() || s.outputs.size() != s.sizes.size()) fail("needs one size per output");
    positive({s.outer}, "outer");
    int64_t total = 0;
    for (size_t i = 0; i < s.outputs.size(); ++i) {
      positive({s.sizes[i]}, "sizes");
      written(s.outputs[i], mul(s.outer, s.sizes[i]), "output");
      total += s.sizes[i];
    }
    act(s.x, mul(s.outer, total), "x");
  }
  void operator()(const PadSpec& q) const {
    const size_t rank = q.in_shape.size();
    if (rank == 0 || rank + 1 > kMaxDims || q.begin.size() != rank || q.end.size() != rank)
      fail("needs begin/end for every dim (rank 1.." + std::to_string(kMaxDims - 1) + ")");
    int64_t in = 1, out = 1;
    for (size_t d = 0; d < rank; ++d) {
      positive({q.in_shape[d]}, "inShape");
      if (q.begin[d] < 0 || q.end[d] < 0 || q.begin[d] > (1 << 20) || q.end[d] > (1 << 20))
        fail("has bad pads", "E_SHAPE");
      in = mul(in, q.in_shape[d]);
      out = mul(out, q.in_shape[d] + q.begin[d] + q.end[d]);
    }
    act(q.x, in, "x");
    written(q.y, out, "y");
  }
  void operator()(const TransposeSpec& q) const {
    const size_t rank = q.in_shape.size();
    if (rank == 0 || rank + 1 > kMaxDims || q.perm.size() != rank) fail("needs a perm entry per dim");
    std::vector<bool> seen(rank, false);
    int64_t n = 1;
    for (size_t d = 0; d < rank; ++d) {
      if (q.perm[d] < 0 || static_cast<size_t>(q.perm[d]) >= rank || seen[q.perm[d]]) fail("perm is not a permutation");
      seen[q.perm[d]] = true;
      positive({q.in_shape[d]}, "inShape");
      n = mul(n, q.in_shape[d]);
    }
    act(q.x, n, "x");
    written(q.y, n, "y");
    if (root_of(p, q.x) == root_of(p, q.y)) fail("transposes in place");
  }
  // ---- int8 ops
  void grid(int32_t zero_point, const char* what) const {
    if (zero_point < -128 || zero_point > 127) fail(std::string(what) + " must be in -128..127");
  }
  void clamp_range(int32_t lo, int32_t hi) const {
    if (lo < -128 || hi > 127 || lo > hi) fail("min/max must satisfy -128 <= min <= max <= 127");
  }
  void multiplier(QuantizedMultiplier m, const char* what) const {
    if (m.m0 < 0 || m.shift < -31 || m.shift > 30)
      fail(std::string(what) + " must be a Q31 multiplier with a shift in -31..30");
  }
  void operator()(const QuantizeSpec& q) const {
    positive({q.count}, "count");
    if (!(q.grid.scale > 0) || !std::isfinite(q.grid.scale)) fail("scale must be a finite number > 0");
    grid(q.grid.zero_point, "zeroPoint");
    act(q.x, q.count, "x", q.dequantize ? DType::I8 : DType::F32);
    written(q.y, q.count, "y", q.dequantize ? DType::F32 : DType::I8);
  }
  void operator()(const QConvSpec& c) const {
    conv_shape(c.shape);
    const ConvShape& s = c.shape;
    const int64_t k = mul(mul(s.kh, s.kw), s.in_c / s.groups);
    if (k > (int64_t{1} << 16))
      fail("has a patch of more than 65536 taps (int32 accumulators could overflow)", "E_SHAPE");
    act(c.x, mul(mul(s.in_h, s.in_w), s.in_c), "x", DType::I8);
    written(c.y, mul(mul(s.out_h, s.out_w), s.out_c), "y", DType::I8);
    constant(c.weight, mul(s.out_c, k), "weight", DType::I8);
    constant(c.bias, s.out_c, "bias", DType::I32);
    constant(c.multipliers, s.out_c, "multipliers", DType::I32);
    constant(c.shifts, s.out_c, "shifts", DType::I32);
    const auto* m = static_cast<const int32_t*>(p.tensors[c.multipliers].data);
    const auto* sh = static_cast<const int32_t*>(p.tensors[c.shifts].data);
    for (int i = 0; i < s.out_c; ++i) multiplier({m[i], static_cast<int>(sh[i])}, "multipliers/shifts");
    grid(c.input_zero_point, "inputZeroPoint");
    grid(c.output_zero_point, "outputZeroPoint");
    clamp_range(c.lo, c.hi);
  }
  void operator()(const QLutSpec& l) const {
    positive({l.count}, "count");
    act(l.x, l.count, "x", DType::I8);
    written(l.y, l.count, "y", DType::I8);
    constant(l.table, 256, "table", DType::I8);
  }
  void operator()(const QBinarySpec& b) const {
    positive({b.count}, "count");
    act(b.a, b.count, "a", DType::I8);
    act(b.b, b.count, "b", DType::I8);
    written(b.y, b.count, "y", DType::I8);
    grid(b.a_zero_point, "aZeroPoint");
    grid(b.b_zero_point, "bZeroPoint");
    grid(b.output_zero_point, "outputZeroPoint");
    if (b.left_shift < 0 || b.left_shift > 20) fail("leftShift must be in 0..20");
    multiplier(b.a_rescale, "aMultiplier/aShift");
    multiplier(b.b_rescale, "bMultiplier/bShift");
    multiplier(b.output, "multiplier/shift");
    clamp_range(b.lo, b.hi);
  }
  void operator()(const QPoolSpec& q) const {
    pool_shape(q.shape);
    act(q.x, mul(mul(q.shape.in_h, q.shape.in_w), q.shape.c), "x", DType::I8);
    written(q.y, mul(mul(q.shape.out_h, q.shape.out_w), q.shape.c), "y", DType::I8);
  }
  void operator()(const QGlobalAvgPoolSpec& g) const {
    positive({g.pixels, g.c}, "global pool sizes");
    if (g.pixels > (int64_t{1} << 23)) fail("has more than 2^23 pixels (int32 sums could overflow)", "E_SHAPE");
    act(g.x, mul(g.pixels, g.c), "x", DType::I8);
    written(g.y, g.c, "y", DType::I8);
    grid(g.input_zero_point, "inputZeroPoint");
    grid(g.output_zero_point, "outputZeroPoint");
    multiplier(g.output, "multiplier/shift");
  }
  void operator()(const QConcatSpec& c) const {
    const size_t n = c.inputs.size();
    if (!n || c.sizes.size() != n || c.rescale.size() != n || c.zero_points.size() != n || c.multipliers.size() != n)
      fail("needs one size, rescale flag, zero point, multiplier and shift per input");
    positive({c.outer}, "outer");
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      positive({c.sizes[i]}, "sizes");
      act(c.inputs[i], mul(c.outer, c.sizes[i]), "input", DType::I8);
      grid(c.zero_points[i], "zeroPoints");
      multiplier(c.multipliers[i], "inputMultipliers/inputShifts");
      total += c.sizes[i];
    }
    grid(c.output_zero_point, "outputZeroPoint");
    written(c.y, mul(c.outer, total), "y", DType::I8);
  }

  void operator()(const LrnSpec& l) const {
    positive({l.h, l.w, l.c, l.size}, "lrn sizes");
    const int64_t n = mul(mul(l.h, l.w), l.c);
    act(l.x, n, "x");
    written(l.y, n, "y");
  }
};

}  // namespace

void validate_program(ProgramSpec& p) {
  auto fail = [&](const std::string& why) { throw Error("E_FORMAT", "program '" + p.name + "': " + why); };
  if (p.arena_bytes < 0 || p.arena_bytes > (int64_t{1} << 40)) fail("arenaBytes is out of range");
  const int count = static_cast<int>(p.tensors.size());
  for (const auto* list : {&p.inputs, &p.outputs})
    for (const IoSpec& io : *list)
      if (io.tensor < 0 || io.tensor >= count) fail("input/output '" + io.name + "' names a missing tensor");
  for (int i = 0; i < count; ++i) {
    TensorSpec& t = p.tensors[i];
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || d > (int64_t{1} << 31)) fail("tensor '" + t.name + "' has a bad shape");
      n = Checker::mul(n, d);
    }
    t.elements = n;
    if (t.kind == TensorSpec::Kind::View) {
      if (t.alias < 0 || t.alias >= count || p.tensors[t.alias].kind == TensorSpec::Kind::View ||
          p.tensors[t.alias].kind == TensorSpec::Kind::Constant)
        fail("tensor '" + t.name + "' is a view of a missing, constant or view tensor");
    }
  }
  std::vector<bool> io_root(count, false);
  for (const auto* list : {&p.inputs, &p.outputs})
    for (const IoSpec& io : *list) io_root[root_of(p, io.tensor)] = true;
  for (int i = 0; i < count; ++i)
    if (p.tensors[i].kind == TensorSpec::Kind::External && !io_root[i])
      fail("tensor '" + p.tensors[i].name + "' has no data, alias or arena offset and is no input or output");
  for (const auto* list : {&p.inputs, &p.outputs})
    for (const IoSpec& io : *list) {
      TensorSpec& r = p.tensors[root_of(p, io.tensor)];
      if (r.kind == TensorSpec::Kind::Constant) fail("input/output '" + io.name + "' is a constant");
      r.kind = TensorSpec::Kind::External;
      r.offset = -1;
      if (r.dtype != DType::F32) fail("input/output '" + io.name + "' must be float32");
    }
  for (int i = 0; i < count; ++i) {
    TensorSpec& t = p.tensors[i];
    const int64_t bytes = Checker::mul(t.elements, static_cast<int64_t>(dtype_bytes(t.dtype)));
    if (t.kind == TensorSpec::Kind::View) {
      if (bytes > p.tensors[t.alias].elements * static_cast<int64_t>(dtype_bytes(p.tensors[t.alias].dtype)) ||
          t.dtype != p.tensors[t.alias].dtype)
        fail("view '" + t.name + "' is larger than its root or of another dtype");
      t.elements = std::min(t.elements, p.tensors[t.alias].elements);
    } else if (t.kind == TensorSpec::Kind::Arena) {
      if (t.offset < 0 || t.offset % kAlign || t.offset + bytes > p.arena_bytes)
        fail("tensor '" + t.name + "' at offset " + std::to_string(t.offset) + " (" + std::to_string(bytes) +
             " bytes) does not fit the " + std::to_string(p.arena_bytes) + "-byte arena");
    }
    t.bytes = bytes;
  }
  Checker check{p};
  for (check.op = 0; check.op < p.ops.size(); ++check.op) std::visit(check, p.ops[check.op].op);
}

// ---------------------------------------------------------------- execution

namespace {

// A dense layer this small runs whole on one thread of a team run
// (program_team.h); a larger one splits itself, before or after the team.
constexpr int64_t kTeamSerialMacs = int64_t{1} << 16;
TeamShape dense_team(int x, int y, int m, int n, int k) {
  if (int64_t{m} * n * k > kTeamSerialMacs) return {};
  return {TeamRole::Serial, 0, {x}, y};
}

struct DenseOp : CompiledProgram::Op {
  int x, y, m, n, k;
  DenseF32 layer;
  DenseOp(const KernelTable& kt, const DenseSpec& d, const std::vector<TensorSpec>& t)
      : x(d.x),
        y(d.y),
        m(d.m),
        n(d.n),
        k(d.k),
        layer(kt, static_cast<const float*>(t[d.weight].data), d.n, d.k,
              d.bias >= 0 ? static_cast<const float*>(t[d.bias].data) : nullptr, d.act) {}
  void run(const RunContext& c) const override { layer.run(c.f(x), c.batch * m, c.f(y), c.pool); }
  TeamShape team() const override { return dense_team(x, y, m, n, k); }
  std::string kernel() const override { return layer.kernel_name(); }
};

struct QDenseOp : CompiledProgram::Op {
  int x, y, m, n, k;
  DenseS8 layer;
  static DenseS8::Spec spec(const QDenseSpec& d, const std::vector<TensorSpec>& t) {
    return {static_cast<const int8_t*>(t[d.weight].data),
            d.n,
            d.k,
            static_cast<const float*>(t[d.scales].data),
            static_cast<size_t>(t[d.scales].elements),
            d.group_size,
            d.zero_point,
            d.bias >= 0 ? static_cast<const float*>(t[d.bias].data) : nullptr,
            d.act.kind == ActKind::Relu,
            d.has_input ? &d.input : nullptr,
            d.sparse,
            d.has_output ? &d.output : nullptr};
  }
  QDenseOp(const KernelTable& kt, const QDenseSpec& d, const std::vector<TensorSpec>& t)
      : x(d.x), y(d.y), m(d.m), n(d.n), k(d.k), layer(kt, spec(d, t)) {}
  void run(const RunContext& c) const override { layer.run(c.f(x), c.batch * m, c.f(y), c.pool, *c.s8); }
  TeamShape team() const override { return dense_team(x, y, m, n, k); }
  std::string kernel() const override { return layer.kernel_name(); }
};

std::unique_ptr<CompiledProgram::Op> compile_op(const KernelTable& kt, const OpVariant& v,
                                                const std::vector<TensorSpec>& t) {
  return std::visit(
      [&](const auto& s) -> std::unique_ptr<CompiledProgram::Op> {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, DenseSpec>)
          return std::make_unique<DenseOp>(kt, s, t);
        else if constexpr (std::is_same_v<S, QDenseSpec>)
          return std::make_unique<QDenseOp>(kt, s, t);
        else if constexpr (std::is_same_v<S, QuantizeSpec> || std::is_same_v<S, QConvSpec> ||
                           std::is_same_v<S, QLutSpec> || std::is_same_v<S, QBinarySpec> ||
                           std::is_same_v<S, QPoolSpec> || std::is_same_v<S, QGlobalAvgPoolSpec> ||
                           std::is_same_v<S, QConcatSpec>)
          return compile_int8_op(kt, v, t);
        else {
          if (!kt.cnn)
            throw Error("E_UNSUPPORTED_OP", std::string("kernel table '") + kt.name + "' has no CNN kernels");
          return compile_cnn_op(kt, v, t);
        }
      },
      v);
}

// Constants ops read at run time (binary operands); conv/dense weights are packed instead.
bool read_at_run_time(const OpVariant& v, int t) {
  if (const auto* b = std::get_if<BinarySpec>(&v)) return b->a == t || b->b == t;
  return false;
}

// A chunk's arena is at most this many bytes: big enough for long GEMM rows, small enough that a
// chunk's activations stay in the caches between ops (one chunk for a whole CNN batch of 64 cost more
// per image than a batch of one, measured in CPU time).
constexpr int64_t kChunkBytes = int64_t{4} << 20;

}  // namespace

CompiledProgram::CompiledProgram(const ProgramSpec& spec, const KernelTable& kt, int threads)
    : kt_(kt), tensors_(spec.tensors), arena_bytes_(spec.arena_bytes) {
  if (threads < 0) throw Error("E_ARGUMENT", "threads must be >= 0");
  if (threads == 0) threads = ThreadPool::default_threads();
  if (threads > 1) pool_ = ThreadPool::shared(threads);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorSpec& t = tensors_[i];
    const bool runtime = t.kind == TensorSpec::Kind::Constant &&
                         std::any_of(spec.ops.begin(), spec.ops.end(),
                                     [&](const OpSpec& o) { return read_at_run_time(o.op, static_cast<int>(i)); });
    if (runtime) {
      const auto* b = static_cast<const uint8_t*>(t.data);
      owned_.emplace_back(b, b + t.bytes);
    }
  }
  // Re-point run-time constants at the owned copies (after owned_ stopped growing).
  size_t next = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorSpec& t = tensors_[i];
    const bool runtime = t.kind == TensorSpec::Kind::Constant &&
                         std::any_of(spec.ops.begin(), spec.ops.end(),
                                     [&](const OpSpec& o) { return read_at_run_time(o.op, static_cast<int>(i)); });
    if (runtime) t.data = owned_[next++].data();
  }
  for (const OpSpec& o : spec.ops) {
    try {
      ops_.push_back(compile_op(kt, o.op, spec.tensors));
    } catch (const Error& e) {
      throw Error(e.code(), "node '" + o.node + "' (" + op_name(o.op) + "): " + e.what());
    }
    op_kernels_.push_back(ops_.back()->kernel());
  }
  // Constants packed at load no longer point at JS memory.
  for (TensorSpec& t : tensors_)
    if (t.kind == TensorSpec::Kind::Constant &&
        std::none_of(owned_.begin(), owned_.end(), [&](const auto& v) { return v.data() == t.data; }))
      t.data = nullptr;
  auto root = [&](int t) { return tensors_[t].alias >= 0 ? tensors_[t].alias : t; };
  for (const IoSpec& io : spec.inputs) inputs_.push_back({root(io.tensor), tensors_[root(io.tensor)].elements});
  for (const IoSpec& io : spec.outputs) outputs_.push_back({root(io.tensor), tensors_[root(io.tensor)].elements});
  // A team's barriers need its members running at once: with many more
  // threads than the CPU has they take turns at every barrier, far slower
  // than op by op (figures in bench/analysis.md).
  if (pool_ && threads <= 2 * ThreadPool::default_threads())
    team_ = TeamPlan::build(ops_, tensors_, arena_bytes_, kAlign);
}

CompiledProgram::~CompiledProgram() = default;

int CompiledProgram::team_barriers() const { return team_ ? team_->barriers() : -1; }

namespace {

// Per-thread buffers reused across runs (allocating them per call cost page
// faults: faulting in a fresh arena for a CNN batch took longer than its
// convolutions). Buffers are kept up to the
// chunk size (an arena never grows past it), larger ones released after the run.
struct ProgramScratch {
  std::vector<uint8_t> arena;
  std::vector<float> conv;
  DenseS8::Scratch s8;
  void trim() {
    constexpr size_t kKeepBytes = static_cast<size_t>(kChunkBytes) + 4096;
    auto trim_one = [](auto& v) {
      if (v.capacity() * sizeof(v[0]) > kKeepBytes) std::decay_t<decltype(v)>().swap(v);
    };
    trim_one(arena), trim_one(conv), trim_one(s8.q), trim_one(s8.acc), trim_one(s8.zp), trim_one(s8.a_scale);
  }
};

}  // namespace

void CompiledProgram::run(const float* const* inputs, float* const* outputs, int batch,
                          std::vector<double>* op_seconds) const {
  if (batch < 1) throw Error("E_SHAPE", "batch must be >= 1");
  thread_local ProgramScratch scratch;
  struct Trim {
    ProgramScratch& s;
    ~Trim() { s.trim(); }
  } trim_after{scratch};
  // A team run (not when profiling: op times need ops one after another) has its own tensor layout.
  const TeamPlan* team = op_seconds ? nullptr : team_.get();
  const int64_t arena_bytes = team ? team->arena_bytes() : arena_bytes_;
  const int chunk =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(batch, arena_bytes ? kChunkBytes / arena_bytes : batch)));
  scratch.arena.resize(static_cast<size_t>(chunk * arena_bytes + kAlign));
  uint8_t* base = scratch.arena.data();
  base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
  RunContext c{team ? &team->tensors() : &tensors_,
               base,
               std::vector<float*>(tensors_.size(), nullptr),
               0,
               team ? nullptr : pool_.get(),
               &scratch.s8,
               &scratch.conv};
  for (int start = 0; start < batch; start += chunk) {
    c.batch = std::min(chunk, batch - start);
    for (size_t i = 0; i < inputs_.size(); ++i)
      c.external[inputs_[i].root] = const_cast<float*>(inputs[i]) + static_cast<int64_t>(start) * inputs_[i].elements;
    for (size_t i = 0; i < outputs_.size(); ++i)
      c.external[outputs_[i].root] = outputs[i] + static_cast<int64_t>(start) * outputs_[i].elements;
    if (team) {
      team->run(ops_, c, *pool_);
      continue;
    }
    if (!op_seconds) {
      for (const auto& op : ops_) op->run(c);
      continue;
    }
    op_seconds->resize(ops_.size());
    for (size_t i = 0; i < ops_.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      ops_[i]->run(c);
      (*op_seconds)[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
}

}  // namespace edgeopt
