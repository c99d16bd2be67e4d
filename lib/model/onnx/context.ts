/**
 * State of one ONNX import: what every ONNX value is (a constant, a symbolic
 * shape vector, or an activation with its per-image shape), the IR nodes
 * emitted so far, and the fusion of bias adds and activations into the Dense
 * node that produced their input.
 */
import { EdgeOptError } from '../../errors';
import type { Activation, AttrValue, Graph, GraphNode, QuantParams, Tensor } from '../graph';
import type { OpType } from '../op-schema';
import { nodeShapes, onnxShape, type ValueShape } from '../shapes';
import { AttrType, type AttributeProto, type NodeProto, toNumber } from './proto';
import { type ConstTensor, decodeTensor } from './tensor';

/** Int8 weights seen through DequantizeLinear (one zero point for all channels): kept as int8 when a Dense uses them. */
export interface QuantizedConst {
  q: Int8Array;
  scale: Float32Array;
  zeroPoint: number;
  /** The axis the scales run along (normalized, >= 0); irrelevant for one scale. */
  axis: number;
}

export type Value =
  | { kind: 'const'; t: ConstTensor; quant?: QuantizedConst }
  /** A 1-D int64 vector (or a scalar) computed from shapes (Shape, Gather, Concat...): known entries, null for the batch size. */
  | { kind: 'shape'; dims: Array<number | null>; scalar?: boolean }
  | {
      kind: 'act';
      /** The IR tensor holding it (aliases such as Identity share their source's). */
      name: string;
      /** Per-image shape (shapes.ts). */
      shape: ValueShape;
      /** Set when this is the un-activated output of this Dense/Conv and nothing else reads it: a bias add, BatchNormalization or activation can fold into it. */
      dense?: GraphNode;
    }
  /**
   * The integer-MatMul pattern (DynamicQuantizeLinear -> MatMulInteger -> Cast
   * -> Mul(x_scale * w_scale)), which becomes one QDense once complete.
   */
  | { kind: 'dynamicQuant'; part: 'q' | 'scale' | 'zeroPoint'; src: ActValue }
  | { kind: 'integerProduct'; node: GraphNode; shape: ValueShape; cast: boolean; zeroPoint: number }
  | { kind: 'productScale'; weightScale: Float32Array };

export type ActValue = Extract<Value, { kind: 'act' }>;
export type ConstValue = Extract<Value, { kind: 'const' }>;

/** A Dense weight in IR layout [out, in]: float, or int8 with its scales. */
export type DenseWeight =
  { n: number; k: number; w: Float32Array } | { n: number; k: number; q: Int8Array; scale: Float32Array; zeroPoint: number };

/** IR quantization parameters of int8 weights with these scales and zero point. */
export function int8Quant(scale: Float32Array, zeroPoint: number): QuantParams {
  return zeroPoint ? { bits: 8, scheme: 'asymmetric', axis: 0, scale, zeroPoint } : { bits: 8, scheme: 'symmetric', axis: 0, scale };
}

export const describeShape = (s: ValueShape): string => `[${onnxShape(s).map((d) => d ?? 'N')}]`;

export class ImportContext {
  readonly values = new Map<string, Value>();
  readonly nodes: GraphNode[] = [];
  readonly tensors: Record<string, Tensor> = {};
  /** Per-image shapes of every IR activation emitted so far. */
  readonly shapes = new Map<string, ValueShape>();
  /** How many nodes (and graph outputs) read each value: a Dense output read once can absorb what follows. */
  readonly uses = new Map<string, number>();
  private readonly names = new Set<string>();
  /** Position of the node being imported (names unnamed nodes). */
  index = 0;
  /** The graph input, when it is uint8: its Cast to float is the identity (the engine computes on 0..255 as floats). */
  uint8Input?: string;

  constructor(
    readonly model: string,
    readonly opset: number,
  ) {}

  fail(node: NodeProto, why: string, code: 'E_UNSUPPORTED_OP' | 'E_FORMAT' | 'E_SHAPE' | 'E_DTYPE' = 'E_UNSUPPORTED_OP'): never {
    throw new EdgeOptError(code, `${this.model}: node '${node.name}' (${node.op_type}) ${why}`);
  }

  value(node: NodeProto, i: number): Value {
    const name = node.input[i];
    const v = name ? this.values.get(name) : undefined;
    if (!v)
      this.fail(
        node,
        `reads '${name ?? `input ${i}`}', which is neither a graph input, an initializer nor an earlier node's output`,
        'E_FORMAT',
      );
    return v;
  }

  hasInput(node: NodeProto, i: number): boolean {
    return !!node.input[i];
  }

  act(node: NodeProto, i: number): ActValue {
    const v = this.value(node, i);
    if (v.kind !== 'act')
      this.fail(
        node,
        `input ${i} ('${node.input[i]}') must be a float tensor computed from the model input (it is ${v.kind === 'const' || v.kind === 'shape' ? 'a constant' : 'part of an unfinished DynamicQuantizeLinear/MatMulInteger pattern'})`,
      );
    return v;
  }

  constant(node: NodeProto, i: number, role: string): ConstValue {
    const v = this.value(node, i);
    if (v.kind === 'shape' && v.dims.every((d) => d !== null))
      return { kind: 'const', t: { dims: [v.dims.length], dataType: 7, data: Float64Array.from(v.dims as number[]) } };
    if (v.kind !== 'const')
      this.fail(node, `needs a constant ${role} (input ${i}, '${node.input[i]}'); a computed ${role} is not supported`);
    return v;
  }

  set(node: NodeProto, v: Value, output = 0): void {
    const name = node.output[output];
    if (!name) this.fail(node, `has no output ${output}`, 'E_FORMAT');
    this.values.set(name, v);
  }

  attr(node: NodeProto, name: string): AttributeProto | undefined {
    return node.attribute.find((a) => a.name === name);
  }

  intAttr(node: NodeProto, name: string, dflt: number): number {
    const a = this.attr(node, name);
    return a ? toNumber(a.i) : dflt;
  }

  floatAttr(node: NodeProto, name: string, dflt: number): number {
    const a = this.attr(node, name);
    return a ? a.f : dflt;
  }

  stringAttr(node: NodeProto, name: string, dflt: string): string {
    const a = this.attr(node, name);
    return a ? new TextDecoder().decode(a.s) : dflt;
  }

  intsAttr(node: NodeProto, name: string): number[] | undefined {
    const a = this.attr(node, name);
    return a ? a.ints.map((v) => toNumber(v)) : undefined;
  }

  tensorAttr(node: NodeProto, a: AttributeProto): ConstTensor {
    if (a.type !== AttrType.TENSOR || !a.t) this.fail(node, `attribute '${a.name}' must be a tensor`, 'E_FORMAT');
    return decodeTensor(a.t, `${this.model}: node '${node.name}' attribute '${a.name}'`);
  }

  /** A unique IR name derived from the ONNX node name (or op and index when it has none). */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 2; this.names.has(name) || name in this.tensors; i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** The graph built so far (for shape inference). */
  private graph(): Graph {
    return { name: this.model, inputs: [], outputs: [], tensors: this.tensors, nodes: this.nodes, metadata: {} };
  }

  /** Appends an IR node, infers its output shapes (errors name the node) and records them. */
  emit(node: GraphNode): GraphNode {
    const shapes = nodeShapes(this.graph(), node, this.shapes);
    node.outputs.forEach((o, i) => this.shapes.set(o, shapes[i]));
    this.nodes.push(node);
    return node;
  }

  /**
   * Emits an IR op reading activations/initializers `inputs` and sets the ONNX
   * node's outputs to its results. `fusable` marks output 0 as the un-activated
   * result of a Dense/Conv that a following bias add, BatchNormalization or
   * activation may fold into.
   */
  emitOp(onnx: NodeProto, op: OpType, inputs: string[], attrs: Record<string, AttrValue> = {}, fusable = false): GraphNode {
    const outputs = onnx.output.filter((o, i) => i === 0 || o);
    const node = this.emit({ name: this.nodeName(onnx), op, inputs, outputs, attrs });
    outputs.forEach((o, i) => this.setAct(onnx, this.shapes.get(o)!, fusable && i === 0 ? node : undefined, o, i));
    return node;
  }

  addTensor(t: Tensor): string {
    const name = this.uniqueName(t.name);
    this.tensors[name] = { ...t, name };
    return name;
  }

  /** A float32 initializer for a constant input of an IR op. */
  floatInit(base: string, t: ConstTensor): string {
    return this.addTensor({
      name: base,
      dtype: 'float32',
      shape: t.dims,
      data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data),
    });
  }

  /** A unique IR node name: the ONNX name without torch's leading '/' and with '.' for '/', or op_index. */
  nodeName(node: NodeProto): string {
    return this.uniqueName((node.name || `${node.op_type}_${this.index}`).replace(/^\/+/, '').replace(/\//g, '.'));
  }

  /** Keeps `name` free for activations (ONNX value names are used as IR tensor names). */
  reserve(name: string): void {
    this.names.add(name);
  }

  /** Sets output `output` to an activation; `dense` is kept only if exactly one node reads it. */
  setAct(node: NodeProto, shape: ValueShape, dense?: GraphNode, name = node.output[0], output = 0): void {
    const exclusive = this.uses.get(node.output[output]) === 1;
    this.set(node, { kind: 'act', name, shape, dense: exclusive ? dense : undefined }, output);
  }

  /** Output 0 is the same value as `v` (Identity, Dropout, no-op reshapes). */
  alias(node: NodeProto, v: Value): void {
    if (v.kind === 'act') this.setAct(node, v.shape, v.dense, v.name);
    else this.set(node, v);
  }

  /** Emits a Dense (float weight) or QDense (int8 weight) reading activation `input`. */
  emitDense(onnx: NodeProto, nodeName: string, input: ActValue, weight: DenseWeight, bias: Float32Array | null): void {
    const wName = this.addTensor(
      'w' in weight
        ? { name: `${nodeName}.weight`, dtype: 'float32', shape: [weight.n, weight.k], data: weight.w }
        : {
            name: `${nodeName}.weight`,
            dtype: 'int8',
            shape: [weight.n, weight.k],
            data: weight.q,
            quant: int8Quant(weight.scale, weight.zeroPoint),
          },
    );
    const inputs = [input.name, wName];
    if (bias) inputs.push(this.addTensor({ name: `${nodeName}.bias`, dtype: 'float32', shape: [weight.n], data: bias }));
    const attrs: GraphNode['attrs'] = 'w' in weight ? { activation: 'none' } : { activation: 'none', activationQuant: 'dynamic' };
    const node = this.emit({ name: nodeName, op: 'w' in weight ? 'Dense' : 'QDense', inputs, outputs: [onnx.output[0]], attrs });
    this.setAct(onnx, this.shapes.get(onnx.output[0])!, node);
  }

  /** The Dense that `v` is the sole, un-activated output of, if any. */
  fusableDense(v: ActValue): GraphNode | undefined {
    return v.dense && (v.dense.op === 'Dense' || v.dense.op === 'QDense') && v.dense.attrs.activation === 'none' ? v.dense : undefined;
  }

  /** The Dense or Conv that `v` is the sole, un-activated output of (a BatchNormalization folds into its weights). */
  fusableLinear(v: ActValue): GraphNode | undefined {
    return v.dense?.op === 'Conv' ? v.dense : v.dense?.op === 'Dense' && v.dense.attrs.activation === 'none' ? v.dense : undefined;
  }

  /** Makes `dense` produce `onnx`'s output instead (the folded node disappears). */
  retarget(dense: GraphNode, onnx: NodeProto): void {
    const shape = this.shapes.get(dense.outputs[0])!;
    this.shapes.delete(dense.outputs[0]);
    dense.outputs = [onnx.output[0]];
    this.shapes.set(onnx.output[0], shape);
    this.setAct(onnx, shape, dense);
  }

  setActivation(dense: GraphNode, onnx: NodeProto, activation: Activation): void {
    dense.attrs.activation = activation;
    this.retarget(dense, onnx);
  }

  /** Adds `extra` to the bias of `dense` (creating one if it has none). */
  addBias(dense: GraphNode, onnx: NodeProto, extra: Float32Array): void {
    const biasName = dense.inputs[2];
    if (biasName) {
      const old = this.tensors[biasName].data as Float32Array;
      this.tensors[biasName] = { ...this.tensors[biasName], data: Float32Array.from(extra, (v, i) => v + old[i]) };
    } else {
      dense.inputs.push(this.addTensor({ name: `${dense.name}.bias`, dtype: 'float32', shape: [extra.length], data: extra }));
    }
    this.retarget(dense, onnx);
  }
}
