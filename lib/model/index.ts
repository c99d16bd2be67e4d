/**
 * Models in and out: loadModel accepts a Graph, the seed's object form, a path
 * or the bytes of an .eom or .onnx file; saveModel writes .eom atomically.
 */
import { EdgeOptError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { readRegularFile } from '../util/read-file';
import { fromSeed, isSeedModel, type SeedModel } from './build';
import { decodeEom, encodeEom, type EomEncodeOptions, looksLikeEom } from './eom';
import { type Graph, isGraph, validateGraph } from './graph';
import { importOnnx, looksLikeOnnx } from './onnx/import';

export type ModelSource = Graph | SeedModel | string | Uint8Array;

function decodeBytes(bytes: Uint8Array, source: string): Graph {
  if (looksLikeEom(bytes) || source.endsWith('.eom')) return decodeEom(bytes, source);
  if (source.endsWith('.onnx') || looksLikeOnnx(bytes)) return importOnnx(bytes, source);
  throw new EdgeOptError('E_FORMAT', `${source}: not an .eom (safetensors) or .onnx model file`);
}

/** Model files larger than this are refused before they are read (protobuf, so ONNX, stops at 2 GiB too). */
export const MAX_MODEL_FILE_BYTES = 2 ** 31;

export function loadModel(source: ModelSource): Graph {
  if (typeof source === 'string') return decodeBytes(readRegularFile(source, MAX_MODEL_FILE_BYTES, 'model file'), source);
  if (source instanceof Uint8Array) return decodeBytes(source, '<bytes>');
  if (isGraph(source)) return validateGraph(source);
  if (isSeedModel(source)) return fromSeed(source);
  throw new EdgeOptError('E_ARGUMENT', 'a model is a Graph, a seed object { architecture, weights }, an .eom or .onnx path, or its bytes');
}

/**
 * Writes the model as .eom atomically (util/atomic-write.ts: a crash leaves the old file or the new one);
 * `{ compress: true }` writes the compressed form (see encodeEom). Returns the byte size.
 */
export function saveModel(model: ModelSource, file: string, options: EomEncodeOptions = {}): number {
  const bytes = encodeEom(loadModel(model), options);
  writeFileAtomic(file, bytes);
  return bytes.length;
}

/** The size in bytes the model takes as an .eom file. */
export function modelFileSize(model: ModelSource, options: EomEncodeOptions = {}): number {
  return encodeEom(loadModel(model), options).length;
}

export { encodeEom, decodeEom, type EomEncodeOptions } from './eom';
export * from './graph';
export * from './build';
export { GraphBuilder, mobileNetMini, mobileNetV2, resNet18, MINI_GROUPS, type ConvOptions, type MiniNorm } from './builder';
