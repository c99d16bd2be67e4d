/**
 * Constant folding at import: Constant, ConstantOfShape, and the shape
 * arithmetic exporters emit before a Reshape (Shape -> Gather -> Unsqueeze ->
 * Concat, Slice, Cast, Squeeze), plus element-wise ops, Reshape and Transpose
 * of constants. A shape vector may hold the batch size (unknown until run
 * time) as null: it stays symbolic and only Reshape may consume it.
 */
import { onnxShape } from '../shapes';
import { broadcastTo, transposeConst, transposeData } from './consts';
import type { ImportContext } from './context';
import { DataType, type NodeProto, toNumber } from './proto';
import { type ConstTensor, isFloatType, MAX_ELEMENTS } from './tensor';

type Handler = (ctx: ImportContext, node: NodeProto) => void;

const product = (d: number[]) => d.reduce((a, b) => a * b, 1);

/** A constant or symbolic-shape input as a list of entries (null: the batch size). */
function entries(ctx: ImportContext, node: NodeProto, i: number): { dims: number[]; values: Array<number | null>; dataType: number } {
  const v = ctx.value(node, i);
  if (v.kind === 'shape') return { dims: v.scalar ? [] : [v.dims.length], values: v.dims, dataType: DataType.INT64 };
  const c = ctx.constant(node, i, 'tensor');
  return { dims: c.t.dims, values: Array.from(c.t.data), dataType: c.t.dataType };
}

/** Sets output 0 to a constant, or a symbolic shape vector when an entry is the batch size. */
function setValues(ctx: ImportContext, node: NodeProto, dims: number[], values: Array<number | null>, dataType: number): void {
  if (values.some((v) => v === null)) {
    if (dims.length > 1) ctx.fail(node, 'computes a shape tensor of rank > 1 from the batch size');
    ctx.set(node, { kind: 'shape', dims: values, ...(dims.length === 0 ? { scalar: true } : {}) });
    return;
  }
  const data = isFloatType(dataType) ? Float32Array.from(values as number[]) : Float64Array.from(values as number[]);
  ctx.set(node, { kind: 'const', t: { dims, dataType, data } });
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

function ConstantOfShape(ctx: ImportContext, node: NodeProto): void {
  const shape = entries(ctx, node, 0);
  if (shape.values.some((d) => d === null)) ctx.fail(node, 'builds a tensor whose size depends on the batch');
  const dims = shape.values as number[];
  if (dims.some((d) => !(Number.isInteger(d) && d >= 0)) || product(dims) > MAX_ELEMENTS)
    ctx.fail(node, `has an invalid shape [${dims}]`, 'E_FORMAT');
  const a = ctx.attr(node, 'value');
  const v = a ? ctx.tensorAttr(node, a) : { dims: [1], dataType: DataType.FLOAT, data: Float32Array.of(0) };
  if (v.data.length !== 1) ctx.fail(node, 'value must hold one element', 'E_FORMAT');
  const n = product(dims);
  const data = isFloatType(v.dataType) ? new Float32Array(n).fill(v.data[0]) : new Float64Array(n).fill(v.data[0]);
  ctx.set(node, { kind: 'const', t: { dims, dataType: v.dataType, data } });
}

/** Shape of an activation: known dims, null for the batch (start/end from opset 15). */
function Shape(ctx: ImportContext, node: NodeProto): void {
  const v = ctx.value(node, 0);
  let dims: Array<number | null>;
  if (v.kind === 'act') {
    if (v.shape.folded) ctx.fail(node, `reads the shape of ${onnxShape(v.shape)}, whose first dim is the batch times ${v.shape.dims[0]}`);
    dims = onnxShape(v.shape);
  } else if (v.kind === 'const') dims = v.t.dims;
  else if (v.kind === 'shape') dims = [v.dims.length];
  else return ctx.fail(node, 'reads the shape of an unfinished integer-MatMul pattern');
  const rank = dims.length;
  const clampAxis = (a: number) => Math.min(rank, Math.max(0, a < 0 ? a + rank : a));
  const start = clampAxis(ctx.intAttr(node, 'start', 0));
  const end = clampAxis(ctx.intAttr(node, 'end', rank));
  setValues(ctx, node, [Math.max(0, end - start)], dims.slice(start, end), DataType.INT64);
}

/** Gather along `axis` of a constant or shape vector with constant indices. */
function Gather(ctx: ImportContext, node: NodeProto): void {
  const data = entries(ctx, node, 0);
  const idx = ctx.constant(node, 1, 'indices').t;
  const rank = data.dims.length;
  const axis0 = ctx.intAttr(node, 'axis', 0);
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  if (!(axis >= 0 && axis < rank)) ctx.fail(node, `axis ${axis0} is out of range for rank ${rank}`, 'E_FORMAT');
  const size = data.dims[axis];
  const outer = product(data.dims.slice(0, axis));
  const inner = product(data.dims.slice(axis + 1));
  const ids = Array.from(idx.data, (i) => (i < 0 ? i + size : i));
  if (ids.some((i) => !(Number.isInteger(i) && i >= 0 && i < size))) ctx.fail(node, `has indices out of range 0..${size - 1}`, 'E_FORMAT');
  const out: Array<number | null> = [];
  for (let o = 0; o < outer; o++) for (const i of ids) for (let j = 0; j < inner; j++) out.push(data.values[(o * size + i) * inner + j]);
  setValues(ctx, node, [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)], out, data.dataType);
}

/** Axes of Unsqueeze/Squeeze: an attribute before opset 13, an input from 13. */
function axesOf(ctx: ImportContext, node: NodeProto): number[] | undefined {
  if (ctx.opset < 13) return ctx.intsAttr(node, 'axes');
  return ctx.hasInput(node, 1) ? Array.from(ctx.constant(node, 1, 'axes').t.data) : undefined;
}

function Unsqueeze(ctx: ImportContext, node: NodeProto): void {
  const v = ctx.value(node, 0);
  if (v.kind === 'act') return ctx.fail(node, 'unsqueezes a computed tensor; use Reshape');
  const d = entries(ctx, node, 0);
  const axes = axesOf(ctx, node) ?? ctx.fail(node, 'has no axes', 'E_FORMAT');
  const rank = d.dims.length + axes.length;
  const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const dims: number[] = [];
  for (let i = 0, j = 0; i < rank; i++) dims.push(at.has(i) ? 1 : d.dims[j++]);
  setValues(ctx, node, dims, d.values, d.dataType);
}

function Squeeze(ctx: ImportContext, node: NodeProto): void {
  const v = ctx.value(node, 0);
  if (v.kind === 'act') return ctx.fail(node, 'squeezes a computed tensor; use Reshape');
  const d = entries(ctx, node, 0);
  const axes = axesOf(ctx, node)?.map((a) => (a < 0 ? a + d.dims.length : a));
  const dims = d.dims.filter((n, i) => (axes ? !axes.includes(i) : n !== 1));
  setValues(ctx, node, dims, d.values, d.dataType);
}

/** Concat of constants and shape vectors. */
function Concat(ctx: ImportContext, node: NodeProto): void {
  const parts = node.input.map((_, i) => entries(ctx, node, i));
  const rank = parts[0].dims.length;
  const axis0 = ctx.intAttr(node, 'axis', 0);
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  if (parts.some((p) => p.dims.length !== rank || p.dims.some((d, i) => i !== axis && d !== parts[0].dims[i])))
    ctx.fail(node, 'concatenates constants of different shapes', 'E_SHAPE');
  const outer = product(parts[0].dims.slice(0, axis));
  const out: Array<number | null> = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const len = product(p.dims.slice(axis));
      out.push(...p.values.slice(o * len, (o + 1) * len));
    }
  }
  const dims = [...parts[0].dims];
  dims[axis] = parts.reduce((s, p) => s + p.dims[axis], 0);
  setValues(ctx, node, dims, out, parts[0].dataType);
}

/** Slice of a 1-D constant or shape vector (starts/ends/axes/steps: attributes before opset 10, inputs from 10). */
function Slice(ctx: ImportContext, node: NodeProto): void {
  const d = entries(ctx, node, 0);
  const get = (i: number, attr: string) =>
    ctx.opset < 10 ? ctx.intsAttr(node, attr) : ctx.hasInput(node, i) ? Array.from(ctx.constant(node, i, attr).t.data) : undefined;
  const starts = get(1, 'starts');
  const ends = get(2, 'ends');
  const axes = get(3, 'axes') ?? [0];
  const steps = get(4, 'steps') ?? [1];
  if (d.dims.length !== 1 || !starts || !ends || starts.length !== 1 || axes[0] % 1 || ![0, -1].includes(axes[0]) || steps[0] !== 1)
    ctx.fail(node, 'slices something other than a 1-D constant with step 1');
  const n = d.dims[0];
  const clamp = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
  const values = d.values.slice(clamp(starts![0]), clamp(ends![0]));
  setValues(ctx, node, [values.length], values, d.dataType);
}

function Cast(ctx: ImportContext, node: NodeProto): void {
  const d = entries(ctx, node, 0);
  const to = ctx.intAttr(node, 'to', 0);
  const values = isFloatType(to) ? d.values : d.values.map((v) => (v === null ? null : Math.trunc(v)));
  setValues(ctx, node, d.dims, values, to);
}

/** Reshape of a constant (weights reshaped by the exporter). */
function Reshape(ctx: ImportContext, node: NodeProto): void {
  const c = ctx.constant(node, 0, 'tensor');
  const target = Array.from(ctx.constant(node, 1, 'shape').t.data);
  const dims = target.map((d, i) => (d === 0 ? c.t.dims[i] : d));
  const known = product(dims.filter((d) => d !== -1));
  const at = dims.indexOf(-1);
  if (at >= 0) dims[at] = c.t.data.length / known;
  if (product(dims) !== c.t.data.length || dims.some((d) => !Number.isInteger(d) || d < 0))
    ctx.fail(node, `cannot reshape a constant of shape [${c.t.dims}] to [${target}]`, 'E_SHAPE');
  ctx.set(node, { kind: 'const', t: { ...c.t, dims }, quant: c.quant });
}

/** Transpose of a constant (e.g. a weight stored [in, out]): folded at import. */
function Transpose(ctx: ImportContext, node: NodeProto): void {
  const c = ctx.constant(node, 0, 'tensor');
  const rank = c.t.dims.length;
  const perm = ctx.intsAttr(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.length !== rank || [...perm].sort((x, y) => x - y).some((p, i) => p !== i))
    ctx.fail(node, `perm [${perm}] is not a permutation of ${rank} axes`, 'E_FORMAT');
  const quant =
    c.quant && rank === 2 ? { ...c.quant, q: transposeData(c.quant.q, c.t.dims, perm), axis: perm.indexOf(c.quant.axis) } : undefined;
  ctx.set(node, { kind: 'const', t: transposeConst(c.t, perm), quant });
}

const BINARY_FNS = {
  Add: (a: number, b: number) => a + b,
  Sub: (a: number, b: number) => a - b,
  Mul: (a: number, b: number) => a * b,
  Div: (a: number, b: number) => a / b,
};

/** An element-wise op of two constants (or a shape vector and a constant), numpy-broadcast. */
export function foldBinary(op: keyof typeof BINARY_FNS): Handler {
  return (ctx: ImportContext, node: NodeProto) => {
    const [a, b] = [entries(ctx, node, 0), entries(ctx, node, 1)];
    if (a.values.includes(null) || b.values.includes(null)) ctx.fail(node, 'computes with the batch size');
    const rank = Math.max(a.dims.length, b.dims.length);
    const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
    const [da, db] = [pad(a.dims), pad(b.dims)];
    const dims = da.map((d, i) => Math.max(d, db[i]));
    const ta = broadcastTo({ dims: a.dims, dataType: a.dataType, data: Float64Array.from(a.values as number[]) }, dims);
    const tb = broadcastTo({ dims: b.dims, dataType: b.dataType, data: Float64Array.from(b.values as number[]) }, dims);
    if (!ta || !tb) ctx.fail(node, `constants of shapes [${a.dims}] and [${b.dims}] do not broadcast`, 'E_SHAPE');
    const float = isFloatType(a.dataType) || isFloatType(b.dataType);
    const f = BINARY_FNS[op];
    const values = Array.from(ta, (x, i) => {
      const r = f(x, tb[i]);
      return float ? Math.fround(r) : op === 'Div' ? Math.trunc(r) : r;
    });
    setValues(ctx, node, dims, values, float ? DataType.FLOAT : a.dataType);
  };
}

export const CONST_HANDLERS: Record<string, Handler> = {
  Cast,
  Concat,
  Constant,
  ConstantOfShape,
  Gather,
  Reshape,
  Shape,
  Slice,
  Squeeze,
  Transpose,
  Unsqueeze,
};
