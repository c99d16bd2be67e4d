/**
 * Classifier calibration with virtual representations (CCVR, Luo et al. 2021): after the last
 * round, each client reports, per class, the count, mean and covariance of the features its data
 * gives under the final global model (the input of the final Dense layer); the server pools them
 * into one Gaussian per class, samples virtual features from them and retrains that Dense layer
 * alone on the samples. Label skew biases the classifier far more than the features (README,
 * "Federated learning"), and this corrects it without raw data. The statistics disclose more than
 * a weight update does (a class's mean feature), so it is off unless asked for and refused with dp.
 */
import { EdgeInferenceEngine } from '../engine/engine';
import type { Dataset } from '../data/dataset';
import { modelRows } from '../data/dataset';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';
import { cloneGraph } from '../model/graph';
import { mlp } from '../train/init';
import { seededRandom } from '../train/random';
import { train } from '../train/trainer';
import type { EncodedTensor } from './codec';

export interface CalibrateOptions {
  /** Virtual features drawn per class (default 500). */
  samplesPerClass?: number;
  /** Epochs of Adam over them (default 5: one epoch leaves the layer short of the objective, README). */
  epochs?: number;
  /** Adam's learning rate (default 0.003). */
  lr?: number;
  seed?: number;
}

/** The final Dense layer a calibration retrains: its tensors and sizes. */
export interface CalibrationHead {
  features: string;
  weight: string;
  bias: string | undefined;
  classes: number;
  dim: number;
}

/** The model's last node as a calibration head; E_ARGUMENT unless it is a float Dense layer with no activation. */
export function calibrationHead(model: Graph): CalibrationHead {
  const node = model.nodes[model.nodes.length - 1];
  const weight = node ? model.tensors[node.inputs[1]] : undefined;
  if (!node || node.op !== 'Dense' || (node.attrs.activation ?? 'none') !== 'none' || weight?.dtype !== 'float32')
    throw new EdgeOptError('E_ARGUMENT', `calibration: model '${model.name}' must end in a float32 Dense layer without activation`);
  const [classes, dim] = weight.shape as number[];
  return { features: node.inputs[0], weight: node.inputs[1], bias: node.inputs[2], classes, dim };
}

/** Per class: count, mean, covariance (population) of a client's features. */
export interface ClassStats {
  count: Float32Array; // [classes]
  mean: Float32Array; // [classes, dim]
  cov: Float32Array; // [classes, dim, dim]
}

export const STATS_NAMES = ['calibration.count', 'calibration.mean', 'calibration.cov'] as const;

/** The features (the head's input) of every row of `data` under `model`. */
function features(model: Graph, head: CalibrationHead, data: Dataset): Float32Array {
  const body: Graph = { ...model, nodes: model.nodes.slice(0, -1), outputs: [head.features] };
  const engine = new EdgeInferenceEngine({ device: 'cpu' });
  try {
    engine.loadModelSync('body', body);
    return engine.inferSync('body', modelRows(data, body)).data as Float32Array;
  } finally {
    engine.dispose();
  }
}

/** A client's statistics of its labelled rows under the global model. */
export function classStats(model: Graph, data: Dataset): ClassStats {
  const head = calibrationHead(model);
  const { classes: c, dim: d } = head;
  const f = features(model, head, data);
  const n = new Float64Array(c);
  const sum = new Float64Array(c * d);
  for (let i = 0; i < data.shape[0]; i++) {
    const y = data.labels![i];
    if (!(y >= 0 && y < c)) throw new EdgeOptError('E_VALUE', `calibration: label ${y} is outside 0..${c - 1}`);
    n[y]++;
    for (let a = 0; a < d; a++) sum[y * d + a] += f[i * d + a];
  }
  const mean = new Float64Array(c * d);
  for (let y = 0; y < c; y++) for (let a = 0; a < d; a++) mean[y * d + a] = n[y] ? sum[y * d + a] / n[y] : 0;
  const cov = new Float64Array(c * d * d);
  for (let i = 0; i < data.shape[0]; i++) {
    const y = data.labels![i];
    for (let a = 0; a < d; a++) {
      const da = f[i * d + a] - mean[y * d + a];
      for (let b = 0; b <= a; b++) cov[(y * d + a) * d + b] += da * (f[i * d + b] - mean[y * d + b]);
    }
  }
  for (let y = 0; y < c; y++)
    for (let a = 0; a < d; a++)
      for (let b = 0; b <= a; b++) {
        const v = n[y] ? cov[(y * d + a) * d + b] / n[y] : 0;
        cov[(y * d + a) * d + b] = cov[(y * d + b) * d + a] = v;
      }
  return { count: Float32Array.from(n), mean: Float32Array.from(mean), cov: Float32Array.from(cov) };
}

export function encodeStats(s: ClassStats, head: Pick<CalibrationHead, 'classes' | 'dim'>): EncodedTensor[] {
  const { classes: c, dim: d } = head;
  const shapes = [[c], [c, d], [c, d, d]];
  return [s.count, s.mean, s.cov].map((data, i) => ({ name: STATS_NAMES[i], shape: shapes[i], encoding: 'f32', parts: [data] }));
}

/** A client's statistics from a decoded frame, checked against the head's sizes (E_VALUE / E_SHAPE). */
export function decodeStats(tensors: Array<{ name: string; data: Float32Array }>, head: CalibrationHead): ClassStats {
  const { classes: c, dim: d } = head;
  const get = (name: string, size: number) => {
    const t = tensors.find((x) => x.name === name);
    if (!t || t.data.length !== size)
      throw new EdgeOptError('E_SHAPE', `calibration statistics: '${name}' must hold ${size} values, got ${t?.data.length ?? 'none'}`);
    for (const v of t.data) if (!Number.isFinite(v)) throw new EdgeOptError('E_VALUE', `calibration statistics: '${name}' is not finite`);
    return t.data;
  };
  if (tensors.length !== STATS_NAMES.length)
    throw new EdgeOptError(
      'E_SHAPE',
      `calibration statistics: expected ${STATS_NAMES.join(', ')}, got ${tensors.map((t) => t.name).join(', ')}`,
    );
  const s = { count: get(STATS_NAMES[0], c), mean: get(STATS_NAMES[1], c * d), cov: get(STATS_NAMES[2], c * d * d) };
  for (const v of s.count)
    if (!(v >= 0 && Number.isInteger(v))) throw new EdgeOptError('E_VALUE', `calibration statistics: a class count of ${v}`);
  return s;
}

/** The pooled per-class Gaussians of several clients' statistics (exactly the statistics of their union). */
export function poolStats(all: ClassStats[], head: Pick<CalibrationHead, 'classes' | 'dim'>): ClassStats {
  const { classes: c, dim: d } = head;
  const n = new Float64Array(c);
  const mean = new Float64Array(c * d);
  const second = new Float64Array(c * d * d); // sum of n · (cov + mean meanᵀ)
  for (const s of all)
    for (let y = 0; y < c; y++) {
      const k = s.count[y];
      if (!k) continue;
      n[y] += k;
      for (let a = 0; a < d; a++) {
        mean[y * d + a] += k * s.mean[y * d + a];
        for (let b = 0; b < d; b++) second[(y * d + a) * d + b] += k * (s.cov[(y * d + a) * d + b] + s.mean[y * d + a] * s.mean[y * d + b]);
      }
    }
  for (let y = 0; y < c; y++) {
    if (!n[y]) continue;
    for (let a = 0; a < d; a++) mean[y * d + a] /= n[y];
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++) second[(y * d + a) * d + b] = second[(y * d + a) * d + b] / n[y] - mean[y * d + a] * mean[y * d + b];
  }
  return { count: Float32Array.from(n), mean: Float32Array.from(mean), cov: Float32Array.from(second) };
}

/** Lower-triangular L with L Lᵀ = a + jitter·I (a d×d covariance; jitter keeps it positive definite). */
function cholesky(a: Float32Array, offset: number, d: number): Float64Array {
  const l = new Float64Array(d * d);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += a[offset + i * d + i];
  const jitter = 1e-6 * Math.max(trace / d, 1e-12);
  for (let i = 0; i < d; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[offset + i * d + j] + (i === j ? jitter : 0);
      for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = i === j ? Math.sqrt(Math.max(s, jitter)) : s / l[j * d + j];
    }
  return l;
}

/**
 * The model with its final Dense layer retrained on virtual features drawn from the pooled
 * per-class Gaussians (classes no client holds get none); the rest of the model is unchanged.
 */
export function calibrateHead(model: Graph, pooled: ClassStats, options: CalibrateOptions = {}): Graph {
  const head = calibrationHead(model);
  const { classes: c, dim: d } = head;
  const per = options.samplesPerClass ?? 500;
  if (!(Number.isInteger(per) && per >= 1 && per <= 100_000))
    throw new EdgeOptError('E_ARGUMENT', `calibration: samplesPerClass must be in 1..100000, got ${per}`);
  const present = [...pooled.count].map((k, y) => (k > 0 ? y : -1)).filter((y) => y >= 0);
  if (!present.length) throw new EdgeOptError('E_STATE', 'calibration: no client reported any labelled rows');
  const random = seededRandom(options.seed ?? 1);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const x = new Float32Array(present.length * per * d);
  const labels = new Int32Array(present.length * per);
  const z = new Float64Array(d);
  present.forEach((y, p) => {
    const l = cholesky(pooled.cov, y * d * d, d);
    for (let s = 0; s < per; s++) {
      const row = (p * per + s) * d;
      for (let a = 0; a < d; a++) z[a] = gauss();
      for (let a = 0; a < d; a++) {
        let v = pooled.mean[y * d + a];
        for (let k = 0; k <= a; k++) v += l[a * d + k] * z[k];
        x[row + a] = v;
      }
      labels[p * per + s] = y;
    }
  });
  const dense = mlp([d, c], { seed: options.seed ?? 1 });
  dense.tensors['fc1.weight'] = {
    ...dense.tensors['fc1.weight'],
    data: Float32Array.from(model.tensors[head.weight].data as Float32Array),
  };
  const bias = head.bias ? (model.tensors[head.bias].data as Float32Array) : new Float32Array(c);
  dense.tensors['fc1.bias'] = { ...dense.tensors['fc1.bias'], data: Float32Array.from(bias) };
  const trained = train(
    dense,
    { data: x, shape: [labels.length, d], labels },
    {
      epochs: options.epochs ?? 5,
      optimizer: 'adam',
      lr: options.lr ?? 0.003,
      seed: options.seed ?? 1,
    },
  ).model;
  const out = cloneGraph(model);
  out.tensors[head.weight] = { ...out.tensors[head.weight], data: Float32Array.from(trained.tensors['fc1.weight'].data as Float32Array) };
  if (head.bias)
    out.tensors[head.bias] = { ...out.tensors[head.bias], data: Float32Array.from(trained.tensors['fc1.bias'].data as Float32Array) };
  return out;
}
