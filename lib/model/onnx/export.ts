/**
 * Graph -> ONNX (opset 13, IR 7). fp32 Dense layers become Gemm (transB=1, the
 * IR's [out, in] layout) + their activation; int8 QDense layers become either
 *  - 'qdq': DequantizeLinear(int8 weight, per-channel scale, zero point, axis 0) -> Gemm, or
 *  - 'integer': DynamicQuantizeLinear(x) -> MatMulInteger -> Cast -> Mul(x_scale * w_scale) -> Add(bias),
 *    the pattern onnxruntime fuses into one DynamicQuantizeMatMul.
 * Weights are written as they are, so pruned zeros stay zero. Group-wise scales
 * have no opset-13 form: those layers are exported dequantized to float32.
 */
import { EdgeOptError } from '../../errors';
import { writeFileAtomic } from '../../util/atomic-write';
import { denseBias, denseWeight, type Graph, type GraphNode, type QuantParams, validateGraph } from '../graph';
import { AttrType, DataType, encodeModelProto } from './proto';
import { encodeTensor } from './tensor';

export type Int8Format = 'qdq' | 'integer';

export interface OnnxExportOptions {
  /** How int8 (QDense) layers are written: 'integer' (default; onnxruntime-node ran it ~1.5x faster than QDQ here) or 'qdq'. Both import back. */
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

  init(base: string, dims: number[], data: Float32Array | Int8Array | number[], dataType: number): string {
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

/** The ONNX bytes of a graph. Only single-input chains of the IR's ops are exportable. */
export function encodeOnnx(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const g = validateGraph(graph);
  const format = options.int8 ?? 'integer';
  if (format !== 'qdq' && format !== 'integer')
    throw new EdgeOptError('E_ARGUMENT', `int8 format must be 'qdq' or 'integer', got '${String(format)}'`);
  if (g.inputs.length !== 1 || g.outputs.length !== 1)
    throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': ONNX export handles single-input, single-output models`);
  const w = new OnnxWriter(g);
  const input = g.inputs[0];
  // A uint8 input (normalization folded into the first layer) is declared uint8 and cast to float once.
  let entry = input.name;
  if (input.dtype === 'uint8') {
    entry = w.name(`${input.name}/float`);
    w.node('Cast', [input.name], [entry], [attr('to', DataType.FLOAT)], `${input.name}/cast`);
  }
  const shapes = new Map<string, Array<number | null>>([[entry, input.shape]]);
  const rowSize = (s: Array<number | null>) => s.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
  /** Gemm and whole-row Softmax need [batch, features]: flatten deeper inputs first. */
  const flat = (node: GraphNode, x: string): string => {
    const s = shapes.get(x)!;
    if (s.length === 2) return x;
    const y = w.name(`${node.name}/flatten`);
    w.node('Flatten', [x], [y], [attr('axis', 1)]);
    return y;
  };
  for (const node of g.nodes) {
    const x = node.inputs[0] === input.name ? entry : node.inputs[0];
    const inShape = shapes.get(x);
    if (!inShape)
      throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': node '${node.name}' reads '${x}', which ONNX export cannot place`);
    const out = node.outputs[0];
    let outShape: Array<number | null> = inShape;
    switch (node.op) {
      case 'Dense':
      case 'QDense':
        w.dense(node, flat(node, x), format);
        outShape = [inShape[0], denseWeight(g, node).shape[0]];
        break;
      case 'Relu':
        w.node('Relu', [x], [out], [], node.name);
        break;
      case 'Softmax':
        w.node('Softmax', [flat(node, x)], [out], [attr('axis', -1)], node.name);
        outShape = [inShape[0], rowSize(inShape)];
        break;
      case 'Flatten':
        w.node('Flatten', [x], [out], [attr('axis', 1)], node.name);
        outShape = [inShape[0], rowSize(inShape)];
        break;
      case 'Reshape': {
        const dims = (node.attrs.shape as number[]).slice(1);
        const shape = w.init(`${node.name}.shape`, [dims.length + 1], [-1, ...dims], DataType.INT64);
        w.node('Reshape', [x, shape], [out], [], node.name);
        outShape = [inShape[0], ...dims];
        break;
      }
    }
    shapes.set(out, outShape);
  }
  const output = g.outputs[0];
  const outShape = shapes.get(output);
  if (!outShape) throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': output '${output}' is not produced by the node chain`);
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
      input: [valueInfo(input.name, input.shape, input.dtype === 'uint8' ? DataType.UINT8 : DataType.FLOAT)],
      output: [valueInfo(output, outShape)],
    },
  });
}

/** Writes the graph as an .onnx file (temp file + rename). Returns the byte size. */
export function saveOnnx(graph: Graph, file: string, options: OnnxExportOptions = {}): number {
  const bytes = encodeOnnx(graph, options);
  writeFileAtomic(file, bytes);
  return bytes.length;
}
