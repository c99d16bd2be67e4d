/**
 * InferenceSession: one loaded model as onnxruntime-node users know it — input
 * and output names and metadata, and `run(feeds)` from input names to
 * tensor-likes (`{ data, dims }` as onnxruntime spells it, or `{ data, shape }`)
 * giving named outputs. It checks and converts feeds (uint8 image inputs become
 * float32 values 0..255) and runs them through the engine core
 * (`engine.runModel`), or through a dynamic batcher when the session has one.
 */
import { EdgeOptError } from '../errors';
import { describe } from '../util/describe';
import { elementCount, type InputType } from '../model/graph';
import { abortError, type Batcher, type BatcherOptions } from './batcher';
import type { EdgeInferenceEngine, LoadResult, ModelInfo, ModelTensors, Placement } from './engine';

export type TensorType = InputType;

export interface TensorMetadata {
  name: string;
  dtype: TensorType;
  /** Dimensions, the batch first as null. */
  shape: Array<number | null>;
}

/** What `run` takes for one input: onnxruntime's `{ data, dims }`, edgeopt's `{ data, shape }`, or bare data. */
export type TensorLike =
  | { data: Float32Array | Uint8Array | Uint8ClampedArray; dims: readonly number[]; shape?: readonly number[] }
  | { data: Float32Array | Uint8Array | Uint8ClampedArray; shape: readonly number[]; dims?: readonly number[] }
  | Float32Array
  | Uint8Array
  | Uint8ClampedArray;

/** One output: float32 data with its dimensions under both names. */
export interface OutputTensor {
  dtype: 'float32';
  data: Float32Array;
  dims: number[];
  shape: number[];
}

export type SessionFeeds = Record<string, TensorLike>;
export type SessionOutputs = Record<string, OutputTensor>;

export interface RunOptions {
  /** Aborting rejects the run with an AbortError; a queued (batched) run leaves the queue and never runs. */
  signal?: AbortSignal;
}

export interface SessionOptions {
  /** Coalesce concurrent runs into batched engine calls (see Batcher); off by default. */
  batching?: boolean | BatcherOptions;
}

/** Checked feeds for the engine core, and their common batch size. */
export interface PreparedFeeds {
  feeds: ModelTensors;
  rows: number;
}

export class InferenceSession implements LoadResult {
  readonly id: string;
  readonly inputShape: number[];
  readonly outputFeatures: number;
  /** Where every node ran when the model was loaded (`engine.placement(id)` is the live view). */
  readonly placement: Placement[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly TensorMetadata[];
  readonly outputMetadata: readonly TensorMetadata[];
  /** The session's dynamic batcher, when it batches. */
  readonly batcher?: Batcher;
  /** A session from EdgeInferenceEngine.create(): release() disposes the engine. */
  private readonly ownsEngine: boolean;
  private released = false;

  private constructor(
    readonly engine: EdgeInferenceEngine,
    load: LoadResult,
    info: ModelInfo,
    inputTypes: readonly InputType[],
    options: SessionOptions & { ownsEngine?: boolean },
  ) {
    this.id = load.id;
    this.inputShape = load.inputShape;
    this.outputFeatures = load.outputFeatures;
    this.placement = load.placement;
    this.inputMetadata = info.inputs.map((t, i) => ({ name: t.name, dtype: inputTypes[i] ?? 'float32', shape: [...t.shape] }));
    this.outputMetadata = info.outputs.map((t) => ({ name: t.name, dtype: 'float32' as const, shape: [...t.shape] }));
    this.inputNames = this.inputMetadata.map((t) => t.name);
    this.outputNames = this.outputMetadata.map((t) => t.name);
    this.ownsEngine = options.ownsEngine ?? false;
    const { batching } = options;
    if (batching) this.batcher = engine.batcher(load.id, batching === true ? {} : batching);
  }

  /** Used by EdgeInferenceEngine.loadModel / create. */
  static open(
    engine: EdgeInferenceEngine,
    id: string,
    loaded: { load: LoadResult; inputTypes: InputType[] },
    options: SessionOptions & { ownsEngine?: boolean } = {},
  ): InferenceSession {
    return new InferenceSession(engine, loaded.load, engine.modelInfo(id), loaded.inputTypes, options);
  }

  /**
   * Runs the model on named inputs and resolves with named outputs. Every input is needed, with
   * the same batch size; a uint8 input takes a Uint8Array (raw image bytes).
   */
  async run(feeds: SessionFeeds, options: RunOptions = {}): Promise<SessionOutputs> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal, `model '${this.id}': the run`);
    const prepared = this.prepare(feeds);
    const out = this.batcher
      ? await this.batcher.run(prepared.feeds, prepared.rows, signal)
      : await abortable(this.engine.runModel(this.id, prepared.feeds), signal, `model '${this.id}': the run`);
    return this.wrap(out);
  }

  /** Runs on the calling thread, never batched: the microsecond path for small inputs. */
  runSync(feeds: SessionFeeds): SessionOutputs {
    return this.wrap(this.engine.runModelSync(this.id, this.prepare(feeds).feeds));
  }

  /** Checks feeds against the inputs (names, dtypes, shapes) and converts them for the engine core. */
  prepare(feeds: SessionFeeds): PreparedFeeds {
    this.assertOpen();
    if (!feeds || typeof feeds !== 'object' || Array.isArray(feeds) || ArrayBuffer.isView(feeds)) {
      throw new EdgeOptError(
        'E_ARGUMENT',
        `model '${this.id}': feeds must be an object from input name to tensor (inputs: ${this.inputNames.join(', ')})`,
      );
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name))
        throw new EdgeOptError('E_ARGUMENT', `model '${this.id}' has no input '${name}' (inputs: ${this.inputNames.join(', ')})`);
    }
    const out: ModelTensors = {};
    let rows = -1;
    for (const meta of this.inputMetadata) {
      if (!(meta.name in feeds))
        throw new EdgeOptError(
          'E_ARGUMENT',
          `model '${this.id}': input '${meta.name}' is missing from the feeds (inputs: ${this.inputNames.join(', ')})`,
        );
      const t = this.feed(meta, feeds[meta.name]);
      if (rows >= 0 && t.shape[0] !== rows)
        throw new EdgeOptError('E_SHAPE', `model '${this.id}': input '${meta.name}' has batch ${t.shape[0]}, the other inputs ${rows}`);
      rows = t.shape[0];
      out[meta.name] = t;
    }
    return { feeds: out, rows };
  }

  /** Unloads the model (after queued batched runs finish); a session from create() disposes its engine. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.batcher?.close();
    if (this.ownsEngine) this.engine.dispose();
    else this.engine.unloadModel(this.id);
  }

  private assertOpen(): void {
    if (this.released) throw new EdgeOptError('E_STATE', `the session of model '${this.id}' is released`);
  }

  private feed(meta: TensorMetadata, value: TensorLike): { data: Float32Array; shape: number[] } {
    const where = `model '${this.id}': input '${meta.name}'`;
    const bare = ArrayBuffer.isView(value);
    const data = bare ? value : (value as { data?: unknown } | null)?.data;
    const want = meta.dtype === 'uint8' ? 'a Uint8Array (raw bytes 0..255)' : 'a Float32Array';
    const okType = meta.dtype === 'uint8' ? data instanceof Uint8Array || data instanceof Uint8ClampedArray : data instanceof Float32Array;
    if (!okType) throw new EdgeOptError('E_DTYPE', `${where} takes ${want} as data, got ${describe(data)}`);
    const values = data as Float32Array | Uint8Array;
    const rowSize = elementCount(meta.shape.slice(1));
    let shape: number[];
    if (bare) {
      if (values.length === 0 || values.length % rowSize !== 0)
        throw new EdgeOptError('E_SHAPE', `${where} needs a multiple of ${rowSize} values, got ${values.length}`);
      shape = [values.length / rowSize, ...(meta.shape.slice(1) as number[])];
    } else {
      shape = dimsOf(value as { dims?: readonly number[]; shape?: readonly number[] }, where);
      const ok =
        shape.length === meta.shape.length &&
        shape.every((d, i) => Number.isInteger(d) && d > 0 && (meta.shape[i] === null || meta.shape[i] === d));
      if (!ok)
        throw new EdgeOptError(
          'E_SHAPE',
          `${where} expects dims [${meta.shape.map((d) => d ?? 'batch').join(', ')}], got [${shape.join(', ')}]`,
        );
      if (values.length !== elementCount(shape))
        throw new EdgeOptError(
          'E_SHAPE',
          `${where}: dims [${shape.join(', ')}] need ${elementCount(shape)} values, data has ${values.length}`,
        );
    }
    return { data: values instanceof Float32Array ? values : Float32Array.from(values), shape };
  }

  private wrap(out: ModelTensors): SessionOutputs {
    const result: SessionOutputs = {};
    for (const name of this.outputNames) {
      const t = out[name];
      result[name] = { dtype: 'float32', data: t.data, dims: t.shape, shape: t.shape };
    }
    return result;
  }
}

function dimsOf(t: { dims?: readonly number[]; shape?: readonly number[] }, where: string): number[] {
  const { dims, shape } = t;
  if (
    dims !== undefined &&
    shape !== undefined &&
    !(Array.isArray(dims) && Array.isArray(shape) && dims.length === shape.length && dims.every((d, i) => d === shape[i]))
  ) {
    throw new EdgeOptError('E_SHAPE', `${where} has dims [${String(dims)}] and shape [${String(shape)}], which differ`);
  }
  const d = dims ?? shape;
  if (!Array.isArray(d)) throw new EdgeOptError('E_SHAPE', `${where} needs dims (or shape), got ${d === undefined ? 'none' : describe(d)}`);
  return [...(d as number[])];
}

/** The promise, or an AbortError as soon as the signal fires (the work itself runs to its end). */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
