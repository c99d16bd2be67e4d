/**
 * Lowers a graph to a chain of executable steps over [rows, features] float
 * buffers. Flatten/Reshape only change how a row is viewed, so they compile
 * to nothing but a width check.
 */
import type { CsrS8 } from '../backends/ts/sparse';
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode } from '../model/graph';
import { ACTIVATIONS, type Activation, denseBias, denseWeight, elementCount } from '../model/graph';
import { quantizeBias, quantizeMultiplier, type QuantizedMultiplier } from '../backends/ts/requantize';

/** attrs { activationQuant: 'static', inputScale, inputZeroPoint } of a QDense node (see graph.ts). */
export interface StaticInput {
  scale: number;
  zeroPoint: number;
}

export type TsActivation = Exclude<Activation, 'none' | 'relu'>;

/** Why a compiled model cannot run on the native core (it has TS-only steps), or undefined. */
export function nativeUnsupported(steps: Step[]): string | undefined {
  const s = steps.find((x) => x.kind === 'activation');
  return s && `node '${s.node}' has a ${s.fn} activation, which only the TypeScript backend runs`;
}

/** Largest K of an int8 layer whose int32 accumulators cannot overflow (255 * 128 * K < 2^31, with margin). */
export const MAX_INT8_K = 32768;

export type Step =
  | { kind: 'dense'; node: string; n: number; k: number; weight: Float32Array; bias: Float32Array | null; relu: boolean }
  | {
      kind: 'qdense';
      node: string;
      n: number;
      k: number;
      weight: Int8Array;
      scales: Float32Array;
      /** Asymmetric weights' zero point (0 when symmetric); scales per group of K when groupSize > 0. */
      zeroPoint: number;
      groupSize: number;
      bias: Float32Array | null;
      relu: boolean;
      /** Static (calibrated) per-tensor int8 input quantization; absent = dynamic per-row uint8. */
      input?: StaticInput;
      /** Static int8 output: integer requantization (TFLite) instead of the float epilogue. */
      output?: StaticOutput;
      /** The TS backend's sparse packing of `weight`, when the sparse policy chose it (runners.ts). */
      csr?: CsrS8;
    }
  | { kind: 'relu'; node: string }
  /** A Dense activation the native core lacks (from ONNX import): runs on the TS backend. */
  | { kind: 'activation'; node: string; fn: TsActivation }
  | { kind: 'softmax'; node: string };

export interface CompiledModel {
  /** Per-row input dims (the graph input's shape without the batch dim). */
  rowShape: number[];
  inputFeatures: number;
  outputFeatures: number;
  steps: Step[];
}

function unsupported(g: Graph, node: GraphNode, why: string): never {
  throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': node '${node.name}' (${node.op}) ${why}`);
}

function staticInput(g: Graph, node: GraphNode): StaticInput | undefined {
  const { activationQuant, inputScale, inputZeroPoint } = node.attrs;
  if (activationQuant !== 'static') return undefined;
  const scale = Math.fround(Number(inputScale));
  const zeroPoint = Number(inputZeroPoint);
  if (!(scale > 0 && Number.isFinite(scale)) || !Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127) {
    unsupported(
      g,
      node,
      `has static activation quantization with inputScale ${String(inputScale)} and inputZeroPoint ${String(inputZeroPoint)}; needs a finite scale > 0 and an integer zero point in -128..127`,
    );
  }
  return { scale, zeroPoint };
}

/** attrs { outputScale, outputZeroPoint } of a static QDense, with its precomputed requantization. */
export interface StaticOutput extends StaticInput {
  multipliers: QuantizedMultiplier[];
  biasQ: Int32Array;
}

function staticOutput(
  g: Graph,
  node: GraphNode,
  input: StaticInput | undefined,
  w: { scale: Float32Array; zeroPoint?: number; groupSize?: number },
  bias: Float32Array | null,
  n: number,
): StaticOutput | undefined {
  const { outputScale, outputZeroPoint } = node.attrs;
  if (outputScale === undefined) return undefined;
  const scale = Math.fround(Number(outputScale));
  const zeroPoint = Number(outputZeroPoint);
  if (!(scale > 0 && Number.isFinite(scale)) || !Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127) {
    unsupported(
      g,
      node,
      `has outputScale ${String(outputScale)} and outputZeroPoint ${String(outputZeroPoint)}; needs a finite scale > 0 and an integer zero point in -128..127`,
    );
  }
  if (!input || w.groupSize || w.zeroPoint)
    unsupported(g, node, 'has a static int8 output but not a static input with symmetric per-channel or per-tensor weights');
  const ws = (j: number) => w.scale[w.scale.length > 1 ? j : 0];
  return {
    scale,
    zeroPoint,
    multipliers: Array.from({ length: n }, (_, j) => quantizeMultiplier((input!.scale * ws(j)) / scale)),
    biasQ: Int32Array.from({ length: n }, (_, j) => (bias ? quantizeBias(bias[j], input!.scale, ws(j)) : 0)),
  };
}

export function compile(g: Graph): CompiledModel {
  if (g.inputs.length !== 1 || g.outputs.length !== 1) {
    throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': the engine runs single-input, single-output chains`);
  }
  const [input] = g.inputs;
  const rowShape = input.shape.slice(1).map((d, i) => {
    if (d === null || !(d > 0))
      throw new EdgeOptError('E_SHAPE', `model '${g.name}': input '${input.name}' dim ${i + 1} must be a fixed positive size`);
    return d;
  });
  const inputFeatures = elementCount(rowShape);
  let current = input.name;
  let width = inputFeatures;
  const steps: Step[] = [];
  for (const node of g.nodes) {
    if (node.inputs[0] !== current) unsupported(g, node, `does not follow the previous node; the engine runs chains only`);
    switch (node.op) {
      case 'Dense':
      case 'QDense': {
        const w = denseWeight(g, node);
        const [n, k] = w.shape as number[];
        if (k !== width) throw new EdgeOptError('E_SHAPE', `model '${g.name}': node '${node.name}' takes ${k} features but gets ${width}`);
        const act = (node.attrs.activation ?? 'none') as Activation;
        if (!ACTIVATIONS.includes(act))
          unsupported(g, node, `has unknown activation '${String(act)}' (supported: ${ACTIVATIONS.join(', ')})`);
        const relu = act === 'relu';
        const bias = denseBias(g, node);
        if (node.op === 'Dense') {
          steps.push({ kind: 'dense', node: node.name, n, k, weight: w.data as Float32Array, bias, relu });
        } else {
          if (k > MAX_INT8_K) unsupported(g, node, `has K=${k}; int8 layers are limited to K <= ${MAX_INT8_K}`);
          const { scale, zeroPoint = 0, groupSize = 0 } = w.quant!;
          const input = staticInput(g, node);
          const output = staticOutput(g, node, input, w.quant!, bias, n);
          steps.push({
            kind: 'qdense',
            node: node.name,
            n,
            k,
            weight: w.data as Int8Array,
            scales: scale,
            zeroPoint,
            groupSize,
            bias,
            relu,
            ...(input ? { input } : {}),
            ...(output ? { output } : {}),
          });
        }
        if (act !== 'none' && act !== 'relu') steps.push({ kind: 'activation', node: node.name, fn: act });
        width = n;
        break;
      }
      case 'Relu':
        steps.push({ kind: 'relu', node: node.name });
        break;
      case 'Softmax':
        if (node.attrs.axis !== undefined && node.attrs.axis !== -1 && node.attrs.axis !== 1)
          unsupported(g, node, 'is only supported on the last axis');
        steps.push({ kind: 'softmax', node: node.name });
        break;
      case 'Flatten':
        break;
      case 'Reshape': {
        const shape = node.attrs.shape as number[] | undefined;
        const rest = Array.isArray(shape) ? shape.slice(1) : [];
        const features = rest.reduce((a, d) => a * d, 1);
        if (!Array.isArray(shape) || (shape[0] !== -1 && shape[0] !== 0) || rest.some((d) => !(d > 0)) || features !== width) {
          unsupported(g, node, `reshapes to ${JSON.stringify(shape)}; only [-1, ${width}]-style flattening keeps rows intact`);
        }
        break;
      }
    }
    current = node.outputs[0];
  }
  if (current !== g.outputs[0])
    throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}': output '${g.outputs[0]}' is not the end of the chain`);
  if (!steps.some((s) => s.kind === 'dense' || s.kind === 'qdense')) {
    throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${g.name}' has no Dense or QDense layer`);
  }
  return { rowShape, inputFeatures, outputFeatures: width, steps };
}
