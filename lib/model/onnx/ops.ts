/**
 * One handler per supported ONNX op. Handlers either fold constants
 * (Constant, Transpose, DequantizeLinear, Identity of a constant), emit IR
 * nodes (Gemm/MatMul -> Dense or QDense, Flatten, Reshape, Softmax, Relu), or
 * fold into the Dense that produced their input (bias Add, Relu, Sigmoid,
 * Tanh, Clip as ReLU6). Weights are whatever constant feeds the weight input:
 * names are never consulted.
 */
import type { Activation } from '../graph';
import { blockDiagonal, broadcastTo, transposeConst, transposeData } from './consts';
import { type ActValue, type ConstValue, type DenseWeight, type ImportContext, int8Quant, type Value } from './context';
import { DataType, type NodeProto, toNumber } from './proto';
import { type ConstTensor, isFloatType, MAX_ELEMENTS } from './tensor';

type Handler = (ctx: ImportContext, node: NodeProto) => void;

const product = (dims: number[]): number => dims.reduce((a, d) => a * d, 1);

/** Non-batch dims, which must be fixed numbers for a row-wise layer. */
function rowDims(ctx: ImportContext, node: NodeProto, a: ActValue): number[] {
  const rest = a.shape.slice(1);
  if (rest.some((d) => d === null))
    ctx.fail(node, `input has shape [${a.shape.map((d) => d ?? '?')}]; only the first (batch) dimension may be symbolic`, 'E_SHAPE');
  return rest as number[];
}

function normalizeAxis(ctx: ImportContext, node: NodeProto, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) ctx.fail(node, `axis ${axis} is out of range for rank ${rank}`, 'E_FORMAT');
  return a;
}

/**
 * A constant 2-D matrix as an IR weight [out, in]. `outMajor`: the constant is
 * already [out, in] (Gemm transB=1); else it is [in, out] (MatMul, Gemm transB=0).
 * Int8 weights from DequantizeLinear stay int8 when their scales run along the output axis.
 */
function denseWeight(ctx: ImportContext, node: NodeProto, v: ConstValue, outMajor: boolean, alpha: number): DenseWeight {
  const { dims } = v.t;
  if (dims.length !== 2) ctx.fail(node, `needs a 2-D constant weight, got shape [${dims}]`, 'E_SHAPE');
  const [n, k] = outMajor ? dims : [dims[1], dims[0]];
  const outAxis = outMajor ? 0 : 1;
  const quant = v.quant;
  if (quant && alpha === 1 && (quant.scale.length === 1 || quant.axis === outAxis)) {
    return { n, k, q: outMajor ? quant.q : transposeData(quant.q, dims, [1, 0]), scale: quant.scale, zeroPoint: quant.zeroPoint };
  }
  const w = Float32Array.from(outMajor ? v.t.data : transposeData(v.t.data, dims, [1, 0]));
  if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
  return { n, k, w };
}

function Gemm(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  if (ctx.intAttr(node, 'transA', 0)) {
    ctx.fail(node, 'has transA=1 on a computed input: that transposes the batch dimension, which row-wise Dense layers cannot express');
  }
  if (a.shape.length !== 2) ctx.fail(node, `needs a 2-D input A, got shape [${a.shape.map((d) => d ?? '?')}]`, 'E_SHAPE');
  const alpha = ctx.floatAttr(node, 'alpha', 1);
  const beta = ctx.floatAttr(node, 'beta', 1);
  const weight = denseWeight(ctx, node, ctx.constant(node, 1, 'weight B'), ctx.intAttr(node, 'transB', 0) === 1, alpha);
  const [k] = rowDims(ctx, node, a);
  if (weight.k !== k) ctx.fail(node, `weight takes ${weight.k} features but input A has ${k}`, 'E_SHAPE');
  let bias: Float32Array | null = null;
  if (ctx.hasInput(node, 2) && beta !== 0) {
    const c = ctx.constant(node, 2, 'bias C');
    bias = broadcastTo(c.t, [weight.n]);
    if (!bias) ctx.fail(node, `bias C of shape [${c.t.dims}] does not broadcast to [batch, ${weight.n}]`, 'E_SHAPE');
    if (beta !== 1) for (let i = 0; i < bias.length; i++) bias[i] *= beta;
  }
  ctx.emitDense(node, ctx.nodeName(node), a, weight, bias, [a.shape[0], weight.n]);
}

/** MatMul by a constant 2-D weight; [batch, ..., K] inputs become one block-diagonal Dense over the row. */
function MatMul(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  const b = ctx.constant(node, 1, 'weight B');
  if (b.t.dims.length !== 2)
    ctx.fail(node, `needs a 2-D constant weight B, got shape [${b.t.dims}] (batched weights are not supported)`, 'E_SHAPE');
  if (a.shape.length < 2) ctx.fail(node, `needs an input of rank >= 2, got [${a.shape.map((d) => d ?? '?')}]`, 'E_SHAPE');
  const rest = rowDims(ctx, node, a);
  const middle = rest.slice(0, -1);
  const times = product(middle);
  const [kIn, nOut] = b.t.dims;
  if (rest[rest.length - 1] !== kIn)
    ctx.fail(node, `weight takes ${kIn} features but the input's last dimension is ${rest[rest.length - 1]}`, 'E_SHAPE');
  if (times * times * kIn * nOut > MAX_ELEMENTS)
    ctx.fail(node, `batched over [${middle}] would need a ${times * nOut}x${times * kIn} block-diagonal weight; too large`);
  const w = denseWeight(ctx, node, b, false, 1);
  const weight: DenseWeight =
    'w' in w
      ? { n: w.n * times, k: w.k * times, w: blockDiagonal(w.w, w.n, w.k, times) }
      : {
          ...w,
          n: w.n * times,
          k: w.k * times,
          q: blockDiagonal(w.q, w.n, w.k, times),
          scale: w.scale.length === 1 ? w.scale : tile(w.scale, times),
        };
  ctx.emitDense(node, ctx.nodeName(node), a, weight, null, [a.shape[0], ...middle, nOut]);
}

function tile(v: Float32Array, times: number): Float32Array {
  const out = new Float32Array(v.length * times);
  for (let i = 0; i < times; i++) out.set(v, i * v.length);
  return out;
}

/** Add of a constant right after MatMul/Gemm: folded into the Dense bias. */
function Add(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.value(node, 0);
  const y = ctx.value(node, 1);
  const [a, c] = x.kind === 'act' ? [x, y] : [y, x];
  if (a.kind !== 'act') ctx.fail(node, 'adds two constants; constant folding of Add is not supported');
  if (c.kind !== 'const') ctx.fail(node, 'adds two computed tensors (a residual or branch); edgeopt imports single-chain models');
  const dense = ctx.fusableDense(a);
  if (!dense) ctx.fail(node, 'adds a constant to a tensor that is not the sole output of a MatMul/Gemm; only bias adds are supported');
  const rest = rowDims(ctx, node, a);
  const bias = broadcastTo(c.t, rest);
  if (!bias) ctx.fail(node, `constant of shape [${c.t.dims}] does not broadcast to [batch, ${rest}]`, 'E_SHAPE');
  ctx.addBias(dense, node, bias, a.shape);
}

function activation(kind: Exclude<Activation, 'none'>): Handler {
  return (ctx: ImportContext, node: NodeProto) => {
    const a = ctx.act(node, 0);
    const dense = ctx.fusableDense(a);
    if (dense) return ctx.setActivation(dense, node, kind, a.shape);
    if (kind !== 'relu')
      ctx.fail(node, `does not directly follow a MatMul/Gemm; edgeopt runs ${node.op_type} only fused into a Dense layer`);
    ctx.emit({ name: ctx.nodeName(node), op: 'Relu', inputs: [a.name], outputs: [node.output[0]], attrs: {} });
    ctx.setAct(node, a.shape);
  };
}

/** float32's largest value: opset < 11 Clip defaults to +-this, which means "no bound". */
const FLT_MAX = 3.4028234663852886e38;

function Clip(ctx: ImportContext, node: NodeProto): void {
  let lo = -Infinity;
  let hi = Infinity;
  if (ctx.opset < 11) {
    lo = ctx.floatAttr(node, 'min', -Infinity);
    hi = ctx.floatAttr(node, 'max', Infinity);
  } else {
    if (ctx.hasInput(node, 1)) lo = scalar(ctx, node, 1, 'min');
    if (ctx.hasInput(node, 2)) hi = scalar(ctx, node, 2, 'max');
  }
  if (Math.abs(lo) >= FLT_MAX) lo = -Infinity;
  if (Math.abs(hi) >= FLT_MAX) hi = Infinity;
  if (lo === 0 && hi === 6) return activation('relu6')(ctx, node);
  if (lo === 0 && hi === Infinity) return activation('relu')(ctx, node);
  ctx.fail(node, `clips to [${lo}, ${hi}]; only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported`);
}

function scalar(ctx: ImportContext, node: NodeProto, i: number, role: string): number {
  const c = ctx.constant(node, i, role);
  if (c.t.data.length !== 1) ctx.fail(node, `${role} must be a scalar, got shape [${c.t.dims}]`, 'E_SHAPE');
  return c.t.data[0];
}

function Flatten(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  const axis = normalizeAxis(ctx, node, ctx.intAttr(node, 'axis', 1), a.shape.length);
  const rest = rowDims(ctx, node, a);
  if (axis === 0 || product(rest.slice(0, axis - 1)) !== 1) {
    ctx.fail(
      node,
      `with axis ${axis} on [${a.shape.map((d) => d ?? '?')}] would merge data into the batch dimension; only axis 1 (keep rows) is supported`,
    );
  }
  if (a.shape.length === 2) return ctx.alias(node, a);
  ctx.emit({ name: ctx.nodeName(node), op: 'Flatten', inputs: [a.name], outputs: [node.output[0]], attrs: { axis: 1 } });
  ctx.setAct(node, [a.shape[0], product(rest)]);
}

/** Reshape to a constant shape (0 copies a dim unless allowzero, -1 is inferred) that keeps every batch row intact. */
function Reshape(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  const target = Array.from(ctx.constant(node, 1, 'shape').t.data);
  const rest = rowDims(ctx, node, a);
  const rowSize = product(rest);
  const allowZero = ctx.intAttr(node, 'allowzero', 0) === 1;
  const resolved: Array<number | null> = target.map((d, i) => (d === 0 && !allowZero ? (i < a.shape.length ? a.shape[i] : NaN) : d));
  const bad = (): never =>
    ctx.fail(
      node,
      `reshapes [${a.shape.map((d) => d ?? '?')}] to [${target}]; only reshapes that keep the batch dimension first and every row intact are supported`,
    );
  if (resolved.some((d) => d !== null && (Number.isNaN(d) || d < -1)) || resolved.filter((d) => d === -1).length > 1 || !resolved.length)
    bad();
  const outRest = resolved.slice(1);
  if (outRest.some((d) => d === null)) bad();
  const known = product((outRest as number[]).filter((d) => d !== -1));
  if (resolved[0] === -1) {
    if (outRest.includes(-1) || known !== rowSize) bad();
  } else {
    if (resolved[0] !== a.shape[0]) bad();
    const inferred = outRest.includes(-1) ? rowSize / known : rowSize;
    if (!Number.isInteger(inferred) || (!outRest.includes(-1) && known !== rowSize)) bad();
    const at = outRest.indexOf(-1);
    if (at >= 0) outRest[at] = inferred;
  }
  const dims = outRest as number[];
  if (dims.length === rest.length && dims.every((d, i) => d === rest[i])) return ctx.alias(node, a);
  ctx.emit({ name: ctx.nodeName(node), op: 'Reshape', inputs: [a.name], outputs: [node.output[0]], attrs: { shape: [-1, ...dims] } });
  ctx.setAct(node, [a.shape[0], ...dims]);
}

/**
 * Softmax must cover each whole row. Opset >= 13: along one axis, so the other
 * non-batch dims must be 1; opset < 13: over the input coerced to 2-D at `axis`
 * (default 1), so the dims between batch and axis must be 1.
 */
function Softmax(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  const rest = rowDims(ctx, node, a);
  const modern = ctx.opset >= 13;
  const axis = normalizeAxis(ctx, node, ctx.intAttr(node, 'axis', modern ? -1 : 1), a.shape.length);
  const wholeRow = axis > 0 && (modern ? product(rest) === rest[axis - 1] : product(rest.slice(0, axis - 1)) === 1);
  if (!wholeRow) {
    ctx.fail(
      node,
      `over axis ${axis} of [${a.shape.map((d) => d ?? '?')}] (opset ${ctx.opset} semantics) is not a softmax over each whole row; only that is supported`,
    );
  }
  ctx.emit({ name: ctx.nodeName(node), op: 'Softmax', inputs: [a.name], outputs: [node.output[0]], attrs: { axis: -1 } });
  ctx.setAct(node, a.shape);
}

function Identity(ctx: ImportContext, node: NodeProto): void {
  ctx.alias(node, ctx.value(node, 0));
}

/** Inference-mode Dropout is the identity; its mask output must be unused. */
function Dropout(ctx: ImportContext, node: NodeProto): void {
  if (node.output[1] && ctx.uses.get(node.output[1]))
    ctx.fail(node, 'has its mask output used; only inference-mode Dropout (identity) is supported');
  if (ctx.hasInput(node, 2) && scalar(ctx, node, 2, 'training_mode'))
    ctx.fail(node, 'has training_mode=true; only inference mode is supported');
  ctx.alias(node, ctx.value(node, 0));
}

function Constant(ctx: ImportContext, node: NodeProto): void {
  const [a] = node.attribute;
  if (node.attribute.length !== 1) ctx.fail(node, `needs exactly one value attribute, has ${node.attribute.length}`, 'E_FORMAT');
  let t: ConstTensor;
  switch (a.name) {
    case 'value':
      t = ctx.tensorAttr(node, a);
      break;
    case 'value_float':
      t = { dims: [], dataType: DataType.FLOAT, data: Float32Array.of(a.f) };
      break;
    case 'value_floats':
      t = { dims: [a.floats.length], dataType: DataType.FLOAT, data: Float32Array.from(a.floats) };
      break;
    case 'value_int':
      t = { dims: [], dataType: DataType.INT64, data: Float64Array.of(toNumber(a.i)) };
      break;
    case 'value_ints':
      t = { dims: [a.ints.length], dataType: DataType.INT64, data: Float64Array.from(a.ints, (v) => toNumber(v)) };
      break;
    default:
      ctx.fail(node, `attribute '${a.name}' is not supported (value, value_float(s), value_int(s) are)`);
  }
  ctx.set(node, { kind: 'const', t });
}

/** Transpose of a constant (e.g. a weight stored [in, out]): folded at import. */
function Transpose(ctx: ImportContext, node: NodeProto): void {
  const c = ctx.constant(node, 0, 'tensor (only constant weights can be transposed)');
  const rank = c.t.dims.length;
  const perm = ctx.intsAttr(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.length !== rank || [...perm].sort((x, y) => x - y).some((p, i) => p !== i))
    ctx.fail(node, `perm [${perm}] is not a permutation of ${rank} axes`, 'E_FORMAT');
  const quant =
    c.quant && rank === 2 ? { ...c.quant, q: transposeData(c.quant.q, c.t.dims, perm), axis: perm.indexOf(c.quant.axis) } : undefined;
  ctx.set(node, { kind: 'const', t: transposeConst(c.t, perm), quant });
}

/** DequantizeLinear of constant integer weights: folded to float, remembering symmetric int8 weights to import them as QDense. */
function DequantizeLinear(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.constant(node, 0, 'quantized tensor (only constant weights can be dequantized)').t;
  const scale = ctx.constant(node, 1, 'scale').t;
  const zp = ctx.hasInput(node, 2) ? ctx.constant(node, 2, 'zero point').t : null;
  if (ctx.intAttr(node, 'block_size', 0)) ctx.fail(node, 'uses blocked quantization (block_size), which is not supported');
  const rank = x.dims.length;
  const axis = scale.data.length === 1 ? 0 : normalizeAxis(ctx, node, ctx.intAttr(node, 'axis', 1), rank);
  if (scale.data.length !== 1 && (scale.dims.length !== 1 || scale.data.length !== x.dims[axis])) {
    ctx.fail(node, `scale of shape [${scale.dims}] matches neither one scale nor axis ${axis} of [${x.dims}]`, 'E_SHAPE');
  }
  if (zp && zp.data.length !== scale.data.length)
    ctx.fail(node, `zero point has ${zp.data.length} values for ${scale.data.length} scales`, 'E_SHAPE');
  const inner = product(x.dims.slice(axis + 1));
  const channels = scale.data.length;
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = (x.data[i] - (zp ? zp.data[c] : 0)) * scale.data[c];
  }
  const zeroPoint = zp ? zp.data[0] : 0;
  const keepInt8 = x.dataType === DataType.INT8 && (!zp || zp.data.every((z) => z === zeroPoint)) && scale.data.every((v) => v > 0);
  const quant = keepInt8 ? { q: Int8Array.from(x.data), scale: Float32Array.from(scale.data), zeroPoint, axis } : undefined;
  ctx.set(node, { kind: 'const', t: { dims: x.dims, dataType: DataType.FLOAT, data: out }, quant });
}

/* The integer-MatMul pattern (onnxruntime quantize_dynamic, edgeopt's 'integer' export):
 * DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W int8 [K, N], x_zp, w_zp?) -> Cast(float)
 * -> Mul(that, Mul(x_scale, w_scale)) becomes one QDense (dynamic activation quantization). */

function patternValue<K extends Value['kind']>(
  ctx: ImportContext,
  node: NodeProto,
  i: number,
  kind: K,
  what: string,
): Extract<Value, { kind: K }> {
  const v = ctx.value(node, i);
  if (v.kind !== kind) ctx.fail(node, `input ${i} ('${node.input[i]}') must be ${what}`);
  return v as Extract<Value, { kind: K }>;
}

function DynamicQuantizeLinear(ctx: ImportContext, node: NodeProto): void {
  const src = ctx.act(node, 0);
  (['q', 'scale', 'zeroPoint'] as const).forEach((part, i) => {
    if (node.output[i]) ctx.set(node, { kind: 'dynamicQuant', part, src }, i);
  });
}

function MatMulInteger(ctx: ImportContext, node: NodeProto): void {
  const a = patternValue(ctx, node, 0, 'dynamicQuant', 'the quantized output of DynamicQuantizeLinear');
  const aZp = ctx.hasInput(node, 2)
    ? patternValue(ctx, node, 2, 'dynamicQuant', 'the zero point from the same DynamicQuantizeLinear')
    : undefined;
  if (a.part !== 'q' || aZp?.part !== 'zeroPoint' || aZp.src !== a.src)
    ctx.fail(node, 'must take the quantized input and zero point of one DynamicQuantizeLinear');
  const b = ctx.constant(node, 1, 'int8 weight B').t;
  if (b.dataType !== DataType.INT8 || b.dims.length !== 2)
    ctx.fail(node, `needs a 2-D int8 constant weight, got ${b.dims.length}-D data_type ${b.dataType}`, 'E_DTYPE');
  const [kIn, nOut] = b.dims;
  const [k] = rowDims(ctx, node, a.src);
  if (a.src.shape.length !== 2 || k !== kIn)
    ctx.fail(node, `weight takes ${kIn} features but the input has shape [${a.src.shape.map((d) => d ?? '?')}]`, 'E_SHAPE');
  const zp = ctx.hasInput(node, 3) ? ctx.constant(node, 3, 'weight zero point').t.data : [0];
  if (!Array.from(zp).every((z) => z === zp[0]))
    ctx.fail(node, 'has per-column weight zero points that differ; edgeopt keeps one zero point per weight');
  const name = ctx.nodeName(node);
  // Scales come from the rescaling Mul further down; until then the weight has no quant params.
  const w = ctx.addTensor({
    name: `${name}.weight`,
    dtype: 'int8',
    shape: [nOut, kIn],
    data: Int8Array.from(transposeData(b.data, b.dims, [1, 0])),
  });
  const ir = ctx.emit({
    name,
    op: 'QDense',
    inputs: [a.src.name, w],
    outputs: [node.output[0]],
    attrs: { activation: 'none', activationQuant: 'dynamic' },
  });
  ctx.set(node, { kind: 'integerProduct', node: ir, shape: [a.src.shape[0], nOut], cast: false, zeroPoint: zp[0] });
}

/** Cast of constants (folded) and of the MatMulInteger accumulator to float. */
function Cast(ctx: ImportContext, node: NodeProto): void {
  const v = ctx.value(node, 0);
  const to = ctx.intAttr(node, 'to', 0);
  if (v.kind === 'integerProduct' && !v.cast && to === DataType.FLOAT) return ctx.set(node, { ...v, cast: true });
  if (v.kind === 'act' && v.name === ctx.uint8Input && to === DataType.FLOAT) return ctx.set(node, v);
  if (v.kind !== 'const') ctx.fail(node, 'casts a computed tensor; only constants and a MatMulInteger result (to float) can be cast');
  const data = isFloatType(to) ? Float32Array.from(v.t.data) : Float64Array.from(v.t.data, Math.trunc);
  ctx.set(node, { kind: 'const', t: { dims: v.t.dims, dataType: to, data } });
}

function Mul(ctx: ImportContext, node: NodeProto): void {
  const [x, y] = [ctx.value(node, 0), ctx.value(node, 1)];
  const [dq, w] = x.kind === 'dynamicQuant' ? [x, y] : [y, x];
  if (dq.kind === 'dynamicQuant' && dq.part === 'scale' && w.kind === 'const') {
    return ctx.set(node, { kind: 'productScale', weightScale: Float32Array.from(w.t.data) });
  }
  const [p, s] = x.kind === 'integerProduct' ? [x, y] : [y, x];
  if (p.kind !== 'integerProduct' || !p.cast || s.kind !== 'productScale') {
    ctx.fail(node, 'is not the rescale of a MatMulInteger result (Mul by x_scale * w_scale); other Mul ops are not supported');
  }
  const n = p.shape[1] as number;
  if (s.weightScale.length !== 1 && s.weightScale.length !== n)
    ctx.fail(node, `has ${s.weightScale.length} weight scales for ${n} output channels`, 'E_SHAPE');
  const weight = ctx.tensors[p.node.inputs[1]];
  ctx.tensors[weight.name] = { ...weight, quant: int8Quant(s.weightScale, p.zeroPoint) };
  p.node.outputs = [node.output[0]];
  ctx.setAct(node, p.shape, p.node);
}

export const HANDLERS: Record<string, Handler> = {
  Add,
  Cast,
  Clip,
  Constant,
  DequantizeLinear,
  Dropout,
  DynamicQuantizeLinear,
  Flatten,
  Gemm,
  Identity,
  MatMul,
  MatMulInteger,
  Mul,
  Relu: activation('relu'),
  Reshape,
  Sigmoid: activation('sigmoid'),
  Softmax,
  Tanh: activation('tanh'),
  Transpose,
};

export const SUPPORTED_OPS = Object.keys(HANDLERS).sort();
