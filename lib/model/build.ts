/**
 * Building graphs: from a list of dense layers (PyTorch layout) and from the
 * seed's plain object form.
 */
import { EdgeOptError } from '../errors';
import type { Activation, Graph, GraphNode, Tensor } from './graph';
import { validateGraph } from './graph';

export interface DenseLayerSpec {
  /** Row-major [out][in] (PyTorch's nn.Linear layout). */
  weight: Float32Array;
  outFeatures: number;
  inFeatures: number;
  bias?: Float32Array | null;
  activation?: Activation;
  name?: string;
}

/** A chain of Dense layers; softmax appends a Softmax node at the end. */
export function denseGraph(name: string, layers: DenseLayerSpec[], options: { softmax?: boolean } = {}): Graph {
  if (!layers.length) throw new EdgeOptError('E_ARGUMENT', `model '${name}' needs at least one layer`);
  const tensors: Record<string, Tensor> = {};
  const nodes: GraphNode[] = [];
  let x = 'input';
  layers.forEach((l, i) => {
    const base = l.name ?? `fc${i + 1}`;
    if (l.weight.length !== l.outFeatures * l.inFeatures) {
      throw new EdgeOptError('E_SHAPE', `layer '${base}': weight has ${l.weight.length} values for [${l.outFeatures}, ${l.inFeatures}]`);
    }
    if (i > 0 && l.inFeatures !== layers[i - 1].outFeatures) {
      throw new EdgeOptError(
        'E_SHAPE',
        `layer '${base}' takes ${l.inFeatures} inputs but the previous layer gives ${layers[i - 1].outFeatures}`,
      );
    }
    tensors[`${base}.weight`] = { name: `${base}.weight`, dtype: 'float32', shape: [l.outFeatures, l.inFeatures], data: l.weight };
    const inputs = [x, `${base}.weight`];
    if (l.bias) {
      tensors[`${base}.bias`] = { name: `${base}.bias`, dtype: 'float32', shape: [l.outFeatures], data: l.bias };
      inputs.push(`${base}.bias`);
    }
    const out = `${base}.out`;
    nodes.push({ name: base, op: 'Dense', inputs, outputs: [out], attrs: { activation: l.activation ?? 'none' } });
    x = out;
  });
  if (options.softmax) {
    nodes.push({ name: 'softmax', op: 'Softmax', inputs: [x], outputs: ['probabilities'], attrs: {} });
    x = 'probabilities';
  }
  return validateGraph({
    name,
    inputs: [{ name: 'input', shape: [null, layers[0].inFeatures] }],
    outputs: [x],
    tensors,
    nodes,
    metadata: {},
  });
}

/** The seed's model object: weights W[in][out] (output = input · W), ReLU after every layer by default. */
export interface SeedModel {
  architecture: string;
  weights: Array<number[][] | { data: Float32Array | number[]; shape: [number, number] }>;
  biases?: Array<number[] | Float32Array>;
  /** Per layer, case-insensitive: 'relu' (default), 'sigmoid', 'tanh', 'softmax' (last layer only), 'linear' or 'none'. */
  activations?: string[];
}

/** An object in the seed's form: `weights` is an array (architecture is checked by fromSeed, with a clear error). */
export function isSeedModel(x: unknown): x is SeedModel {
  const s = x as SeedModel;
  return !!s && typeof s === 'object' && Array.isArray(s.weights) && !('nodes' in s);
}

const SEED_ACTIVATIONS: Record<string, Activation | 'softmax'> = {
  relu: 'relu',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  linear: 'none',
  none: 'none',
};

function seedActivation(value: unknown, layer: number): Activation | 'softmax' {
  const act = typeof value === 'string' ? SEED_ACTIVATIONS[value.toLowerCase()] : undefined;
  if (!act) {
    throw new EdgeOptError(
      'E_VALUE',
      `seed model activations[${layer}] is ${JSON.stringify(value)}; use one of ${Object.keys(SEED_ACTIVATIONS).join(', ')} (any case)`,
    );
  }
  return act;
}

/** [in][out] values (nested arrays or flat + shape) -> Float32Array [out][in]. */
function transposedWeight(w: SeedModel['weights'][number], layer: number): { data: Float32Array; rows: number; cols: number } {
  let get: (i: number, o: number) => number;
  let nIn: number;
  let nOut: number;
  if (Array.isArray(w)) {
    nIn = w.length;
    nOut = Array.isArray(w[0]) ? w[0].length : 0;
    if (!nIn || !nOut || w.some((row) => !Array.isArray(row) || row.length !== nOut)) {
      throw new EdgeOptError('E_SHAPE', `seed model weights[${layer}] must be a non-empty rectangular number[][] of shape [in][out]`);
    }
    get = (i, o) => w[i][o];
  } else {
    const shape = w?.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || !(shape[0] > 0 && shape[1] > 0)) {
      throw new EdgeOptError('E_SHAPE', `seed model weights[${layer}].shape must be [in, out]`);
    }
    [nIn, nOut] = shape;
    if (!w.data || w.data.length !== nIn * nOut) {
      throw new EdgeOptError('E_SHAPE', `seed model weights[${layer}] has ${w.data?.length} values for shape [${nIn}, ${nOut}]`);
    }
    get = (i, o) => w.data[i * nOut + o];
  }
  const data = new Float32Array(nIn * nOut);
  for (let o = 0; o < nOut; o++) {
    for (let i = 0; i < nIn; i++) {
      const v = get(i, o);
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new EdgeOptError('E_VALUE', `seed model weights[${layer}][${i}][${o}] is ${v}, not a finite number`);
      }
      data[o * nIn + i] = v;
    }
  }
  return { data, rows: nOut, cols: nIn };
}

/** Output width of seed layer i ([in][out] nested arrays or { shape: [in, out] }). */
function seedOutputs(seed: SeedModel, i: number): number {
  const w = seed.weights[i];
  return Array.isArray(w) ? (w[0]?.length ?? 0) : (w?.shape?.[1] ?? 0);
}

export function fromSeed(seed: SeedModel): Graph {
  if (typeof seed.architecture !== 'string' || !seed.architecture) {
    throw new EdgeOptError(
      'E_ARGUMENT',
      `seed model architecture must be a non-empty string (the model's name), got ${typeof seed.architecture}`,
    );
  }
  const count = seed.weights.length;
  for (const [key, list] of [
    ['activations', seed.activations],
    ['biases', seed.biases],
  ] as const) {
    if (list !== undefined && !Array.isArray(list)) throw new EdgeOptError('E_ARGUMENT', `seed model ${key} must be an array`);
    if (list && list.length > count) {
      throw new EdgeOptError('E_SHAPE', `seed model has ${list.length} ${key} entries for ${count} weight matrices`);
    }
  }
  const acts = seed.activations ?? [];
  const last = count - 1;
  const layers: DenseLayerSpec[] = seed.weights.map((w, i) => {
    const { data, rows, cols } = transposedWeight(w, i);
    const b = seed.biases?.[i];
    if (b && b.length !== rows) {
      const hint = b.length === cols ? ` (it matches the ${cols} inputs: seed weights are [in][out], are weights[${i}] transposed?)` : '';
      throw new EdgeOptError('E_SHAPE', `seed model biases[${i}] has ${b.length} values for ${rows} outputs${hint}`);
    }
    if (i > 0 && cols !== seedOutputs(seed, i - 1)) {
      throw new EdgeOptError(
        'E_SHAPE',
        `seed model weights[${i}] is [${cols}][${rows}] but weights[${i - 1}] gives ${seedOutputs(seed, i - 1)} outputs (weights are [in][out]; is one transposed?)`,
      );
    }
    const act = acts[i] === undefined ? 'relu' : seedActivation(acts[i], i);
    if (act === 'softmax' && i !== last)
      throw new EdgeOptError('E_VALUE', `seed model activations[${i}]: softmax is only supported after the last layer`);
    return {
      weight: data,
      outFeatures: rows,
      inFeatures: cols,
      bias: b ? Float32Array.from(b) : null,
      activation: act === 'softmax' ? 'none' : act,
    };
  });
  return denseGraph(seed.architecture, layers, { softmax: acts[last] === 'softmax' });
}
