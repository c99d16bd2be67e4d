/**
 * Labelled data for calibration, evaluation and training: float32 rows plus
 * optional integer labels, loaded from .npy files (uint8 images are scaled to
 * [0, 1], as the bundled models expect).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';
import { readNpy, type Npy } from './npy';

export interface Dataset {
  /** Row-major float32 values, shape[0] rows. */
  data: Float32Array;
  shape: number[];
  labels?: Int32Array;
  /** The bytes `data` was scaled from, when the images were uint8 (what a uint8-input model reads). */
  raw?: Uint8Array;
}

/**
 * The rows as a model reads them: for a model whose input is uint8 (normalization folded into its
 * first layer, lib/optimizer/input-normalization.ts) the raw bytes as float32 values 0..255, else `data`.
 */
export function modelRows(ds: Dataset, graph: Graph): Float32Array {
  if (graph.inputs[0]?.dtype !== 'uint8') return ds.data;
  if (!ds.raw)
    throw new EdgeOptError(
      'E_DTYPE',
      `model '${graph.name}' takes raw uint8 images, and this dataset has no raw bytes (load uint8 .npy images with loadDataset)`,
    );
  return Float32Array.from(ds.raw);
}

/** uint8 -> x / 255 (float32); float arrays are taken as they are. */
export function toFloat32(npy: Npy, source: string): Float32Array {
  const d = npy.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Uint8Array) return Float32Array.from(d, (v) => v / 255);
  if (d instanceof Float64Array) return Float32Array.from(d);
  throw new EdgeOptError('E_DTYPE', `${source}: data must be float32, float64 or uint8 images, got '${npy.dtype}'`);
}

export function toLabels(npy: Npy, source: string): Int32Array {
  const d = npy.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Int32Array.from(d, (v) => Number(v));
  if (d instanceof Float32Array || d instanceof Float64Array) throw new EdgeOptError('E_DTYPE', `${source}: labels must be integers, got '${npy.dtype}'`);
  return Int32Array.from(d as ArrayLike<number>);
}

/** Loads images (and labels, if given) from .npy / .npy.gz files. */
export function loadDataset(imagesPath: string, labelsPath?: string): Dataset {
  const images = readNpy(imagesPath);
  if (images.shape.length < 1) throw new EdgeOptError('E_SHAPE', `${imagesPath}: expected an array with a batch dimension`);
  const ds: Dataset = { data: toFloat32(images, imagesPath), shape: images.shape };
  if (images.data instanceof Uint8Array) ds.raw = images.data;
  if (labelsPath) {
    const labels = toLabels(readNpy(labelsPath), labelsPath);
    if (labels.length !== images.shape[0]) {
      throw new EdgeOptError('E_SHAPE', `${labelsPath} has ${labels.length} labels for ${images.shape[0]} rows of ${imagesPath}`);
    }
    ds.labels = labels;
  }
  return ds;
}

/** The first file that exists among `<base>.npy` and `<base>.npy.gz`. */
export function npyPath(dir: string, base: string): string {
  for (const ext of ['.npy', '.npy.gz']) {
    const p = path.join(dir, base + ext);
    if (fs.existsSync(p)) return p;
  }
  throw new EdgeOptError('E_NOT_FOUND', `no ${base}.npy or ${base}.npy.gz in ${dir}`);
}

/** An MNIST-style folder: <split>-images.npy[.gz] and <split>-labels.npy[.gz]. */
export function loadImageFolder(dir: string, split: 'train' | 'test'): Dataset {
  return loadDataset(npyPath(dir, `${split}-images`), npyPath(dir, `${split}-labels`));
}

/** Rows [from, to) of a dataset (views, no copy). */
export function sliceRows(ds: Dataset, from: number, to: number): Dataset {
  const rowSize = ds.data.length / ds.shape[0];
  return {
    data: ds.data.subarray(from * rowSize, to * rowSize),
    shape: [to - from, ...ds.shape.slice(1)],
    labels: ds.labels?.subarray(from, to),
    ...(ds.raw ? { raw: ds.raw.subarray(from * rowSize, to * rowSize) } : {}),
  };
}
