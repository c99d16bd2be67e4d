/**
 * The data shipped with the package: the PyTorch-trained MNIST MLP
 * mlp-784-128-10 (weights as .npy, PyTorch layout), the CNN mobilenet-mini-1x28x28
 * (ONNX) and the 2000-digit MNIST test split. `npm start` runs on these.
 */
import * as path from 'node:path';
import { packageRoot } from '../backends/native/addon';
import { denseGraph, type DenseLayerSpec } from '../model/build';
import { loadOnnx } from '../model/onnx/import';
import type { Graph } from '../model/graph';
import { loadImageFolder, npyPath, type Dataset } from './dataset';
import { readNpy } from './npy';
import { EdgeOptError } from '../errors';

export const BUNDLED_DIR = path.join(packageRoot, 'data');
export const DEFAULT_MODEL_DIR = path.join(BUNDLED_DIR, 'models', 'mlp-784-128-10');
export const MNIST_DIR = path.join(BUNDLED_DIR, 'mnist');

/**
 * A stack of Linear layers saved as fc1.weight.npy, fc1.bias.npy, fc2.weight.npy, ...
 * ([out, in] float32, PyTorch's layout), with ReLU between layers and none after the last.
 */
export function loadLinearStack(dir: string, name = path.basename(dir)): Graph {
  const layers: DenseLayerSpec[] = [];
  for (let i = 1; ; i++) {
    let weightPath: string;
    try {
      weightPath = npyPath(dir, `fc${i}.weight`);
    } catch {
      break;
    }
    const w = readNpy(weightPath);
    if (!(w.data instanceof Float32Array) || w.shape.length !== 2) {
      throw new EdgeOptError('E_FORMAT', `${weightPath}: expected a float32 [out, in] matrix`);
    }
    const b = readNpy(npyPath(dir, `fc${i}.bias`));
    if (!(b.data instanceof Float32Array)) throw new EdgeOptError('E_FORMAT', `fc${i}.bias must be float32`);
    layers.push({ name: `fc${i}`, weight: w.data, outFeatures: w.shape[0], inFeatures: w.shape[1], bias: b.data, activation: 'relu' });
  }
  if (!layers.length) throw new EdgeOptError('E_NOT_FOUND', `no fc1.weight.npy in ${dir}`);
  layers[layers.length - 1].activation = 'none';
  return denseGraph(name, layers);
}

export function defaultModel(): Graph {
  return loadLinearStack(DEFAULT_MODEL_DIR, 'mlp-784-128-10');
}

export const CNN_MODEL_FILE = path.join(BUNDLED_DIR, 'models', 'mobilenet-mini-1x28x28', 'model.onnx');

/**
 * The bundled CNN: mobilenet-mini-1x28x28 (inverted residual blocks, ReLU6 and HardSwish,
 * trained in PyTorch on the bundled MNIST digits, exported to ONNX opset 13).
 */
export function defaultCnn(): Graph {
  const g = loadOnnx(CNN_MODEL_FILE);
  return { ...g, name: 'mobilenet-mini-1x28x28' };
}

/** The 2000-row MNIST test split, flattened to [2000, 784] in [0, 1]. */
export function mnistTest(): Dataset {
  return flatSplit('test');
}

/** The 8000-row MNIST train split, flattened to [8000, 784] in [0, 1] (for training and federated simulation). */
export function mnistTrain(): Dataset {
  return flatSplit('train');
}

/** Decoded splits, read once per process (gunzip + .npy decode costs about a second). */
const splits = new Map<'train' | 'test', Dataset>();

/** A bundled MNIST split with every image flattened to one row: a fresh copy, so callers may modify it. */
function flatSplit(split: 'train' | 'test'): Dataset {
  let ds = splits.get(split);
  if (!ds) {
    const loaded = loadImageFolder(MNIST_DIR, split);
    ds = { ...loaded, shape: [loaded.shape[0], loaded.data.length / loaded.shape[0]] };
    splits.set(split, ds);
  }
  return { ...ds, data: ds.data.slice(), shape: [...ds.shape], ...(ds.labels ? { labels: ds.labels.slice() } : {}) };
}
