/**
 * Shape inference for the graph IR. Every activation is batch-major; its
 * shape here is PER IMAGE (the batch dimension dropped). An op never mixes
 * images, so one per-image shape serves every batch size.
 *
 * `folded` marks a tensor whose ONNX dim 0 is the batch times its first
 * per-image dim (Flatten with axis > 1, Reshape to [-1, ...] with fewer values
 * per row): ONNX shape [N * dims[0], ...dims.slice(1)] instead of [N, ...dims].
 * ONNX axis a >= 1 is per-image axis a - 1 of an unfolded tensor and a of a
 * folded one; axis 0 is (or contains) the batch, which no op may touch.
 */
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode, Tensor } from './graph';

export interface ValueShape {
  dims: number[];
  folded: boolean;
}

const product = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

/** The ONNX rank of an activation (batch dim included). */
export function onnxRank(s: ValueShape): number {
  return s.dims.length + (s.folded ? 0 : 1);
}

/** The ONNX shape with the batch as null (folded: null too, the batch times dims[0]). */
export function onnxShape(s: ValueShape): Array<number | null> {
  return s.folded ? [null, ...s.dims.slice(1)] : [null, ...s.dims];
}

/** Rows of the ONNX dim 0 per image (1, or dims[0] when folded). */
export function rowsPerImage(s: ValueShape): number {
  return s.folded ? s.dims[0] : 1;
}

function fail(g: Graph, node: GraphNode, why: string, code: 'E_SHAPE' | 'E_UNSUPPORTED_OP' | 'E_FORMAT' = 'E_SHAPE'): never {
  throw new EdgeOptError(code, `model '${g.name}': node '${node.name}' (${node.op}) ${why}`);
}

/** Per-image index of ONNX axis `axis` (negative counts from the end); axis 0 (the batch) is refused. */
export function imageAxis(g: Graph, node: GraphNode, s: ValueShape, axis: number, what = 'axis'): number {
  const rank = onnxRank(s);
  const a = axis < 0 ? axis + rank : axis;
  if (!(Number.isInteger(a) && a >= 0 && a < rank)) fail(g, node, `${what} ${axis} is out of range for rank ${rank}`, 'E_FORMAT');
  if (a === 0) fail(g, node, `${what} ${axis} is the batch dimension; ops that mix images are not supported`, 'E_UNSUPPORTED_OP');
  return s.folded ? a : a - 1;
}

export interface WindowGeometry {
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

export interface WindowAttrs {
  kh: number;
  kw: number;
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: string;
  ceilMode: boolean;
}

/** Window attributes of a Conv/MaxPool/AveragePool node with ONNX defaults filled in. */
export function windowAttrs(node: GraphNode, kh: number, kw: number): WindowAttrs {
  const a = node.attrs;
  return {
    kh,
    kw,
    strides: (a.strides as number[] | undefined) ?? [1, 1],
    dilations: (a.dilations as number[] | undefined) ?? [1, 1],
    pads: (a.pads as number[] | undefined) ?? [0, 0, 0, 0],
    autoPad: (a.autoPad as string | undefined) ?? 'NOTSET',
    ceilMode: a.ceilMode === true,
  };
}

/**
 * Output size and explicit pads (ONNX): auto_pad SAME_* pads to ceil(in / stride) outputs
 * (SAME_UPPER puts the odd pad at the end), VALID pads nothing; ceil_mode rounds the output
 * up, except that a window may not start in the end padding (ONNX, PyTorch, onnxruntime).
 */
export function windowGeometry(inH: number, inW: number, w: WindowAttrs): WindowGeometry | string {
  const one = (inSize: number, k: number, stride: number, dil: number, begin: number, end: number) => {
    const span = dil * (k - 1) + 1;
    if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
      const out = Math.ceil(inSize / stride);
      const total = Math.max(0, (out - 1) * stride + span - inSize);
      const b = w.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
      return { out, begin: b, end: total - b };
    }
    if (w.autoPad === 'VALID') [begin, end] = [0, 0];
    const room = inSize + begin + end - span;
    if (room < 0) return { out: 0, begin, end };
    let out = (w.ceilMode ? Math.ceil(room / stride) : Math.floor(room / stride)) + 1;
    if (w.ceilMode && (out - 1) * stride >= inSize + begin) out--;
    return { out, begin, end };
  };
  const h = one(inH, w.kh, w.strides[0], w.dilations[0], w.pads[0], w.pads[2]);
  const x = one(inW, w.kw, w.strides[1], w.dilations[1], w.pads[1], w.pads[3]);
  if (h.out < 1 || x.out < 1) return `window ${w.kh}x${w.kw} (dilations ${w.dilations}) does not fit the padded ${inH}x${inW} input`;
  return { outH: h.out, outW: x.out, padTop: h.begin, padLeft: x.begin, padBottom: h.end, padRight: x.end };
}

function constTensor(g: Graph, node: GraphNode, i: number): Tensor & { data: NonNullable<Tensor['data']> } {
  const t = g.tensors[node.inputs[i]];
  if (!t?.data) fail(g, node, `input ${i} ('${node.inputs[i]}') must be an initializer`, 'E_FORMAT');
  return t as Tensor & { data: NonNullable<Tensor['data']> };
}

/** An operand as an ONNX-style shape: an activation's dim 0 is the batch (-1), a constant's its own dims. */
type Operand = { shape: number[]; act?: ValueShape };

function operand(g: Graph, shapes: Map<string, ValueShape>, name: string): Operand {
  const s = shapes.get(name);
  if (s) return { shape: [-1, ...(s.folded ? s.dims.slice(1) : s.dims)], act: s };
  const t = g.tensors[name];
  return { shape: t.shape as number[] };
}

/** numpy broadcasting of two operands, at least one an activation; the result per image. */
export function broadcastShapes(g: Graph, node: GraphNode, a: Operand, b: Operand): ValueShape {
  const acts = [a.act, b.act].filter((x): x is ValueShape => !!x);
  if (acts.length === 2) {
    if (a.shape.length !== b.shape.length)
      fail(
        g,
        node,
        `adds activations of ranks ${a.shape.length} and ${b.shape.length}; broadcasting would align the batch with another dim`,
        'E_UNSUPPORTED_OP',
      );
    if (acts[0].folded !== acts[1].folded || (acts[0].folded && acts[0].dims[0] !== acts[1].dims[0]))
      fail(g, node, 'combines activations whose first dimension holds different numbers of rows per image', 'E_UNSUPPORTED_OP');
  }
  const rank = Math.max(a.shape.length, b.shape.length);
  const pad = (s: number[]) => [...new Array<number>(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(a.shape), pad(b.shape)];
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const [x, y] = [pa[i], pb[i]];
    if (x === -1 || y === -1) {
      if (i !== 0) fail(g, node, 'broadcasts a constant with more dimensions than the activation over the batch', 'E_UNSUPPORTED_OP');
      if ((x !== -1 && x !== 1) || (y !== -1 && y !== 1))
        fail(g, node, `constant dim 0 of size ${x === -1 ? y : x} would broadcast over the batch`, 'E_UNSUPPORTED_OP');
      continue;
    }
    if (x !== y && x !== 1 && y !== 1) fail(g, node, `shapes [${a.shape}] and [${b.shape}] do not broadcast (dim ${i}: ${x} vs ${y})`);
    out.push(Math.max(x, y));
  }
  if (pa[0] !== -1 && pb[0] !== -1) fail(g, node, 'has no activation aligned with the batch dimension', 'E_UNSUPPORTED_OP');
  const act = acts[0];
  return act.folded ? { dims: [act.dims[0], ...out], folded: true } : { dims: out, folded: false };
}

/** Resolves an ONNX-style Reshape target (0 copies, -1 infers) of a per-image shape. */
export function reshapeTarget(g: Graph, node: GraphNode, s: ValueShape, target: number[]): ValueShape {
  const bad = (why: string): never =>
    fail(g, node, `reshapes [${onnxShape(s).map((d) => d ?? 'N')}] to [${target}]: ${why}`, 'E_UNSUPPORTED_OP');
  const size = product(s.dims);
  const onnx = onnxShape(s);
  if (!target.length) bad('a scalar would merge the batch');
  if (target.filter((d) => d === -1).length > 1) bad('more than one -1');
  const rest = target
    .slice(1)
    .map((d, i) => (d === 0 ? (i + 1 < onnx.length ? (onnx[i + 1] as number) : bad('0 copies a dim the input lacks')) : d));
  const known = product(rest.filter((d) => d !== -1));
  if (target[0] === 0) {
    // dim 0 (batch, or batch x rows) is kept: the rest must hold the same values per row.
    const rows = rowsPerImage(s);
    const per = size / rows;
    const at = rest.indexOf(-1);
    if (at >= 0) {
      if (known === 0 || per % known) bad('the -1 cannot be inferred');
      rest[at] = per / known;
    } else if (known !== per) bad(`${known} values per row, the input has ${per}`);
    return s.folded ? { dims: [rows, ...rest], folded: true } : { dims: rest, folded: false };
  }
  if (target[0] !== -1) bad('dim 0 must be 0 (keep) or -1: the batch size is not fixed');
  if (rest.includes(-1)) bad('more than one -1');
  if (known === 0 || size % known) bad(`${size} values per image do not split into rows of ${known}`);
  const rows = size / known;
  return rows === 1 ? { dims: rest, folded: false } : { dims: [rows, ...rest], folded: true };
}

/** Dense/QDense: y = x W^T + b over the last axis; an input whose whole row has k values (and a different last dim) is read as one row, as the seed IR did. */
export function denseShape(g: Graph, node: GraphNode, s: ValueShape, k: number, n: number): ValueShape {
  const last = s.dims[s.dims.length - 1];
  if (s.dims.length && last === k && !(s.dims.length === 1 && s.folded)) return { dims: [...s.dims.slice(0, -1), n], folded: s.folded };
  if (!s.folded && product(s.dims) === k) return { dims: [n], folded: false };
  return fail(g, node, `takes ${k} features but its input has shape [${onnxShape(s).map((d) => d ?? 'N')}]`);
}

/** Per-image output shapes of one node given its inputs' shapes. */
export function nodeShapes(g: Graph, node: GraphNode, shapes: Map<string, ValueShape>): ValueShape[] {
  const act = (i: number): ValueShape => {
    const s = shapes.get(node.inputs[i]);
    if (!s) fail(g, node, `input ${i} ('${node.inputs[i]}') must be an activation, not a constant`, 'E_UNSUPPORTED_OP');
    return s!;
  };
  const image = (i: number): [number, number, number] => {
    const s = act(i);
    if (s.folded || s.dims.length !== 3) fail(g, node, `needs an NCHW image input, got [${onnxShape(s).map((d) => d ?? 'N')}]`);
    return s.dims as [number, number, number];
  };
  const a = node.attrs;
  switch (node.op) {
    case 'Dense':
    case 'QDense': {
      const w = constTensor(g, node, 1);
      if (w.shape.length !== 2) fail(g, node, `weight '${w.name}' must be 2-D [out, in]`, 'E_FORMAT');
      const [n, k] = w.shape as number[];
      return [denseShape(g, node, act(0), k, n)];
    }
    case 'Conv': {
      const [c, h, wd] = image(0);
      const w = constTensor(g, node, 1);
      if (w.shape.length !== 4)
        fail(g, node, `weight '${w.name}' must be 4-D [out, in/group, kh, kw] (2-D convolution)`, 'E_UNSUPPORTED_OP');
      const [o, ci, kh, kw] = w.shape as number[];
      const bias = node.inputs[2] ? g.tensors[node.inputs[2]] : undefined;
      if (bias && bias.data?.length !== o) fail(g, node, `bias '${bias.name}' has ${bias.data?.length} values for ${o} output channels`);
      const group = (a.group as number | undefined) ?? 1;
      if (c % group || o % group) fail(g, node, `group ${group} does not divide ${c} input and ${o} output channels`);
      if (ci * group !== c) fail(g, node, `weight takes ${ci * group} input channels (group ${group}), the input has ${c}`);
      const geo = windowGeometry(h, wd, windowAttrs(node, kh, kw));
      if (typeof geo === 'string') fail(g, node, geo);
      return [{ dims: [o, (geo as WindowGeometry).outH, (geo as WindowGeometry).outW], folded: false }];
    }
    case 'MaxPool':
    case 'AveragePool': {
      const [c, h, w] = image(0);
      const [kh, kw] = (a.kernelShape as number[] | undefined) ?? fail(g, node, "needs attribute 'kernelShape'", 'E_FORMAT');
      const geo = windowGeometry(h, w, windowAttrs(node, kh, kw));
      if (typeof geo === 'string') fail(g, node, geo);
      return [{ dims: [c, (geo as WindowGeometry).outH, (geo as WindowGeometry).outW], folded: false }];
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
      return [{ dims: [image(0)[0], 1, 1], folded: false }];
    case 'LRN':
      image(0);
      if (a.size === undefined) fail(g, node, "needs attribute 'size'", 'E_FORMAT');
      return [act(0)];
    case 'BatchNormalization': {
      const s = act(0);
      if (onnxRank(s) < 2 || s.folded) fail(g, node, 'needs an input [N, C, ...]');
      for (let i = 1; i < 5; i++) {
        const t = constTensor(g, node, i);
        if (t.data.length !== s.dims[0]) fail(g, node, `parameter '${t.name}' has ${t.data.length} values for ${s.dims[0]} channels`);
      }
      return [s];
    }
    case 'GroupNormalization': {
      const [c] = image(0);
      const groups = (a.numGroups as number | undefined) ?? fail(g, node, "needs attribute 'numGroups'", 'E_FORMAT');
      if (c % groups) fail(g, node, `numGroups ${groups} does not divide the ${c} channels`);
      for (let i = 1; i < 3; i++) {
        const t = constTensor(g, node, i);
        if (t.data.length !== c) fail(g, node, `parameter '${t.name}' has ${t.data.length} values for ${c} channels`);
      }
      return [act(0)];
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return [broadcastShapes(g, node, operand(g, shapes, node.inputs[0]), operand(g, shapes, node.inputs[1]))];
    case 'Concat': {
      const ins = node.inputs.map((_, i) => act(i));
      const axis = imageAxis(g, node, ins[0], (a.axis as number | undefined) ?? fail(g, node, "needs attribute 'axis'", 'E_FORMAT'));
      const dims = [...ins[0].dims];
      dims[axis] = 0;
      for (const s of ins) {
        if (s.folded !== ins[0].folded || s.dims.length !== dims.length || s.dims.some((d, i) => i !== axis && d !== ins[0].dims[i]))
          fail(g, node, `inputs [${ins.map((x) => `[${onnxShape(x).map((d) => d ?? 'N')}]`)}] differ outside axis ${String(a.axis)}`);
        dims[axis] += s.dims[axis];
      }
      return [{ dims, folded: ins[0].folded }];
    }
    case 'Split': {
      const s = act(0);
      const axis = imageAxis(g, node, s, (a.axis as number | undefined) ?? 0);
      const sizes = (a.split as number[] | undefined) ?? fail(g, node, "needs attribute 'split'", 'E_FORMAT');
      if (sizes.length !== node.outputs.length)
        fail(g, node, `split has ${sizes.length} sizes for ${node.outputs.length} outputs`, 'E_FORMAT');
      if (sizes.reduce((x, y) => x + y, 0) !== s.dims[axis]) fail(g, node, `split sizes [${sizes}] do not add up to ${s.dims[axis]}`);
      return sizes.map((n) => ({ dims: s.dims.map((d, i) => (i === axis ? n : d)), folded: s.folded }));
    }
    case 'Pad': {
      const s = act(0);
      const rank = onnxRank(s);
      const pads = (a.pads as number[] | undefined) ?? fail(g, node, "needs attribute 'pads'", 'E_FORMAT');
      if (pads.length !== 2 * rank) fail(g, node, `pads has ${pads.length} entries for rank ${rank}`, 'E_FORMAT');
      if (pads[0] || pads[rank]) fail(g, node, 'pads the batch dimension', 'E_UNSUPPORTED_OP');
      const off = s.folded ? 0 : 1;
      return [{ dims: s.dims.map((d, i) => d + pads[i + off] + pads[i + off + rank]), folded: s.folded }];
    }
    case 'Softmax': {
      const s = act(0);
      imageAxis(g, node, s, (a.axis as number | undefined) ?? -1);
      return [s];
    }
    case 'Flatten': {
      const s = act(0);
      const rank = onnxRank(s);
      const axis0 = (a.axis as number | undefined) ?? 1;
      const axis = axis0 < 0 ? axis0 + rank : axis0;
      if (!(axis >= 0 && axis <= rank)) fail(g, node, `axis ${axis0} is out of range for rank ${rank}`, 'E_FORMAT');
      if (axis === 0) fail(g, node, 'axis 0 would merge the batch into one row', 'E_UNSUPPORTED_OP');
      const split = s.folded ? axis : axis - 1; // per-image dims before the split point
      const outer = product(s.dims.slice(0, split));
      const inner = product(s.dims.slice(split));
      return [split === 0 ? { dims: [inner], folded: false } : { dims: [outer, inner], folded: true }];
    }
    case 'Reshape':
      return [reshapeTarget(g, node, act(0), (a.shape as number[] | undefined) ?? fail(g, node, "needs attribute 'shape'", 'E_FORMAT'))];
    case 'Transpose': {
      const s = act(0);
      const rank = onnxRank(s);
      const perm = (a.perm as number[] | undefined) ?? [0, ...Array.from({ length: rank - 1 }, (_, i) => rank - 1 - i)];
      if (perm.length !== rank || [...perm].sort((x, y) => x - y).some((p, i) => p !== i))
        fail(g, node, `perm [${perm}] is not a permutation of ${rank} axes`, 'E_FORMAT');
      if (perm[0] !== 0) fail(g, node, `perm [${perm}] moves the batch dimension`, 'E_UNSUPPORTED_OP');
      const off = s.folded ? 0 : 1;
      const out = perm.slice(1).map((p) => s.dims[p - off]);
      return [{ dims: s.folded ? [s.dims[0], ...out] : out, folded: s.folded }];
    }
    case 'ReduceMean': {
      const s = act(0);
      const rank = onnxRank(s);
      const axes = ((a.axes as number[] | undefined) ?? Array.from({ length: rank }, (_, i) => i)).map((x) =>
        imageAxis(g, node, s, x, 'axes entry'),
      );
      const keep = a.keepdims !== false;
      const dims = keep ? s.dims.map((d, i) => (axes.includes(i) ? 1 : d)) : s.dims.filter((_, i) => !axes.includes(i));
      if (!keep && s.folded && axes.includes(0)) fail(g, node, 'reduces the rows merged into the batch dimension', 'E_UNSUPPORTED_OP');
      return [{ dims, folded: s.folded }];
    }
    default:
      return [act(0)]; // element-wise and identity ops keep their input's shape
  }
}

/** Shapes of every activation (graph inputs and node outputs), per image. Throws naming the node at fault. */
export function inferShapes(g: Graph): Map<string, ValueShape> {
  const shapes = new Map<string, ValueShape>();
  for (const input of g.inputs) {
    const dims = input.shape.slice(1);
    if (input.shape.length < 1 || dims.some((d) => d === null || !(Number.isInteger(d) && d > 0)))
      throw new EdgeOptError(
        'E_SHAPE',
        `model '${g.name}': input '${input.name}' has shape [${input.shape.map((d) => d ?? 'N')}]; only the batch (first) dimension may be unknown`,
      );
    shapes.set(input.name, { dims: dims as number[], folded: false });
  }
  for (const node of g.nodes) {
    const outs = nodeShapes(g, node, shapes);
    node.outputs.forEach((o, i) => shapes.set(o, outs[i]));
  }
  return shapes;
}
