/**
 * State of one ONNX import: what every ONNX value is (a constant, or an
 * activation with its logical shape, batch first), the IR nodes emitted so
 * far, and the fusion of bias adds and activations into the Dense node that
 * produced their input.
 */
import { EdgeOptError } from '../../errors';
import type { Activation, GraphNode, QuantParams, Tensor } from '../graph';
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
  | {
      kind: 'act';
      /** The IR tensor holding it (aliases such as Identity share their source's). */
      name: string;
      /** Logical ONNX shape, batch first (null: symbolic); the IR sees [batch, product of the rest]. */
      shape: Array<number | null>;
      /** Set when this is the un-activated output of this Dense and nothing else reads it: a bias add or activation can fold into it. */
      dense?: GraphNode;
    }
  /**
   * The integer-MatMul pattern (DynamicQuantizeLinear -> MatMulInteger -> Cast
   * -> Mul(x_scale * w_scale)), which becomes one QDense once complete.
   */
  | { kind: 'dynamicQuant'; part: 'q' | 'scale' | 'zeroPoint'; src: ActValue }
  | { kind: 'integerProduct'; node: GraphNode; shape: Array<number | null>; cast: boolean; zeroPoint: number }
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

export class ImportContext {
  readonly values = new Map<string, Value>();
  readonly nodes: GraphNode[] = [];
  readonly tensors: Record<string, Tensor> = {};
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
        `input ${i} ('${node.input[i]}') must be a float tensor computed from the model input (it is ${v.kind === 'const' ? 'a constant' : 'part of an unfinished DynamicQuantizeLinear/MatMulInteger pattern'})`,
      );
    return v;
  }

  constant(node: NodeProto, i: number, role: string): ConstValue {
    const v = this.value(node, i);
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

  emit(node: GraphNode): GraphNode {
    this.nodes.push(node);
    return node;
  }

  addTensor(t: Tensor): string {
    const name = this.uniqueName(t.name);
    this.tensors[name] = { ...t, name };
    return name;
  }

  /** A unique IR node name: the ONNX name without torch's leading '/' and with '.' for '/', or op_index. */
  nodeName(node: NodeProto): string {
    return this.uniqueName((node.name || `${node.op_type}_${this.index}`).replace(/^\/+/, '').replace(/\//g, '.'));
  }

  /** Keeps `name` free for activations (ONNX value names are used as IR tensor names). */
  reserve(name: string): void {
    this.names.add(name);
  }

  /** Sets output 0 to a new activation tensor of that name; `dense` is kept only if exactly one node reads it. */
  setAct(node: NodeProto, shape: Array<number | null>, dense?: GraphNode, name = node.output[0]): void {
    const exclusive = this.uses.get(node.output[0]) === 1;
    this.set(node, { kind: 'act', name, shape, dense: exclusive ? dense : undefined });
  }

  /** Output 0 is the same value as `v` (Identity, Dropout, no-op reshapes). */
  alias(node: NodeProto, v: Value): void {
    if (v.kind === 'act') this.setAct(node, v.shape, v.dense, v.name);
    else this.set(node, v);
  }

  /** Emits a Dense (float weight) or QDense (int8 weight) reading activation `input`. */
  emitDense(
    onnx: NodeProto,
    nodeName: string,
    input: ActValue,
    weight: DenseWeight,
    bias: Float32Array | null,
    outShape: Array<number | null>,
  ): void {
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
    this.setAct(onnx, outShape, node);
  }

  /** The Dense that `v` is the sole, un-activated output of, if any. */
  fusableDense(v: ActValue): GraphNode | undefined {
    return v.dense && v.dense.attrs.activation === 'none' ? v.dense : undefined;
  }

  /** Makes `dense` produce `onnx`'s output instead (the folded node disappears). */
  private retarget(dense: GraphNode, onnx: NodeProto, shape: Array<number | null>): void {
    dense.outputs = [onnx.output[0]];
    this.setAct(onnx, shape, dense);
  }

  setActivation(dense: GraphNode, onnx: NodeProto, activation: Activation, shape: Array<number | null>): void {
    dense.attrs.activation = activation;
    this.retarget(dense, onnx, shape);
  }

  /** Adds `extra` to the bias of `dense` (creating one if it has none). */
  addBias(dense: GraphNode, onnx: NodeProto, extra: Float32Array, shape: Array<number | null>): void {
    const biasName = dense.inputs[2];
    if (biasName) {
      const old = this.tensors[biasName].data as Float32Array;
      this.tensors[biasName] = { ...this.tensors[biasName], data: Float32Array.from(extra, (v, i) => v + old[i]) };
    } else {
      dense.inputs.push(this.addTensor({ name: `${dense.name}.bias`, dtype: 'float32', shape: [extra.length], data: extra }));
    }
    this.retarget(dense, onnx, shape);
  }
}
