/**
 * Folds the input normalization a model was trained with, x = (raw / divisor - mean[c]) / std[c],
 * into its first layer, so the model takes raw uint8 bytes (camera pixels) directly and no
 * preprocessing runs per request. For the first Dense, y = W x + b becomes
 *   W'[j][i] = W[j][i] / (divisor * std[c(i)]),   b'[j] = b[j] - sum_i W[j][i] * mean[c(i)] / std[c(i)]
 * where c(i) is the channel of input element i (dim 1 of the input: the C of NCHW images, or every
 * feature of a flat [N, F] input when mean/std have F entries). The graph's input becomes dtype
 * 'uint8'. Fold before quantizing (the int8 weights are then quantized from the folded ones) and
 * after any training pass. Results equal the unfolded model on normalized floats up to float32
 * rounding of the folded weights.
 */
import { EdgeOptError } from '../errors';
import { cloneGraph, denseWeight, elementCount, type Graph, type GraphNode } from '../model/graph';
import type { Pass } from './pass';

export interface InputNormalizationOptions {
  /** Raw values are divided by this first (default 255: bytes to [0, 1]). */
  divisor?: number;
  /** Subtracted after the division: one value, or one per channel (input dim 1). Default 0. */
  mean?: number | readonly number[];
  /** Divides after the mean: one value, or one per channel. Default 1. */
  std?: number | readonly number[];
}

const VIEW_OPS = new Set(['Flatten', 'Reshape']);

function perChannel(name: string, v: number | readonly number[] | undefined, fallback: number, channels: number): number[] {
  const values = v === undefined ? [fallback] : typeof v === 'number' ? [v] : [...v];
  if (!(values.length === 1 || values.length === channels))
    throw new EdgeOptError(
      'E_ARGUMENT',
      `input normalization: ${name} needs 1 or ${channels} values (one per channel), got ${values.length}`,
    );
  if (!values.every((x) => Number.isFinite(x) && (name !== 'std' || x > 0)))
    throw new EdgeOptError(
      'E_ARGUMENT',
      `input normalization: ${name} must be finite${name === 'std' ? ' and > 0' : ''}, got [${values.join(', ')}]`,
    );
  return values.length === channels ? values : new Array<number>(channels).fill(values[0]);
}

/** The first compute node reached from the input through view-only ops, each tensor read by one node only. */
function firstLayer(g: Graph): GraphNode {
  let tensor = g.inputs[0].name;
  for (;;) {
    const readers = g.nodes.filter((n) => n.inputs.includes(tensor));
    if (readers.length !== 1)
      throw new EdgeOptError(
        'E_UNSUPPORTED_OP',
        `model '${g.name}': '${tensor}' is read by ${readers.length} nodes; the fold needs exactly one first layer`,
      );
    const node = readers[0];
    if (!VIEW_OPS.has(node.op)) return node;
    tensor = node.outputs[0];
  }
}

export function foldInputNormalization(graph: Graph, options: InputNormalizationOptions = {}): Graph {
  if (graph.inputs.length !== 1) throw new EdgeOptError('E_UNSUPPORTED_OP', `model '${graph.name}': the fold handles one-input models`);
  const input = graph.inputs[0];
  if (input.dtype === 'uint8') throw new EdgeOptError('E_ARGUMENT', `model '${graph.name}' already takes uint8 input`);
  const rest = input.shape.slice(1);
  if (!rest.length || rest.some((d) => d === null))
    throw new EdgeOptError('E_SHAPE', `model '${graph.name}': input '${input.name}' needs fixed dims after the batch`);
  const divisor = options.divisor ?? 255;
  if (!(Number.isFinite(divisor) && divisor > 0))
    throw new EdgeOptError('E_ARGUMENT', `input normalization: divisor must be > 0, got ${divisor}`);
  const channels = rest[0] as number;
  const inner = elementCount(rest.slice(1));
  const mean = perChannel('mean', options.mean, 0, channels);
  const std = perChannel('std', options.std, 1, channels);
  const g = cloneGraph(graph);
  const node = firstLayer(g);
  if (node.op === 'QDense')
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `model '${g.name}': first layer '${node.name}' is already quantized; fold the normalization before quantizing`,
    );
  if (node.op !== 'Dense')
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `model '${g.name}': the first layer '${node.name}' is ${node.op}; the fold needs a Dense there`,
    );
  const w = denseWeight(g, node);
  const [n, k] = w.shape as number[];
  if (k !== channels * inner)
    throw new EdgeOptError('E_SHAPE', `model '${g.name}': layer '${node.name}' reads ${k} values, the input has ${channels * inner}`);
  const src = w.data as Float32Array;
  const scaled = new Float32Array(src.length);
  const oldBias = node.inputs[2] ? (g.tensors[node.inputs[2]].data as Float32Array) : null;
  const bias = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let shift = oldBias ? oldBias[j] : 0;
    for (let i = 0; i < k; i++) {
      const c = Math.floor(i / inner);
      const x = src[j * k + i];
      scaled[j * k + i] = x / (divisor * std[c]);
      shift -= (x * mean[c]) / std[c];
    }
    bias[j] = shift;
  }
  g.tensors[w.name] = { ...w, data: scaled };
  const biasName = node.inputs[2] ?? `${node.name}.bias`;
  g.tensors[biasName] = { name: biasName, dtype: 'float32', shape: [n], data: bias };
  node.inputs = [node.inputs[0], node.inputs[1], biasName];
  g.inputs = [{ ...input, dtype: 'uint8' }];
  g.metadata.inputNormalization = JSON.stringify({ divisor, mean: options.mean ?? 0, std: options.std ?? 1 });
  return g;
}

/** The fold as an optimizer pass (put it first, before quantize). */
export function inputNormalization(options: InputNormalizationOptions = {}): Pass {
  return (graph) => foldInputNormalization(graph, options);
}
