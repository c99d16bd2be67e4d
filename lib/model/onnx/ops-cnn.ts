/**
 * ONNX handlers of convolutional networks: Conv, BatchNormalization (folded into
 * the Conv/Dense before it when it directly follows one), pooling, Concat,
 * Split, Pad, element-wise activations, Softmax, Flatten, Reshape, Transpose,
 * ReduceMean, LRN, Identity and Dropout. Each checks the attributes of its own
 * opset (several moved from attributes to inputs: Clip 11, Pad 11, Split 13,
 * ReduceMean 18, Unsqueeze 13) and emits the IR op (graph.ts), whose shape
 * inference then checks the rest.
 */
import type { AttrValue } from '../graph';
import type { OpType } from '../op-schema';
import { batchNormAffine, foldAffine } from '../rewrite';
import { onnxRank, onnxShape, type ValueShape } from '../shapes';
import { type ActValue, describeShape, type ImportContext } from './context';
import { CONST_HANDLERS } from './ops-const';
import type { NodeProto } from './proto';

export type Handler = (ctx: ImportContext, node: NodeProto) => void;

/** ONNX auto_pad strings ('' and NOTSET mean explicit pads). */
function autoPad(ctx: ImportContext, node: NodeProto): string | undefined {
  const s = ctx.stringAttr(node, 'auto_pad', 'NOTSET') || 'NOTSET';
  if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(s)) ctx.fail(node, `has auto_pad '${s}'`, 'E_FORMAT');
  return s === 'NOTSET' ? undefined : s;
}

/** strides/dilations/pads/auto_pad of a 2-D window op, as IR attributes. */
function windowAttrs(ctx: ImportContext, node: NodeProto, kernel: number[]): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {};
  const two = (name: string, irName: string) => {
    const v = ctx.intsAttr(node, name);
    if (v === undefined) return;
    if (v.length !== 2) ctx.fail(node, `attribute '${name}' has ${v.length} entries; only 2-D windows are supported`);
    attrs[irName] = v;
  };
  const ks = ctx.intsAttr(node, 'kernel_shape');
  if (ks && (ks.length !== 2 || ks[0] !== kernel[0] || ks[1] !== kernel[1]))
    ctx.fail(node, `attribute 'kernel_shape' [${ks}] does not match the ${kernel.join('x')} window`, 'E_FORMAT');
  two('strides', 'strides');
  two('dilations', 'dilations');
  const pads = ctx.intsAttr(node, 'pads');
  if (pads) {
    if (pads.length !== 4) ctx.fail(node, `attribute 'pads' has ${pads.length} entries; only 2-D windows are supported`);
    attrs.pads = pads;
  }
  const ap = autoPad(ctx, node);
  if (ap) attrs.autoPad = ap;
  return attrs;
}

function Conv(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  const w = ctx.constant(node, 1, 'weight').t;
  if (w.dims.length !== 4) ctx.fail(node, `has a ${w.dims.length - 2}-D kernel [${w.dims}]; only 2-D convolution is supported`);
  const name = ctx.nodeName(node);
  const inputs = [x.name, ctx.floatInit(`${name}.weight`, w)];
  if (ctx.hasInput(node, 2)) inputs.push(ctx.floatInit(`${name}.bias`, ctx.constant(node, 2, 'bias').t));
  const attrs = { ...windowAttrs(ctx, node, w.dims.slice(2)), group: ctx.intAttr(node, 'group', 1) };
  const ir = ctx.emit({ name, op: 'Conv', inputs, outputs: [node.output[0]], attrs });
  ctx.setAct(node, ctx.shapes.get(node.output[0])!, ir);
}

/** Folds into the Conv/Dense that produced its input when nothing else reads that; else an IR BatchNormalization. */
function BatchNormalization(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  if (ctx.opset < 9 && ctx.intAttr(node, 'spatial', 1) !== 1) ctx.fail(node, 'has spatial=0 (per-activation statistics)');
  if (ctx.intAttr(node, 'training_mode', 0)) ctx.fail(node, 'has training_mode=1; only inference is supported');
  if (node.output.slice(1).some((o) => o && ctx.uses.get(o))) ctx.fail(node, 'has its running statistics outputs used (training mode)');
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => ctx.constant(node, i, ['scale', 'B', 'mean', 'var'][i - 1]).t.data);
  const eps = ctx.floatAttr(node, 'epsilon', 1e-5);
  const channels = x.shape.folded ? -1 : x.shape.dims[0];
  if ([scale, bias, mean, variance].some((p) => p.length !== channels))
    ctx.fail(node, `has parameters for ${scale.length} channels, its input ${describeShape(x.shape)}`, 'E_SHAPE');
  const linear = ctx.fusableLinear(x);
  if (linear && (linear.op === 'Conv' || x.shape.dims.length === 1)) {
    const { mul, add } = batchNormAffine(scale, bias, mean, variance, eps);
    const { weight, bias: b } = foldAffine(ctx.tensors, linear, mul, add);
    ctx.tensors[weight.name] = weight;
    if (!linear.inputs[2]) linear.inputs.push(ctx.addTensor(b));
    else ctx.tensors[b.name] = b;
    return ctx.retarget(linear, node);
  }
  const base = ctx.nodeName(node);
  const params = [scale, bias, mean, variance].map((p, i) =>
    ctx.addTensor({
      name: `${base}.${['scale', 'bias', 'mean', 'var'][i]}`,
      dtype: 'float32',
      shape: [channels],
      data: Float32Array.from(p),
    }),
  );
  ctx.emitOp(node, 'BatchNormalization', [x.name, ...params], { epsilon: eps });
}

function pool(op: 'MaxPool' | 'AveragePool'): Handler {
  return (ctx: ImportContext, node: NodeProto) => {
    const x = ctx.act(node, 0);
    const kernel = ctx.intsAttr(node, 'kernel_shape');
    if (!kernel) ctx.fail(node, "has no attribute 'kernel_shape'", 'E_FORMAT');
    if (kernel.length !== 2) ctx.fail(node, `has a ${kernel.length}-D window; only 2-D pooling is supported`);
    if (op === 'MaxPool' && node.output[1] && ctx.uses.get(node.output[1])) ctx.fail(node, 'has its Indices output used');
    if (ctx.intAttr(node, 'storage_order', 0) && node.output[1]) ctx.fail(node, 'has storage_order=1');
    const attrs: Record<string, AttrValue> = { ...windowAttrs(ctx, node, kernel), kernelShape: kernel };
    if (ctx.intAttr(node, 'ceil_mode', 0)) attrs.ceilMode = true;
    if (op === 'AveragePool' && ctx.intAttr(node, 'count_include_pad', 0)) attrs.countIncludePad = true;
    ctx.emitOp({ ...node, output: [node.output[0]] }, op, [x.name], attrs);
  };
}

/** A standalone element-wise op (the Dense case is handled by the caller). */
export function emitActivation(ctx: ImportContext, node: NodeProto, a: ActValue, op: OpType, attrs: Record<string, AttrValue> = {}): void {
  ctx.emitOp(node, op, [a.name], attrs);
}

const unary =
  (op: OpType, attrs: (ctx: ImportContext, node: NodeProto) => Record<string, AttrValue> = () => ({})): Handler =>
  (ctx, node) =>
    emitActivation(ctx, node, ctx.act(node, 0), op, attrs(ctx, node));

function Concat(ctx: ImportContext, node: NodeProto): void {
  const vs = node.input.map((_, i) => ctx.value(node, i));
  if (vs.every((v) => v.kind !== 'act')) return CONST_HANDLERS.Concat(ctx, node);
  const acts = node.input.map((_, i) => ctx.act(node, i));
  const axis = ctx.intAttr(node, 'axis', NaN);
  if (Number.isNaN(axis)) ctx.fail(node, "has no attribute 'axis'", 'E_FORMAT');
  if (acts.length === 1) return ctx.alias(node, acts[0]);
  ctx.emitOp(
    node,
    'Concat',
    acts.map((a) => a.name),
    { axis },
  );
}

/** Split sizes: attribute (opset < 13), input 1 (13+), num_outputs (18+), or equal parts. */
function Split(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  const axis = ctx.intAttr(node, 'axis', 0);
  const rank = onnxRank(x.shape);
  const a = axis < 0 ? axis + rank : axis;
  const dim = a >= 1 && a < rank ? onnxShape(x.shape)[a] : null;
  if (dim === null) ctx.fail(node, `axis ${axis} is the batch or out of range for ${describeShape(x.shape)}`, 'E_UNSUPPORTED_OP');
  let sizes: number[] | undefined =
    ctx.opset < 13 ? ctx.intsAttr(node, 'split') : ctx.hasInput(node, 1) ? Array.from(ctx.constant(node, 1, 'split').t.data) : undefined;
  const outputs = node.output.length;
  if (!sizes) {
    const num = ctx.opset >= 18 ? ctx.intAttr(node, 'num_outputs', outputs) : outputs;
    if (num !== outputs) ctx.fail(node, `num_outputs ${num} differs from its ${outputs} outputs`, 'E_FORMAT');
    const chunk = ctx.opset >= 18 ? Math.ceil(dim / num) : dim / num;
    if (!Number.isInteger(chunk)) ctx.fail(node, `cannot split ${dim} into ${num} equal parts`, 'E_SHAPE');
    sizes = Array.from({ length: num }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
  }
  if (sizes.some((s) => !(Number.isInteger(s) && s > 0))) ctx.fail(node, `has split sizes [${sizes}]; empty parts are not supported`);
  ctx.emitOp(node, 'Split', [x.name], { axis, split: sizes });
}

/** Constant padding: pads/value are attributes before opset 11, inputs from 11 (axes from 18). */
function Pad(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  const mode = ctx.stringAttr(node, 'mode', 'constant');
  if (mode !== 'constant') ctx.fail(node, `has mode '${mode}'; only constant padding is supported`);
  const rank = onnxRank(x.shape);
  let pads: number[];
  let value = 0;
  if (ctx.opset < 11) {
    pads = ctx.intsAttr(node, 'pads') ?? ctx.intsAttr(node, 'paddings') ?? ctx.fail(node, "has no attribute 'pads'", 'E_FORMAT');
    value = ctx.floatAttr(node, 'value', 0);
  } else {
    pads = Array.from(ctx.constant(node, 1, 'pads').t.data);
    if (ctx.hasInput(node, 2)) {
      const v = ctx.constant(node, 2, 'constant_value').t.data;
      if (v.length !== 1) ctx.fail(node, 'constant_value must be a scalar', 'E_SHAPE');
      value = v[0];
    }
    if (ctx.hasInput(node, 3)) {
      const axes = Array.from(ctx.constant(node, 3, 'axes').t.data).map((v) => (v < 0 ? v + rank : v));
      if (pads.length !== 2 * axes.length) ctx.fail(node, `has ${pads.length} pads for ${axes.length} axes`, 'E_SHAPE');
      const full = new Array<number>(2 * rank).fill(0);
      axes.forEach((ax, i) => {
        full[ax] = pads[i];
        full[ax + rank] = pads[i + axes.length];
      });
      pads = full;
    }
  }
  if (pads.length !== 2 * rank) ctx.fail(node, `has ${pads.length} pads for rank ${rank}`, 'E_SHAPE');
  if (pads.some((p) => p < 0)) ctx.fail(node, `has negative pads [${pads}] (cropping)`);
  if (pads.every((p) => p === 0)) return ctx.alias(node, x);
  ctx.emitOp(node, 'Pad', [x.name], { pads, value });
}

/**
 * Softmax: opset >= 13 along one axis; before 13 over the input coerced to 2-D at `axis`
 * (default 1): Flatten(axis) -> Softmax(-1) -> Reshape back, each a view where the layout allows.
 */
function Softmax(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  const rank = onnxRank(x.shape);
  const modern = ctx.opset >= 13;
  const axis0 = ctx.intAttr(node, 'axis', modern ? -1 : 1);
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  if (modern || axis === rank - 1) {
    ctx.emitOp(node, 'Softmax', [x.name], { axis });
    return;
  }
  if (!(axis >= 1 && axis < rank)) ctx.fail(node, `axis ${axis0} is the batch or out of range for ${describeShape(x.shape)}`);
  const flat = ctx.uniqueName(`${node.output[0]}/flat`);
  const soft = ctx.uniqueName(`${node.output[0]}/softmax`);
  const name = ctx.nodeName(node);
  ctx.emit({ name: `${name}/flatten`, op: 'Flatten', inputs: [x.name], outputs: [flat], attrs: { axis } });
  ctx.emit({ name, op: 'Softmax', inputs: [flat], outputs: [soft], attrs: { axis: -1 } });
  ctx.emitOp(node, 'Reshape', [soft], { shape: reshapeAttr(x.shape) });
}

/** The IR Reshape target that produces exactly this per-image shape. */
function reshapeAttr(s: ValueShape): number[] {
  return [
    -1,
    ...onnxShape(s)
      .slice(1)
      .map((d) => d as number),
  ];
}

function Flatten(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  const rank = onnxRank(x.shape);
  const axis = ctx.intAttr(node, 'axis', 1);
  if (rank === 2 && (axis === 1 || axis === -1) && !x.shape.folded) return ctx.alias(node, x);
  ctx.emitOp(node, 'Flatten', [x.name], { axis });
}

/** Reshape to a constant or shape-computed target (0 copies a dim unless allowzero, -1 is inferred, the batch size stays first). */
function Reshape(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.value(node, 0);
  if (x.kind !== 'act') return CONST_HANDLERS.Reshape(ctx, node);
  const t = ctx.value(node, 1);
  let target: number[];
  if (t.kind === 'shape') {
    if (t.dims.slice(1).some((d) => d === null)) ctx.fail(node, 'has a target shape with the batch size after dim 0');
    target = [t.dims[0] === null ? (x.shape.folded ? -1 : 0) : (t.dims[0] as number), ...(t.dims.slice(1) as number[])];
  } else target = Array.from(ctx.constant(node, 1, 'shape').t.data);
  if (ctx.intAttr(node, 'allowzero', 0) && target.includes(0)) ctx.fail(node, 'reshapes to an empty tensor (allowzero with a 0 dim)');
  // Resolve through the IR's own rule, then store the explicit target.
  const ir = ctx.emit({
    name: ctx.uniqueName(`${ctx.nodeName(node)}`),
    op: 'Reshape',
    inputs: [x.name],
    outputs: [node.output[0]],
    attrs: { shape: target },
  });
  const out = ctx.shapes.get(node.output[0])!;
  if (out.folded === x.shape.folded && out.dims.length === x.shape.dims.length && out.dims.every((d, i) => d === x.shape.dims[i])) {
    ctx.nodes.pop();
    ctx.shapes.delete(node.output[0]);
    return ctx.alias(node, x);
  }
  ir.attrs.shape = reshapeAttr(out);
  ctx.setAct(node, out);
}

function Transpose(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.value(node, 0);
  if (x.kind !== 'act') return CONST_HANDLERS.Transpose(ctx, node);
  const rank = onnxRank(x.shape);
  const perm = ctx.intsAttr(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.every((p, i) => p === i)) return ctx.alias(node, x);
  ctx.emitOp(node, 'Transpose', [x.name], { perm });
}

/** ReduceMean: axes attribute before opset 18, optional input from 18 (noop_with_empty_axes). */
function ReduceMean(ctx: ImportContext, node: NodeProto): void {
  const x = ctx.act(node, 0);
  let axes: number[] | undefined;
  if (ctx.opset < 18) axes = ctx.intsAttr(node, 'axes');
  else if (ctx.hasInput(node, 1)) axes = Array.from(ctx.constant(node, 1, 'axes').t.data);
  if ((!axes || !axes.length) && ctx.opset >= 18 && ctx.intAttr(node, 'noop_with_empty_axes', 0)) return ctx.alias(node, x);
  const attrs: Record<string, AttrValue> = { keepdims: ctx.intAttr(node, 'keepdims', 1) === 1 };
  if (axes && axes.length) attrs.axes = axes;
  ctx.emitOp(node, 'ReduceMean', [x.name], attrs);
}

function Identity(ctx: ImportContext, node: NodeProto): void {
  ctx.alias(node, ctx.value(node, 0));
}

/** Inference-mode Dropout is the identity; its mask output must be unused. */
function Dropout(ctx: ImportContext, node: NodeProto): void {
  if (node.output[1] && ctx.uses.get(node.output[1]))
    ctx.fail(node, 'has its mask output used; only inference-mode Dropout (identity) is supported');
  if (ctx.hasInput(node, 2) && ctx.constant(node, 2, 'training_mode').t.data[0])
    ctx.fail(node, 'has training_mode=true; only inference mode is supported');
  ctx.alias(node, ctx.value(node, 0));
}

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool'): Handler {
  return (ctx: ImportContext, node: NodeProto) => {
    const x = ctx.act(node, 0);
    if (onnxRank(x.shape) !== 4) ctx.fail(node, `needs an NCHW input, got ${describeShape(x.shape)}`);
    ctx.emitOp(node, op, [x.name]);
  };
}

export const CNN_HANDLERS: Record<string, Handler> = {
  AveragePool: pool('AveragePool'),
  BatchNormalization,
  Concat,
  Conv,
  Dropout,
  Flatten,
  GlobalAveragePool: globalPool('GlobalAveragePool'),
  GlobalMaxPool: globalPool('GlobalMaxPool'),
  HardSigmoid: unary('HardSigmoid', (ctx, n) => ({ alpha: ctx.floatAttr(n, 'alpha', 0.2), beta: ctx.floatAttr(n, 'beta', 0.5) })),
  HardSwish: unary('HardSwish'),
  Identity,
  LeakyRelu: unary('LeakyRelu', (ctx, n) => ({ alpha: ctx.floatAttr(n, 'alpha', 0.01) })),
  LRN: unary('LRN', (ctx, n) => ({
    size: ctx.intAttr(n, 'size', 0),
    alpha: ctx.floatAttr(n, 'alpha', 1e-4),
    beta: ctx.floatAttr(n, 'beta', 0.75),
    bias: ctx.floatAttr(n, 'bias', 1),
  })),
  MaxPool: pool('MaxPool'),
  Pad,
  ReduceMean,
  Reshape,
  Softmax,
  Split,
  Transpose,
};
