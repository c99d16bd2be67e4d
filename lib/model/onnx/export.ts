/**
 * Graph -> ONNX (opset 13, IR 7): every IR op (CNN ops included) as its ONNX op.
 * fp32 Dense layers become Gemm (transB=1, the IR's [out, in] layout) + their
 * activation; int8 QDense layers become either
 *  - 'qdq': DequantizeLinear(int8 weight, per-channel scale, zero point, axis 0) -> Gemm, or
 *  - 'integer': DynamicQuantizeLinear(x) -> MatMulInteger -> Cast -> Mul(x_scale * w_scale) -> Add(bias),
 *    the pattern onnxruntime fuses into one DynamicQuantizeMatMul.
 * Static int8 models (calibrated activations: QDense layers with a static input,
 * Graph.activationQuant) are written as QDQ, whatever `int8` says: every
 * activation grid becomes a QuantizeLinear -> DequantizeLinear pair with the
 * calibrated scale and zero point, int8 Conv weights a per-channel
 * DequantizeLinear (axis 0) and their biases int32 DequantizeLinear with scale
 * inputScale * weightScale, the pattern onnxruntime fuses into QLinearConv /
 * QGemm. Weights are written as they are, so pruned zeros stay zero. Group-wise
 * scales have no opset-13 form: those layers are exported dequantized to float32.
 */
import { quantizeBias } from '../../backends/ts/requantize';
import { EdgeOptError } from '../../errors';
import { writeFileAtomic } from '../../util/atomic-write';
import { type AttrValue, denseBias, denseWeight, type Graph, type GraphNode, type QuantParams, validateGraph } from '../graph';
import { inferShapes, onnxRank, onnxShape } from '../shapes';
import { AttrType, DataType, encodeModelProto } from './proto';
import { encodeTensor } from './tensor';

export type Int8Format = 'qdq' | 'integer';

export interface OnnxExportOptions {
  /** How int8 (QDense) layers are written: 'integer' (default: MatMulInteger, dynamic quantization as edgeopt runs it) or 'qdq'. Both import back. */
  int8?: Int8Format;
}

export const EXPORT_OPSET = 13;
const EXPORT_IR = 7;

type Obj = Record<string, unknown>;

function attr(name: string, value: number | number[] | string): Obj {
  if (typeof value === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttrType.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: AttrType.INT, i: value } : { name, type: AttrType.FLOAT, f: value };
}

function valueInfo(name: string, shape: Array<number | null>, elemType: number = DataType.FLOAT): Obj {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: shape.map((d) => (d === null ? { dim_param: 'batch' } : { dim_value: d })) },
      },
    },
  };
}

/** Weights of a group-wise layer (no opset-13 QDQ form) as float32 [n, k]. */
function dequantizeGroups(q: Int8Array, n: number, k: number, quant: QuantParams): Float32Array {
  const groupSize = quant.groupSize!;
  const groups = Math.ceil(k / groupSize);
  const zp = quant.zeroPoint ?? 0;
  return Float32Array.from(q, (v, i) => {
    const row = Math.floor(i / k);
    return (v - zp) * quant.scale[row * groups + Math.floor((i % k) / groupSize)];
  });
}

class OnnxWriter {
  readonly nodes: Obj[] = [];
  readonly initializers: Obj[] = [];
  private readonly used = new Set<string>();

  constructor(private readonly g: Graph) {
    for (const name of Object.keys(g.tensors)) this.used.add(name);
    for (const n of g.nodes) n.outputs.forEach((o) => this.used.add(o));
    g.inputs.forEach((i) => this.used.add(i.name));
  }

  name(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  init(base: string, dims: number[], data: Float32Array | Int8Array | Int32Array | number[], dataType: number): string {
    const name = this.name(base);
    this.initializers.push(encodeTensor(name, dims, data, dataType));
    return name;
  }

  node(op: string, inputs: string[], outputs: string[], attrs: Obj[] = [], name = outputs[0]): void {
    this.nodes.push({ op_type: op, name, input: inputs, output: outputs, attribute: attrs });
  }

  /** The activation of a Dense node, from its linear output `x` to `out`. */
  activation(node: GraphNode, x: string, out: string): void {
    const act = node.attrs.activation ?? 'none';
    switch (act) {
      case 'relu':
        this.node('Relu', [x], [out], [], `${node.name}/relu`);
        break;
      case 'sigmoid':
        this.node('Sigmoid', [x], [out], [], `${node.name}/sigmoid`);
        break;
      case 'tanh':
        this.node('Tanh', [x], [out], [], `${node.name}/tanh`);
        break;
      case 'relu6': {
        const lo = this.init(`${node.name}.clip_min`, [], [0], DataType.FLOAT);
        const hi = this.init(`${node.name}.clip_max`, [], [6], DataType.FLOAT);
        this.node('Clip', [x, lo, hi], [out], [], `${node.name}/relu6`);
        break;
      }
      default:
        throw new EdgeOptError('E_UNSUPPORTED_OP', `node '${node.name}': activation '${String(act)}' has no ONNX export`);
    }
  }

  /** QuantizeLinear -> DequantizeLinear of `x` on an int8 grid; returns the dequantized name. */
  qdq(x: string, grid: { scale: number; zeroPoint: number }, base: string): string {
    const scale = this.init(`${base}.scale`, [], [grid.scale], DataType.FLOAT);
    const zp = this.init(`${base}.zero_point`, [], [grid.zeroPoint], DataType.INT8);
    const q = this.name(`${base}/q`);
    const dq = this.name(`${base}/dq`);
    this.node('QuantizeLinear', [x, scale, zp], [q], [], `${base}/quantize`);
    this.node('DequantizeLinear', [q, scale, zp], [dq], [], `${base}/dequantize`);
    return dq;
  }

  /**
   * Int8 Conv weights [O, I/g, kh, kw] behind a per-channel DequantizeLinear (axis 0), and the bias as
   * int32 behind a DequantizeLinear with scale inputScale * weightScale (the integers edgeopt runs).
   */
  int8ConvOperands(node: GraphNode, inputScale: number): string[] {
    const w = this.g.tensors[node.inputs[1]];
    const quant = w.quant!;
    const outC = w.shape[0] as number;
    const scales = Float32Array.from({ length: outC }, (_, c) => quant.scale[quant.scale.length === 1 ? 0 : c]);
    const q = this.init(w.name, w.shape as number[], w.data as Int8Array, DataType.INT8);
    const scale = this.init(`${w.name}.scale`, [outC], scales, DataType.FLOAT);
    const zp = this.init(`${w.name}.zero_point`, [outC], new Int8Array(outC), DataType.INT8);
    const deq = this.name(`${w.name}.dequantized`);
    this.node('DequantizeLinear', [q, scale, zp], [deq], [attr('axis', 0)], `${node.name}/dequantize_weight`);
    if (!node.inputs[2]) return [deq];
    const bias = this.g.tensors[node.inputs[2]].data as Float32Array;
    const bq = Int32Array.from(bias, (b, c) => quantizeBias(b, inputScale, scales[c]));
    const bName = this.init(`${node.name}.bias_int32`, [outC], bq, DataType.INT32);
    const bScale = this.init(
      `${node.name}.bias_scale`,
      [outC],
      scales.map((s) => Math.fround(inputScale * s)),
      DataType.FLOAT,
    );
    const bZp = this.init(`${node.name}.bias_zero_point`, [outC], new Int32Array(outC), DataType.INT32);
    const bDeq = this.name(`${node.name}.bias_dequantized`);
    this.node('DequantizeLinear', [bName, bScale, bZp], [bDeq], [attr('axis', 0)], `${node.name}/dequantize_bias`);
    return [deq, bDeq];
  }

  /** Dense or QDense; the activation (if any) writes the node's output. */
  dense(node: GraphNode, x: string, format: Int8Format): void {
    const w = denseWeight(this.g, node);
    const [n, k] = w.shape as number[];
    const bias = denseBias(this.g, node);
    const out = node.outputs[0];
    const hasAct = (node.attrs.activation ?? 'none') !== 'none';
    const pre = hasAct ? this.name(`${node.name}/linear`) : out;
    const quant = w.quant;
    const biasName = bias ? this.init(`${node.name}.bias`, [n], bias, DataType.FLOAT) : undefined;
    if (node.op === 'Dense' || !quant || quant.groupSize) {
      const data = node.op === 'Dense' || !quant ? (w.data as Float32Array) : dequantizeGroups(w.data as Int8Array, n, k, quant);
      const wName = this.init(w.name, [n, k], data, DataType.FLOAT);
      this.node('Gemm', biasName ? [x, wName, biasName] : [x, wName], [pre], [attr('transB', 1)], node.name);
    } else {
      const perChannel = quant.scale.length === n && n > 1;
      const scaleDims = perChannel ? [n] : [];
      const scale = this.init(`${w.name}.scale`, scaleDims, perChannel ? quant.scale : [quant.scale[0]], DataType.FLOAT);
      const zpValues = new Int8Array(perChannel ? n : 1).fill(quant.zeroPoint ?? 0);
      const zp = this.init(`${w.name}.zero_point`, scaleDims, zpValues, DataType.INT8);
      if (format === 'qdq') {
        const q = this.init(w.name, [n, k], w.data as Int8Array, DataType.INT8);
        const deq = this.name(`${w.name}.dequantized`);
        this.node('DequantizeLinear', [q, scale, zp], [deq], perChannel ? [attr('axis', 0)] : [], `${node.name}/dequantize`);
        this.node('Gemm', biasName ? [x, deq, biasName] : [x, deq], [pre], [attr('transB', 1)], node.name);
      } else {
        this.integerDense(node, x, w.data as Int8Array, n, k, scale, zp, biasName, pre);
      }
    }
    if (hasAct) this.activation(node, pre, out);
  }

  private integerDense(
    node: GraphNode,
    x: string,
    q: Int8Array,
    n: number,
    k: number,
    wScale: string,
    wZp: string,
    bias: string | undefined,
    out: string,
  ): void {
    const t = (s: string) => this.name(`${node.name}/${s}`);
    const [xq, xs, xzp, acc, accF, s, y] = ['x_q', 'x_scale', 'x_zero_point', 'acc', 'acc_f', 'scale', 'y'].map(t);
    // MatMulInteger wants B as [K, N]: transpose the [N, K] IR weight.
    const qT = new Int8Array(n * k);
    for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) qT[c * n + r] = q[r * k + c];
    const wName = this.init(`${node.name}.weight_t`, [k, n], qT, DataType.INT8);
    this.node('DynamicQuantizeLinear', [x], [xq, xs, xzp], [], `${node.name}/quantize_input`);
    this.node('MatMulInteger', [xq, wName, xzp, wZp], [acc], [], `${node.name}/matmul_integer`);
    this.node('Cast', [acc], [accF], [attr('to', DataType.FLOAT)], `${node.name}/cast`);
    this.node('Mul', [xs, wScale], [s], [], `${node.name}/scale`);
    this.node('Mul', [accF, s], [bias ? y : out], [], `${node.name}/rescale`);
    if (bias) this.node('Add', [y, bias], [out], [], `${node.name}/bias`);
  }
}

/** ONNX attributes of a Conv/MaxPool/AveragePool node (the IR keeps ONNX's names in camelCase). */
function windowAttrs(node: GraphNode, kernel?: number[]): Obj[] {
  const a = node.attrs;
  const out: Obj[] = [];
  if (kernel) out.push(attr('kernel_shape', kernel));
  for (const [ir, onnx] of [
    ['strides', 'strides'],
    ['dilations', 'dilations'],
    ['pads', 'pads'],
  ] as const)
    if (a[ir] !== undefined) out.push(attr(onnx, a[ir] as number[]));
  if (a.autoPad !== undefined && a.autoPad !== 'NOTSET') out.push(attr('auto_pad', a.autoPad as string));
  return out;
}

/** A float attribute (attr() writes integral numbers as INT). */
function floatAttr(name: string, v: number): Obj {
  return { name, type: AttrType.FLOAT, f: v };
}

/**
 * The ONNX bytes of a graph (opset 13): every IR op maps to its ONNX op; HardSwish is
 * written as HardSigmoid(1/6, 1/2) * x (HardSwish is opset 14), Dropout as Identity.
 */
export function encodeOnnx(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const g = validateGraph(graph);
  const requested = options.int8 ?? 'integer';
  if (requested !== 'qdq' && requested !== 'integer')
    throw new EdgeOptError('E_ARGUMENT', `int8 format must be 'qdq' or 'integer', got '${String(requested)}'`);
  // Calibrated (static) activations only have a QDQ form: the integer form would quantize them dynamically.
  const grids = { ...(g.activationQuant ?? {}) };
  const isStatic = !!g.activationQuant || g.nodes.some((n) => n.op === 'QDense' && n.attrs.activationQuant === 'static');
  const format: Int8Format = isStatic ? 'qdq' : requested;
  for (const n of g.nodes) {
    if (n.op !== 'QDense' || n.attrs.activationQuant !== 'static') continue;
    grids[n.inputs[0]] ??= { scale: n.attrs.inputScale as number, zeroPoint: n.attrs.inputZeroPoint as number };
    if (n.attrs.outputScale !== undefined)
      grids[n.outputs[0]] ??= { scale: n.attrs.outputScale as number, zeroPoint: n.attrs.outputZeroPoint as number };
  }
  const modelOutputs = new Set(g.outputs);
  const shapes = inferShapes(g);
  const w = new OnnxWriter(g);
  const written = new Set<string>();
  /** An IR initializer, written once, as float32. */
  const constant = (name: string): string => {
    if (!written.has(name)) {
      const t = g.tensors[name];
      if (!(t.data instanceof Float32Array))
        throw new EdgeOptError(
          'E_UNSUPPORTED_OP',
          `model '${g.name}': tensor '${name}' (${t.dtype}) has no ONNX export outside Dense layers`,
        );
      w.initializers.push(encodeTensor(name, t.shape as number[], t.data, DataType.FLOAT));
      written.add(name);
    }
    return name;
  };
  // A uint8 input (normalization folded into the first layer) is declared uint8 and cast to float once.
  const renamed = new Map<string, string>();
  for (const input of g.inputs) {
    if (input.dtype !== 'uint8') continue;
    const entry = w.name(`${input.name}/float`);
    w.node('Cast', [input.name], [entry], [attr('to', DataType.FLOAT)], `${input.name}/cast`);
    renamed.set(input.name, entry);
  }
  for (const input of g.inputs)
    if (grids[input.name]) renamed.set(input.name, w.qdq(renamed.get(input.name) ?? input.name, grids[input.name], input.name));
  const operand = (name: string) => (shapes.has(name) ? (renamed.get(name) ?? name) : constant(name));
  const ints = (base: string, values: number[]) => w.init(base, [values.length], values, DataType.INT64);
  for (const original of g.nodes) {
    const node = { ...original, inputs: original.inputs.map((i) => renamed.get(i) ?? i) };
    const x = node.inputs[0];
    const out = node.outputs[0];
    const a = node.attrs;
    const s = shapes.get(original.inputs[0])!;
    switch (node.op) {
      case 'Dense':
      case 'QDense': {
        const k = denseWeight(g, node).shape[1] as number;
        const rank = onnxRank(s);
        const lastAxis = s.dims[s.dims.length - 1] === k;
        if (rank === 2 || !lastAxis) {
          let input = x;
          if (rank !== 2) {
            input = w.name(`${node.name}/flatten`);
            w.node('Flatten', [x], [input], [attr('axis', 1)]);
          }
          w.dense(node, input, format);
        } else {
          // Over the last axis of a deeper tensor: fold the leading dims into rows and back.
          const flat = w.name(`${node.name}/rows`);
          w.node('Reshape', [x, ints(`${node.name}.rows_shape`, [-1, k])], [flat]);
          const y2 = w.name(`${node.name}/out2d`);
          w.dense({ ...node, outputs: [y2] }, flat, format);
          const outShape = onnxShape(shapes.get(out)!).slice(1) as number[];
          w.node('Reshape', [y2, ints(`${node.name}.out_shape`, [-1, ...outShape])], [out]);
        }
        break;
      }
      case 'Conv':
        w.node(
          'Conv',
          g.tensors[node.inputs[1]].dtype === 'int8'
            ? [operand(original.inputs[0]), ...w.int8ConvOperands(node, convInputScale(g, grids, original))]
            : original.inputs.map(operand),
          [out],
          [...windowAttrs(node), attr('group', (a.group as number | undefined) ?? 1)],
          node.name,
        );
        break;
      case 'BatchNormalization':
        w.node(
          'BatchNormalization',
          original.inputs.map(operand),
          [out],
          [floatAttr('epsilon', (a.epsilon as number | undefined) ?? 1e-5)],
          node.name,
        );
        break;
      case 'GroupNormalization':
        // Without this a graph would be written without the node: refuse rather than write a wrong model.
        throw new EdgeOptError(
          'E_UNSUPPORTED_OP',
          `model '${g.name}': node '${node.name}': GroupNormalization needs opset 18; export writes opset ${EXPORT_OPSET}`,
        );
      case 'MaxPool':
      case 'AveragePool': {
        const attrs = windowAttrs(node, a.kernelShape as number[]);
        if (node.op === 'AveragePool' && (a.dilations as number[] | undefined)?.some((d) => d !== 1))
          throw new EdgeOptError(
            'E_UNSUPPORTED_OP',
            `model '${g.name}': node '${node.name}': AveragePool dilations need opset 19; export writes opset ${EXPORT_OPSET}`,
          );
        if (a.ceilMode) attrs.push(attr('ceil_mode', 1));
        if (a.countIncludePad) attrs.push(attr('count_include_pad', 1));
        w.node(
          node.op,
          [x],
          [out],
          attrs.filter((t) => !(node.op === 'AveragePool' && t.name === 'dilations')),
          node.name,
        );
        break;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        w.node(node.op, original.inputs.map(operand), [out], [], node.name);
        break;
      case 'Concat':
        w.node('Concat', node.inputs, [out], [attr('axis', a.axis as number)], node.name);
        break;
      case 'Split':
        w.node(
          'Split',
          [x, ints(`${node.name}.split`, a.split as number[])],
          node.outputs,
          [attr('axis', (a.axis as number | undefined) ?? 0)],
          node.name,
        );
        break;
      case 'Pad': {
        const value = w.init(`${node.name}.value`, [], [(a.value as number | undefined) ?? 0], DataType.FLOAT);
        w.node('Pad', [x, ints(`${node.name}.pads`, a.pads as number[]), value], [out], [], node.name);
        break;
      }
      case 'Clip': {
        const bound = (v: AttrValue | undefined, which: string) =>
          v === undefined ? '' : w.init(`${node.name}.${which}`, [], [v as number], DataType.FLOAT);
        const ins = [x, bound(a.min, 'min'), bound(a.max, 'max')];
        while (ins[ins.length - 1] === '') ins.pop();
        w.node('Clip', ins, [out], [], node.name);
        break;
      }
      case 'LeakyRelu':
        w.node('LeakyRelu', [x], [out], [floatAttr('alpha', (a.alpha as number | undefined) ?? 0.01)], node.name);
        break;
      case 'HardSigmoid':
        w.node(
          'HardSigmoid',
          [x],
          [out],
          [floatAttr('alpha', (a.alpha as number | undefined) ?? 0.2), floatAttr('beta', (a.beta as number | undefined) ?? 0.5)],
          node.name,
        );
        break;
      case 'HardSwish': {
        const gate = w.name(`${node.name}/gate`);
        w.node('HardSigmoid', [x], [gate], [floatAttr('alpha', 1 / 6), floatAttr('beta', 0.5)], `${node.name}/hardsigmoid`);
        w.node('Mul', [x, gate], [out], [], node.name);
        break;
      }
      case 'Relu':
      case 'Sigmoid':
      case 'Tanh':
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
      case 'Identity':
        w.node(node.op, [x], [out], [], node.name);
        break;
      case 'Dropout':
        w.node('Identity', [x], [out], [], node.name);
        break;
      case 'Softmax':
        w.node('Softmax', [x], [out], [attr('axis', (a.axis as number | undefined) ?? -1)], node.name);
        break;
      case 'Flatten':
        w.node('Flatten', [x], [out], [attr('axis', (a.axis as number | undefined) ?? 1)], node.name);
        break;
      case 'Reshape':
        w.node('Reshape', [x, ints(`${node.name}.shape`, a.shape as number[])], [out], [], node.name);
        break;
      case 'Transpose':
        w.node('Transpose', [x], [out], a.perm ? [attr('perm', a.perm as number[])] : [], node.name);
        break;
      case 'ReduceMean':
        w.node(
          'ReduceMean',
          [x],
          [out],
          [...(a.axes ? [attr('axes', a.axes as number[])] : []), attr('keepdims', a.keepdims === false ? 0 : 1)],
          node.name,
        );
        break;
      case 'LRN':
        w.node(
          'LRN',
          [x],
          [out],
          [
            attr('size', a.size as number),
            floatAttr('alpha', (a.alpha as number | undefined) ?? 1e-4),
            floatAttr('beta', (a.beta as number | undefined) ?? 0.75),
            floatAttr('bias', (a.bias as number | undefined) ?? 1),
          ],
          node.name,
        );
        break;
      default: {
        // Every OpType has a case above; a new one fails to compile here until it has one.
        const op: never = node.op;
        throw new EdgeOptError('E_UNSUPPORTED_OP', `ONNX export: no mapping for op '${String(op)}' (node '${node.name}')`);
      }
    }
    for (const o of original.outputs) if (grids[o] && !modelOutputs.has(o)) renamed.set(o, w.qdq(o, grids[o], o));
  }
  const metadata = { ...g.metadata, 'edgeopt.int8_format': format };
  return encodeModelProto({
    ir_version: EXPORT_IR,
    producer_name: 'edgeopt',
    opset_import: [{ domain: '', version: EXPORT_OPSET }],
    metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: w.nodes,
      initializer: w.initializers,
      input: g.inputs.map((i) => valueInfo(i.name, i.shape, i.dtype === 'uint8' ? DataType.UINT8 : DataType.FLOAT)),
      output: g.outputs.map((o) => valueInfo(o, onnxShape(shapes.get(o)!))),
    },
  });
}

/** The input grid's scale of an int8 Conv (its bias is int32 on inputScale * weightScale). */
function convInputScale(g: Graph, grids: Record<string, { scale: number }>, node: GraphNode): number {
  const grid = grids[node.inputs[0]];
  if (!grid)
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `model '${g.name}': node '${node.name}' has int8 weights and no calibrated input grid; int8 Conv layers export only with static activations`,
    );
  return grid.scale;
}

/** Writes the graph as an .onnx file (temp file + rename). Returns the byte size. */
export function saveOnnx(graph: Graph, file: string, options: OnnxExportOptions = {}): number {
  const bytes = encodeOnnx(graph, options);
  writeFileAtomic(file, bytes);
  return bytes.length;
}
