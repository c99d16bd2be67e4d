/**
 * The ONNX op handlers, one per op: dense layers and their epilogues here,
 * convolutional ops in ops-cnn.ts, constant folding in ops-const.ts. Handlers
 * either fold constants, emit IR nodes, or fold into the Dense/Conv that
 * produced their input (bias Add, BatchNormalization, Relu/Sigmoid/Tanh/Clip on
 * a Dense). Weights are whatever constant feeds the weight input: names are
 * never consulted.
 */
import type { Activation } from '../graph';
import { onnxRank } from '../shapes';
import { broadcastTo, transposeData } from './consts';
import { type ActValue, type ConstValue, type DenseWeight, describeShape, type ImportContext, int8Quant, type Value } from './context';
import { CNN_HANDLERS, emitActivation, type Handler } from './ops-cnn';
import { CONST_HANDLERS, foldBinary } from './ops-const';
import { DataType, type NodeProto } from './proto';

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
  // No copy of a float32 [out, in] constant (graphs are values: tensors may share data); one otherwise.
  const oriented = outMajor ? v.t.data : transposeData(v.t.data, dims, [1, 0]);
  const w = oriented instanceof Float32Array && (alpha === 1 || oriented !== v.t.data) ? oriented : Float32Array.from(oriented);
  if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
  return { n, k, w };
}

/** The last (feature) dim of an activation, checked against the weight's K. */
function checkFeatures(ctx: ImportContext, node: NodeProto, a: ActValue, k: number): void {
  const last = a.shape.dims[a.shape.dims.length - 1];
  if (last !== k) ctx.fail(node, `weight takes ${k} features but input A has shape ${describeShape(a.shape)}`, 'E_SHAPE');
}

function Gemm(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  if (ctx.intAttr(node, 'transA', 0)) {
    ctx.fail(node, 'has transA=1 on a computed input: that transposes the batch dimension, which row-wise Dense layers cannot express');
  }
  if (onnxRank(a.shape) !== 2) ctx.fail(node, `needs a 2-D input A, got shape ${describeShape(a.shape)}`, 'E_SHAPE');
  const alpha = ctx.floatAttr(node, 'alpha', 1);
  const beta = ctx.floatAttr(node, 'beta', 1);
  const weight = denseWeight(ctx, node, ctx.constant(node, 1, 'weight B'), ctx.intAttr(node, 'transB', 0) === 1, alpha);
  checkFeatures(ctx, node, a, weight.k);
  let bias: Float32Array | null = null;
  if (ctx.hasInput(node, 2) && beta !== 0) {
    const c = ctx.constant(node, 2, 'bias C');
    bias = broadcastTo(c.t, [weight.n]);
    if (!bias) ctx.fail(node, `bias C of shape [${c.t.dims}] does not broadcast to [batch, ${weight.n}]`, 'E_SHAPE');
    if (beta !== 1) for (let i = 0; i < bias.length; i++) bias[i] *= beta;
  }
  ctx.emitDense(node, ctx.nodeName(node), a, weight, bias);
}

/** MatMul by a constant 2-D weight: a Dense over the last axis ([batch, ..., K] -> [batch, ..., N]). */
function MatMul(ctx: ImportContext, node: NodeProto): void {
  const a = ctx.act(node, 0);
  const b = ctx.constant(node, 1, 'weight B');
  if (b.t.dims.length !== 2)
    ctx.fail(node, `needs a 2-D constant weight B, got shape [${b.t.dims}] (batched weights are not supported)`, 'E_SHAPE');
  if (onnxRank(a.shape) < 2) ctx.fail(node, `needs an input of rank >= 2, got ${describeShape(a.shape)}`, 'E_SHAPE');
  const weight = denseWeight(ctx, node, b, false, 1);
  checkFeatures(ctx, node, a, weight.k);
  ctx.emitDense(node, ctx.nodeName(node), a, weight, null);
}

/**
 * Add: a constant right after MatMul/Gemm folds into the Dense bias; anything
 * else (residuals, constants elsewhere) is an IR Add, and two constants fold.
 */
function Add(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.value(node, 0);
  const y = ctx.value(node, 1);
  const [a, c] = x.kind === 'act' ? [x, y] : [y, x];
  if (a.kind === 'act' && c.kind === 'const') {
    const dense = ctx.fusableDense(a);
    const n = a.shape.dims[a.shape.dims.length - 1];
    const bias =
      dense && c.t.dims.length <= onnxRank(a.shape) && c.t.dims.slice(0, -1).every((d) => d === 1) ? broadcastTo(c.t, [n]) : null;
    if (dense && bias) return ctx.addBias(dense, node, bias);
  }
  binary('Add')(ctx, node);
}

/** An IR binary op; constant operands become initializers, two constants fold. */
export function binary(op: 'Add' | 'Sub' | 'Mul' | 'Div'): Handler {
  return (ctx: ImportContext, node: NodeProto) => {
    const vs = [ctx.value(node, 0), ctx.value(node, 1)];
    if (vs.every((v) => v.kind !== 'act')) return foldBinary(op)(ctx, node);
    const inputs = vs.map((v, i) => {
      if (v.kind === 'act') return v.name;
      const c = ctx.constant(node, i, 'operand');
      return ctx.floatInit(`${ctx.nodeName(node)}.${i ? 'b' : 'a'}`, c.t);
    });
    ctx.emitOp(node, op, inputs);
  };
}

const FLT_MAX = 3.4028234663852886e38;

/** Relu/Sigmoid/Tanh fold into the Dense before them; otherwise they are IR ops. */
function denseActivation(kind: Exclude<Activation, 'none' | 'relu6'>): Handler {
  const op = kind === 'relu' ? 'Relu' : kind === 'sigmoid' ? 'Sigmoid' : 'Tanh';
  return (ctx: ImportContext, node: NodeProto) => {
    const a = ctx.act(node, 0);
    const dense = ctx.fusableDense(a);
    if (dense) return ctx.setActivation(dense, node, kind);
    emitActivation(ctx, node, a, op);
  };
}

function scalar(ctx: ImportContext, node: NodeProto, i: number, role: string): number {
  const c = ctx.constant(node, i, role);
  if (c.t.data.length !== 1) ctx.fail(node, `${role} must be a scalar, got shape [${c.t.dims}]`, 'E_SHAPE');
  return c.t.data[0];
}

/** Clip: min/max are attributes before opset 11, optional constant inputs from 11; +-FLT_MAX means unbounded. */
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
  if (Number.isNaN(lo) || Number.isNaN(hi)) ctx.fail(node, 'has a NaN bound', 'E_FORMAT');
  if (lo <= -FLT_MAX) lo = -Infinity;
  if (hi >= FLT_MAX) hi = Infinity;
  const a = ctx.act(node, 0);
  if (lo === -Infinity && hi === Infinity) return ctx.alias(node, a);
  const dense = ctx.fusableDense(a);
  if (dense && lo === 0 && hi === 6) return ctx.setActivation(dense, node, 'relu6');
  if (dense && lo === 0 && hi === Infinity) return ctx.setActivation(dense, node, 'relu');
  ctx.emitOp(node, 'Clip', [a.name], { ...(lo > -Infinity ? { min: lo } : {}), ...(hi < Infinity ? { max: hi } : {}) });
}

/** DequantizeLinear of constant integer weights: folded to float, remembering symmetric int8 weights to import them as QDense. */
function DequantizeLinear(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.constant(node, 0, 'quantized tensor (only constant weights can be dequantized)').t;
  const scale = ctx.constant(node, 1, 'scale').t;
  const zp = ctx.hasInput(node, 2) ? ctx.constant(node, 2, 'zero point').t : null;
  if (ctx.intAttr(node, 'block_size', 0)) ctx.fail(node, 'uses blocked quantization (block_size), which is not supported');
  const rank = x.dims.length;
  const axis0 = ctx.intAttr(node, 'axis', 1);
  const axis = scale.data.length === 1 ? 0 : axis0 < 0 ? axis0 + rank : axis0;
  if (scale.data.length !== 1 && (!(axis >= 0 && axis < rank) || scale.dims.length !== 1 || scale.data.length !== x.dims[axis])) {
    ctx.fail(node, `scale of shape [${scale.dims}] matches neither one scale nor axis ${axis0} of [${x.dims}]`, 'E_SHAPE');
  }
  if (zp && zp.data.length !== scale.data.length)
    ctx.fail(node, `zero point has ${zp.data.length} values for ${scale.data.length} scales`, 'E_SHAPE');
  const inner = x.dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const channels = scale.data.length;
  // The float values only when something reads them: a QDense takes the int8 weights as they are.
  let floats: Float32Array | undefined;
  const dequantize = (): Float32Array => {
    if (floats) return floats;
    floats = new Float32Array(x.data.length);
    for (let i = 0; i < floats.length; i++) {
      const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
      floats[i] = (x.data[i] - (zp ? zp.data[c] : 0)) * scale.data[c];
    }
    return floats;
  };
  const zeroPoint = zp ? zp.data[0] : 0;
  const keepInt8 = x.dataType === DataType.INT8 && (!zp || zp.data.every((z) => z === zeroPoint)) && scale.data.every((v) => v > 0);
  const q = () => (x.data instanceof Int8Array ? x.data : Int8Array.from(x.data));
  const quant = keepInt8 ? { q: q(), scale: Float32Array.from(scale.data), zeroPoint, axis } : undefined;
  const t = {
    dims: x.dims,
    dataType: DataType.FLOAT,
    get data() {
      return dequantize();
    },
  };
  ctx.set(node, { kind: 'const', t, quant });
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
  if (onnxRank(a.src.shape) !== 2 || a.src.shape.dims[a.src.shape.dims.length - 1] !== kIn)
    ctx.fail(node, `weight takes ${kIn} features but the input has shape ${describeShape(a.src.shape)}`, 'E_SHAPE');
  const zp = ctx.hasInput(node, 3) ? ctx.constant(node, 3, 'weight zero point').t.data : [0];
  if (!Array.from(zp).every((z) => z === zp[0]))
    ctx.fail(node, 'has per-column weight zero points that differ; edgeopt keeps one zero point per weight');
  const name = ctx.nodeName(node);
  // Scales come from the rescaling Mul further down; until then the weight has placeholder scales.
  const w = ctx.addTensor({
    name: `${name}.weight`,
    dtype: 'int8',
    shape: [nOut, kIn],
    data: Int8Array.from(transposeData(b.data, b.dims, [1, 0])),
    quant: int8Quant(new Float32Array([1]), zp[0]),
  });
  const ir = ctx.emit({
    name,
    op: 'QDense',
    inputs: [a.src.name, w],
    outputs: [node.output[0]],
    attrs: { activation: 'none', activationQuant: 'dynamic' },
  });
  ctx.set(node, { kind: 'integerProduct', node: ir, shape: ctx.shapes.get(node.output[0])!, cast: false, zeroPoint: zp[0] });
}

/** Cast of the MatMulInteger accumulator to float (constants are folded in ops-const.ts). */
function Cast(ctx: ImportContext, node: NodeProto): void {
  const v = ctx.value(node, 0);
  const to = ctx.intAttr(node, 'to', 0);
  if (v.kind === 'integerProduct' && !v.cast && to === DataType.FLOAT) return ctx.set(node, { ...v, cast: true });
  if (v.kind === 'act' && to === DataType.FLOAT) return ctx.alias(node, v);
  CONST_HANDLERS.Cast(ctx, node);
}

/** Mul: the integer-MatMul rescale, the HardSigmoid(x) * x pattern (HardSwish), or an IR Mul. */
function Mul(ctx: ImportContext, node: NodeProto): void {
  const [x, y] = [ctx.value(node, 0), ctx.value(node, 1)];
  const [dq, w] = x.kind === 'dynamicQuant' ? [x, y] : [y, x];
  if (dq.kind === 'dynamicQuant' && dq.part === 'scale' && w.kind === 'const') {
    return ctx.set(node, { kind: 'productScale', weightScale: Float32Array.from(w.t.data) });
  }
  const [p, s] = x.kind === 'integerProduct' ? [x, y] : [y, x];
  if (p.kind === 'integerProduct' || s.kind === 'productScale') {
    if (p.kind !== 'integerProduct' || !p.cast || s.kind !== 'productScale')
      ctx.fail(node, 'is not the rescale of a MatMulInteger result (Mul by x_scale * w_scale)');
    const n = p.shape.dims[p.shape.dims.length - 1];
    if (s.weightScale.length !== 1 && s.weightScale.length !== n)
      ctx.fail(node, `has ${s.weightScale.length} weight scales for ${n} output channels`, 'E_SHAPE');
    const weight = ctx.tensors[p.node.inputs[1]];
    ctx.tensors[weight.name] = { ...weight, quant: int8Quant(s.weightScale, p.zeroPoint) };
    p.node.outputs = [node.output[0]];
    ctx.shapes.set(node.output[0], p.shape);
    return ctx.setAct(node, p.shape, p.node);
  }
  if (x.kind === 'act' && y.kind === 'act' && hardSwish(ctx, node, x, y)) return;
  binary('Mul')(ctx, node);
}

/** HardSigmoid(x; 1/6, 1/2) * x, as exporters before opset 14 write HardSwish: one IR HardSwish. */
function hardSwish(ctx: ImportContext, node: NodeProto, x: ActValue, y: ActValue): boolean {
  for (const [gate, src] of [
    [x, y],
    [y, x],
  ]) {
    const producer = ctx.nodes.find((n) => n.outputs[0] === gate.name);
    const a = producer?.attrs;
    const isGate =
      producer?.op === 'HardSigmoid' &&
      producer.inputs[0] === src.name &&
      Math.fround(a!.alpha as number) === Math.fround(1 / 6) &&
      (a!.beta as number) === 0.5 &&
      ctx.uses.get(gate.name) === 1;
    if (!isGate) continue;
    ctx.nodes.splice(ctx.nodes.indexOf(producer!), 1);
    ctx.shapes.delete(gate.name);
    ctx.emitOp(node, 'HardSwish', [src.name]);
    return true;
  }
  return false;
}

export const HANDLERS: Record<string, Handler> = {
  ...CONST_HANDLERS,
  ...CNN_HANDLERS,
  Add,
  Sub: binary('Sub'),
  Div: binary('Div'),
  Cast,
  Clip,
  DequantizeLinear,
  DynamicQuantizeLinear,
  Gemm,
  MatMul,
  MatMulInteger,
  Mul,
  Relu: denseActivation('relu'),
  Sigmoid: denseActivation('sigmoid'),
  Tanh: denseActivation('tanh'),
};

export const SUPPORTED_OPS = Object.keys(HANDLERS).sort();
