/**
 * EdgeInferenceEngine: serves several models by id. Each model is compiled
 * once and partitioned into segments, each on one backend: an NPU plugin for
 * the runs of nodes it supports, else the native C++ core, else TypeScript.
 * Where a node runs, and why it is not on the preferred backend, is kept in
 * `placement(id)` and announced with a 'fallback' event. Library code never prints.
 */
import { EventEmitter } from 'node:events';
import { nativeAddon, backendInfo } from '../backends';
import { firstNonFinite } from '../backends/finite';
import { loadAddon } from '../backends/native/addon';
import type { SparsePolicy } from '../backends/native/addon';
import { checkNpuPluginPath, loadNpuPlugin, type NpuPlugin } from '../backends/npu';
import { EdgeOptError } from '../errors';
import { describe } from '../util/describe';
import { loadModel, type ModelSource } from '../model';
import type { InputType } from '../model/graph';
import { Batcher, type BatcherOptions } from './batcher';
import { execute, executeSync, LoopTurns } from './execute';
import { lowerGraph } from './lower';
import type { NpuHealth } from './npu-segment';
import { type OpPlacement, partition, type PartitionOptions } from './partition';
import type { Program } from './program';
import type { Backend, Segment } from './segments';
import { InferenceSession, type SessionOptions } from './session';
import { opWork } from './ts-program';

export type Device = 'auto' | 'npu' | 'cpu' | 'ts';

export interface EngineOptions {
  /**
   * 'auto': the NPU when the npuPlugin option names a plugin, else the CPU (EDGEOPT_NPU_PLUGIN alone
   * never loads code into an engine that did not ask for an NPU). 'npu': the NPU for every node it
   * supports, the CPU for the rest. 'cpu': the native core (TS when no binary loads). 'ts':
   * TypeScript only. Every fallback is reported.
   */
  device?: Device;
  /** Absolute path of an NPU plugin shared library (with device 'npu', default: EDGEOPT_NPU_PLUGIN). */
  npuPlugin?: string;
  /** Key/value options passed to the plugin's init(). */
  npuOptions?: Record<string, string>;
  /**
   * Longest a plugin call (execute, supports, ...) may take, in ms (default 5000). A call past it
   * is abandoned, the plugin marked broken, and its nodes run on the CPU from then on.
   */
  npuTimeoutMs?: number;
  /** The same for loading the plugin, compile and load_blob (default 60000). */
  npuCompileTimeoutMs?: number;
  /** Intra-op threads of native programs, from one pool per thread count shared by every model (default: the core count; results do not depend on it). */
  threads?: number;
  /** Throw (E_PLUGIN / E_NATIVE) instead of falling back. */
  strict?: boolean;
  /** Native kernel table to use ('scalar', 'avx2', ...); default: the best this CPU runs. */
  kernel?: string;
  /**
   * infer() runs a call on the calling thread, without the trip through libuv's pool, when the
   * model is all native and the call is at most this many multiply-adds (rows x the work of every
   * op; default 2^20). The pool round trip (queue, wake a pool thread, wake the loop) costs several
   * times the work of one small MLP row (measured: docs/benchmarks.md). 0: always the pool.
   */
  inlineMacs?: number;
  /**
   * Sparse int8 kernels for pruned QDense layers: 'auto' (default) picks per layer from its measured
   * density and shape, so a pruned layer is never slower than dense; 'always' / 'never' force either.
   * Results are identical either way. placement() names each layer's kernel.
   */
  sparse?: SparsePolicy;
}

export interface Placement {
  node: string;
  op: string;
  backend: Backend;
  reason?: string;
  /**
   * The kernel on the CPU: Dense/QDense 'dense-avx2', 'sparse-avx2', 'sparse24-avx2',
   * 'sparsewin-avx2<16/sparse-avx2' (the first below 16 rows, the second from there),
   * 'dense-ts', 'sparse-ts'; Conv 'gemm-avx2' (1x1 as a plain GEMM), 'im2col-avx2', 'direct-avx2', 'depthwise-avx2'.
   */
  kernel?: string;
  /** Set when another node's op computes this one (a fused activation, a folded BatchNormalization). */
  fusedInto?: string;
}

export interface FallbackEvent {
  modelId: string;
  node: string;
  from: Backend;
  to: Backend;
  reason: string;
}

export interface InferInput {
  data: Float32Array;
  shape: number[];
}

export interface InferOutput {
  data: Float32Array;
  /** [batch, ...] (ONNX's shape of the output; a Flatten with axis > 1 folds rows into the batch). */
  shape: number[];
}

/** A named tensor for runModel: float32 data, batch-major, shape with the batch first. */
export interface NamedTensor {
  data: Float32Array;
  shape: number[];
}

/** A model input or output: its name and shape with the batch dimension as null. */
export interface TensorInfo {
  name: string;
  shape: Array<number | null>;
}

export interface ModelInfo {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

/** Memory of a loaded model, PER IMAGE (a batch of N needs N x arenaBytes of activations). */
export interface MemoryReport {
  /** Bytes of weights and other constants of the lowered program. */
  weightBytes: number;
  /** The planned activation arena (excludes the caller's input and output buffers). */
  arenaBytes: number;
  /** The liveness lower bound: the largest sum of activation bytes alive at any op. */
  liveBytesBound: number;
}

export interface LoadResult {
  id: string;
  inputShape: number[];
  outputFeatures: number;
  placement: Placement[];
}

/** The engine core's named tensors (runModel feeds and results). */
export type ModelTensors = Record<string, NamedTensor>;

/** @deprecated the name sessions used first: TensorInfo. */
export type ModelTensorInfo = TensorInfo;

/** The engine's events and their payloads (typed `on`/`once`/`emit`). */
export interface EngineEvents {
  fallback: [event: FallbackEvent];
}

interface LoadedModel {
  id: string;
  program: Program;
  segments: Segment[];
  placement: Placement[];
  /** Work per image when every segment is native (infer may run inline); else Infinity. */
  inlineMacsPerRow: number;
  /** Async infer calls between their first and last segment. */
  inflight: number;
  /** Unloaded: native memory is released when the last in-flight call is done. */
  unloaded: boolean;
}

/** Frees the model's native programs and NPU graphs, now or (with calls in flight) when the last one ends. */
function releaseWhenIdle(m: LoadedModel): void {
  m.unloaded = true;
  if (m.inflight === 0) for (const s of m.segments) s.release?.();
}

const DEFAULT_INLINE_MACS = 1 << 20;

function nativeWorkPerImage(p: Program, segments: Segment[]): number {
  if (!segments.every((s) => s.backend === 'native')) return Infinity;
  return p.ops.reduce((w, op) => w + opWork(p, op), 0);
}

const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const DEVICES: Device[] = ['auto', 'npu', 'cpu', 'ts'];
const SPARSE_POLICIES: SparsePolicy[] = ['auto', 'always', 'never'];

type NpuState = { plugin: NpuPlugin; name: string } | { plugin: null; reason: string | null };

export class EdgeInferenceEngine extends EventEmitter<EngineEvents> {
  private readonly options: EngineOptions & { device: Device; strict: boolean };
  private readonly models = new Map<string, LoadedModel>();
  private readonly npuHealth: NpuHealth = { healthy: true };
  private readonly loopTurns = new LoopTurns();
  private npu?: NpuState;
  private disposed = false;

  constructor(options: EngineOptions = {}) {
    super();
    const device = options.device ?? 'auto';
    if (!DEVICES.includes(device)) throw new EdgeOptError('E_ARGUMENT', `device must be one of ${DEVICES.join(', ')}, got '${device}'`);
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= 256)) {
      throw new EdgeOptError('E_ARGUMENT', `threads must be an integer in 1..256, got ${String(options.threads)}`);
    }
    if (options.inlineMacs !== undefined && !(Number.isFinite(options.inlineMacs) && options.inlineMacs >= 0)) {
      throw new EdgeOptError('E_ARGUMENT', `inlineMacs must be a number >= 0, got ${String(options.inlineMacs)}`);
    }
    for (const key of ['npuTimeoutMs', 'npuCompileTimeoutMs'] as const) {
      const v = options[key];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v < 2 ** 31))
        throw new EdgeOptError('E_ARGUMENT', `${key} must be an integer number of milliseconds in 1..2^31-1, got ${String(v)}`);
    }
    if (options.npuPlugin !== undefined) checkNpuPluginPath(options.npuPlugin, 'npuPlugin');
    if (device === 'npu' && options.npuPlugin === undefined && process.env.EDGEOPT_NPU_PLUGIN)
      checkNpuPluginPath(process.env.EDGEOPT_NPU_PLUGIN, 'EDGEOPT_NPU_PLUGIN');
    if (options.sparse !== undefined && !SPARSE_POLICIES.includes(options.sparse)) {
      throw new EdgeOptError('E_ARGUMENT', `sparse must be one of ${SPARSE_POLICIES.join(', ')}, got '${String(options.sparse)}'`);
    }
    // A forced kernel table that cannot be had is an error where the native core was asked for; 'auto' falls back.
    const { isaError } = loadAddon();
    if (isaError && (device === 'cpu' || device === 'npu'))
      throw new EdgeOptError(
        'E_ISA',
        `device '${device}' needs the native core, which cannot run: ${isaError} (device 'auto' falls back to TypeScript)`,
      );
    this.options = { ...options, device, strict: options.strict ?? false };
  }

  /**
   * onnxruntime-node's `InferenceSession.create`: a new engine with one model, as a session
   * (`session.release()` disposes the engine).
   */
  static async create(source: ModelSource, options: EngineOptions & SessionOptions = {}): Promise<InferenceSession> {
    const { batching, ...engineOptions } = options;
    const engine = new EdgeInferenceEngine(engineOptions);
    try {
      return InferenceSession.open(engine, 'model', engine.loadInternal('model', source), { batching, ownsEngine: true });
    } catch (err) {
      engine.dispose();
      throw err;
    }
  }

  /**
   * Compiles a model (Graph, seed object, .eom/.onnx path or bytes) and places its nodes. Returns
   * its session (named inputs and outputs, `run(feeds)`), which also carries the load result
   * (`id`, `inputShape`, `outputFeatures`, `placement`).
   */
  async loadModel(id: string, source: ModelSource, options: SessionOptions = {}): Promise<InferenceSession> {
    return this.loadModelSync(id, source, options);
  }

  loadModelSync(id: string, source: ModelSource, options: SessionOptions = {}): InferenceSession {
    return InferenceSession.open(this, id, this.loadInternal(id, source), options);
  }

  /** A dynamic batcher for a loaded model: concurrent small runs coalesced into one batched run. */
  batcher(id: string, options: BatcherOptions = {}): Batcher {
    const info = this.modelInfo(id);
    return new Batcher((feeds) => this.runModel(id, feeds), info, { ...options, label: `model '${id}'` });
  }

  private loadInternal(id: string, source: ModelSource): { load: LoadResult; inputTypes: InputType[] } {
    this.assertAlive();
    if (typeof id !== 'string' || !id) throw new EdgeOptError('E_ARGUMENT', 'model id must be a non-empty string');
    const graph = loadModel(source);
    const program = lowerGraph(graph);
    const preferred = this.preferredBackend();
    const { segments, placed } = partition(program, this.partitionOptions(preferred));
    const fallbacks = placed.filter((p) => p.backend !== preferred);
    if (this.options.strict && fallbacks.length) {
      const f = fallbacks[0];
      throw new EdgeOptError(
        preferred === 'npu' ? 'E_PLUGIN' : 'E_NATIVE',
        `model '${id}': node '${program.ops[f.op].node}' cannot run on ${preferred} and strict is set: ${f.reason ?? 'unsupported'}`,
      );
    }
    const placement = nodePlacement(graph.nodes, program, placed);
    const previous = this.models.get(id);
    this.models.set(id, {
      id,
      program,
      segments,
      placement,
      inlineMacsPerRow: nativeWorkPerImage(program, segments),
      inflight: 0,
      unloaded: false,
    });
    if (previous) releaseWhenIdle(previous);
    for (const p of placement) {
      if (p.backend !== preferred && p.reason)
        this.emit('fallback', { modelId: id, node: p.node, from: preferred, to: p.backend, reason: p.reason } satisfies FallbackEvent);
    }
    const first = program.outputs[0];
    return {
      load: {
        id,
        inputShape: program.inputs[0].shape,
        outputFeatures: elements(first.shape) / (first.folded ? first.shape[0] : 1),
        placement: placement.map((p) => ({ ...p })),
      },
      inputTypes: graph.inputs.map((i) => i.dtype ?? 'float32'),
    };
  }

  /** The backend this engine's options ask for. */
  private preferredBackend(): Backend {
    const { device } = this.options;
    if (device === 'ts') return 'ts';
    if (device === 'npu' || (device === 'auto' && this.options.npuPlugin)) return 'npu';
    return 'native';
  }

  /** The npuPlugin option; the environment variable only when the engine asked for the NPU. */
  private pluginPath(): string | undefined {
    if (this.options.npuPlugin) return this.options.npuPlugin;
    return this.options.device === 'npu' ? process.env.EDGEOPT_NPU_PLUGIN || undefined : undefined;
  }

  /** Loads the plugin once per engine; a failure becomes the reason every node falls back. */
  private loadNpu(): NpuState {
    if (this.npu) return this.npu;
    const file = this.pluginPath();
    if (!file) return (this.npu = { plugin: null, reason: 'no NPU plugin is configured (set the npuPlugin option or EDGEOPT_NPU_PLUGIN)' });
    try {
      const plugin = loadNpuPlugin(file, this.options.npuOptions, {
        timeoutMs: this.options.npuTimeoutMs,
        compileTimeoutMs: this.options.npuCompileTimeoutMs,
      });
      return (this.npu = { plugin, name: plugin.info().name });
    } catch (err) {
      if (!(err instanceof EdgeOptError) || err.code !== 'E_PLUGIN') throw err;
      return (this.npu = { plugin: null, reason: err.message });
    }
  }

  private partitionOptions(preferred: Backend): PartitionOptions {
    const addon = preferred === 'ts' ? null : nativeAddon();
    const cpu = {
      preferred,
      addon,
      nativeReason: addon ? undefined : backendInfo().reason,
      kernel: this.options.kernel,
      threads: this.options.threads,
      sparse: this.options.sparse,
    };
    if (preferred !== 'npu') return cpu;
    const npu = this.loadNpu();
    if (!npu.plugin) return { ...cpu, npuUnavailable: npu.reason ?? undefined };
    return { ...cpu, npu: { plugin: npu.plugin, name: npu.name, health: this.npuHealth, onFailure: (err) => this.npuFailed(err) } };
  }

  /** An execute failure: strict rethrows; else the plugin is unhealthy from now on and its nodes move to the CPU. */
  private npuFailed(err: unknown): void {
    const message = (err as Error).message;
    if (this.options.strict) throw new EdgeOptError('E_PLUGIN', `${message} (strict: no CPU fallback)`, { cause: err });
    if (!this.npuHealth.healthy) return;
    this.npuHealth.healthy = false;
    this.npuHealth.reason = `the NPU plugin is marked unhealthy after an execute failure: ${message}`;
    for (const m of this.models.values()) {
      for (const p of m.placement) {
        if (p.backend !== 'npu') continue;
        p.backend = 'native';
        p.reason = this.npuHealth.reason;
        this.emit('fallback', { modelId: m.id, node: p.node, from: 'npu', to: 'native', reason: p.reason } satisfies FallbackEvent);
      }
    }
  }

  /** The loaded NPU plugin's description, or null with the reason none is in use. */
  npuStatus(): { plugin: ReturnType<NpuPlugin['info']> | null; healthy: boolean; reason?: string } {
    const npu =
      this.preferredBackend() === 'npu' ? this.loadNpu() : { plugin: null, reason: `device '${this.options.device}' does not use an NPU` };
    if (!npu.plugin) return { plugin: null, healthy: false, reason: npu.reason ?? undefined };
    const info = npu.plugin.info();
    const broken = info.broken ?? undefined; // a call timed out, possibly outside execute (supports, compile)
    return { plugin: info, healthy: this.npuHealth.healthy && !broken, reason: this.npuHealth.reason ?? broken };
  }

  /** Removes the model and frees its native memory (after calls in flight, which finish normally). */
  unloadModel(id: string): boolean {
    const m = this.models.get(id);
    if (!m) return false;
    this.models.delete(id);
    releaseWhenIdle(m);
    return true;
  }

  /** Model ids currently loaded. */
  modelIds(): string[] {
    return [...this.models.keys()];
  }

  /** Where every node of the model runs, and why it fell back if it did. */
  placement(id: string): Placement[] {
    return this.get(id).placement.map((p) => ({ ...p }));
  }

  /** The model's inputs and outputs: names and shapes with the batch dimension as null. */
  modelInfo(id: string): ModelInfo {
    const { program } = this.get(id);
    const info = (io: { name: string; shape: number[]; folded?: boolean }): TensorInfo => ({
      name: io.name,
      shape: [null, ...(io.folded ? io.shape.slice(1) : io.shape)],
    });
    return { inputs: program.inputs.map(info), outputs: program.outputs.map(info) };
  }

  /** Weight bytes, the planned activation arena and its liveness lower bound, all per image (the arena scales with the batch). */
  memory(id: string): MemoryReport {
    const { program } = this.get(id);
    const weightBytes = program.tensors.reduce((s, t) => s + (t.data ? t.data.byteLength : 0), 0);
    return { weightBytes, arenaBytes: program.arenaBytes, liveBytesBound: program.liveBytesBound };
  }

  /**
   * Runs the model on named inputs (every model input, `{ data, shape: [batch, ...] }`) and
   * returns every output by name. Off the event loop (native: libuv's pool; TS: yields
   * between ops), except calls of at most `inlineMacs` work on an all-native model.
   */
  async runModel(id: string, feeds: ModelTensors): Promise<ModelTensors> {
    const m = this.get(id);
    const { xs, batch } = this.checkFeeds(m, feeds);
    return this.named(m, await this.execute(m, xs, batch), batch);
  }

  /** runModel on the calling thread. */
  runModelSync(id: string, feeds: ModelTensors): ModelTensors {
    const m = this.get(id);
    const { xs, batch } = this.checkFeeds(m, feeds);
    return this.named(m, executeSync(m, xs, batch), batch);
  }

  /**
   * Runs a one-input model and returns its first output (the seed's API). Off the event loop
   * (native: libuv's pool; TS: yields between ops); calls of at most `inlineMacs` work on an
   * all-native model run inline instead: the pool round trip would cost more than the work.
   */
  async infer(id: string, input: Float32Array | InferInput): Promise<InferOutput> {
    const m = this.get(id);
    const { data, rows } = this.checkInput(m, input);
    return this.firstOutput(m, await this.execute(m, [data], rows), rows);
  }

  /** Runs the model on the calling thread: the microsecond path for small inputs. */
  inferSync(id: string, input: Float32Array | InferInput): InferOutput {
    const m = this.get(id);
    const { data, rows } = this.checkInput(m, input);
    return this.firstOutput(m, executeSync(m, [data], rows), rows);
  }

  /**
   * Inline when the work is small and all native, else off the loop (execute.ts). An inline call
   * first lets a starved event loop turn (on a snapshot of the input, as the caller may reuse it).
   */
  private async execute(m: LoadedModel, xs: Float32Array[], batch: number): Promise<Float32Array[]> {
    const inline = m.inlineMacsPerRow * batch <= (this.options.inlineMacs ?? DEFAULT_INLINE_MACS);
    const turn = inline ? this.loopTurns.starved() : undefined;
    if (inline && !turn) return executeSync(m, xs, batch);
    m.inflight++;
    try {
      if (!turn) return await execute(m, xs, batch);
      const inputs = xs.map((x) => x.slice());
      await turn;
      return executeSync(m, inputs, batch);
    } finally {
      if (--m.inflight === 0 && m.unloaded) releaseWhenIdle(m);
    }
  }

  private outputShape(o: Program['outputs'][number], batch: number): number[] {
    return o.folded ? [batch * o.shape[0], ...o.shape.slice(1)] : [batch, ...o.shape];
  }

  private firstOutput(m: LoadedModel, ys: Float32Array[], batch: number): InferOutput {
    return { data: ys[0], shape: this.outputShape(m.program.outputs[0], batch) };
  }

  private named(m: LoadedModel, ys: Float32Array[], batch: number): Record<string, NamedTensor> {
    const out: Record<string, NamedTensor> = {};
    m.program.outputs.forEach((o, i) => (out[o.name] = { data: ys[i], shape: this.outputShape(o, batch) }));
    return out;
  }

  private checkFeeds(m: LoadedModel, feeds: Record<string, NamedTensor>): { xs: Float32Array[]; batch: number } {
    if (!feeds || typeof feeds !== 'object')
      throw new EdgeOptError('E_ARGUMENT', `model '${m.id}': feeds must be an object of named tensors`);
    const names = m.program.inputs.map((i) => i.name);
    const extra = Object.keys(feeds).filter((k) => !names.includes(k));
    if (extra.length) throw new EdgeOptError('E_ARGUMENT', `model '${m.id}' has no input '${extra[0]}' (inputs: ${names.join(', ')})`);
    let batch = 0;
    const xs = m.program.inputs.map((inp) => {
      const f = feeds[inp.name];
      if (!f) throw new EdgeOptError('E_ARGUMENT', `model '${m.id}': input '${inp.name}' is missing (inputs: ${names.join(', ')})`);
      if (typeof f !== 'object' || f instanceof Float32Array || !('data' in f) || !Array.isArray(f.shape))
        throw new EdgeOptError('E_ARGUMENT', `model '${m.id}': feed '${inp.name}' must be { data: Float32Array, shape }`);
      const { data, rows } = this.checkTensor(m, inp.name, inp.shape, f);
      if (batch && rows !== batch)
        throw new EdgeOptError('E_SHAPE', `model '${m.id}': input '${inp.name}' has batch ${rows}, another input ${batch}`);
      batch = rows;
      return data;
    });
    return { xs, batch };
  }

  dispose(): void {
    for (const m of this.models.values()) releaseWhenIdle(m);
    this.models.clear();
    this.disposed = true;
    this.removeAllListeners();
  }

  private assertAlive(): void {
    if (this.disposed) throw new EdgeOptError('E_STATE', 'the engine is disposed');
  }

  private get(id: string): LoadedModel {
    this.assertAlive();
    const m = this.models.get(id);
    if (!m) throw new EdgeOptError('E_NOT_FOUND', `no model '${id}' is loaded (loaded: ${this.modelIds().join(', ') || 'none'})`);
    return m;
  }

  private checkInput(m: LoadedModel, input: Float32Array | InferInput): { data: Float32Array; rows: number } {
    if (m.program.inputs.length !== 1)
      throw new EdgeOptError('E_ARGUMENT', `model '${m.id}' has ${m.program.inputs.length} inputs; use runModel with named feeds`);
    const inp = m.program.inputs[0];
    return this.checkTensor(m, inp.name, inp.shape, input);
  }

  private checkTensor(
    m: LoadedModel,
    name: string,
    rowShape: number[],
    input: Float32Array | InferInput,
  ): { data: Float32Array; rows: number } {
    const want = `[batch, ${rowShape.join(', ')}]`;
    const what = m.program.inputs.length > 1 ? `model '${m.id}' input '${name}'` : `model '${m.id}'`;
    const isObj = !(input instanceof Float32Array) && !!input && typeof input === 'object' && 'data' in input;
    const data = isObj ? (input as InferInput).data : input;
    if (!(data instanceof Float32Array)) {
      throw new EdgeOptError(
        'E_DTYPE',
        `${what} takes a Float32Array (or { data: Float32Array, shape }) of shape ${want}, got ${describe(data)}`,
      );
    }
    const features = elements(rowShape);
    let rows: number;
    if (isObj) {
      const shape = (input as InferInput).shape;
      const ok =
        Array.isArray(shape) &&
        shape.length === rowShape.length + 1 &&
        shape.slice(1).every((d, i) => d === rowShape[i]) &&
        Number.isInteger(shape[0]) &&
        shape[0] > 0;
      if (!ok)
        throw new EdgeOptError(
          'E_SHAPE',
          `${what} expects input shape ${want}, got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`,
        );
      rows = shape[0];
      if (data.length !== rows * features)
        throw new EdgeOptError('E_SHAPE', `${what}: shape [${shape.join(', ')}] needs ${rows * features} values, data has ${data.length}`);
    } else {
      if (data.length === 0 || data.length % features !== 0) {
        throw new EdgeOptError(
          'E_SHAPE',
          `${what} expects input shape ${want} (a multiple of ${features} values), got ${data.length} values`,
        );
      }
      rows = data.length / features;
    }
    if (rows > 1 << 24) throw new EdgeOptError('E_SHAPE', `${what}: batch ${rows} is larger than 2^24`);
    const i = firstNonFinite(data);
    if (i >= 0) throw new EdgeOptError('E_VALUE', `${what}: input value ${i} is ${data[i]}`);
    return { data, rows };
  }
}

/**
 * One entry per graph node: the backend of its op; a node another op computes (a fused
 * activation, a folded BatchNormalization) reports that op's; a node without an op (a view:
 * Flatten, Reshape, Transpose, Identity) the backend of the op before it.
 */
function nodePlacement(nodes: Array<{ name: string; op: string }>, program: Program, placed: OpPlacement[]): Placement[] {
  const byNode = new Map<string, OpPlacement>();
  for (const p of placed) byNode.set(program.ops[p.op].node, p);
  const fused = program.fusedNodes ?? {};
  let previous: Backend = placed[0]?.backend ?? 'ts';
  return nodes.map((n) => {
    const into = fused[n.name];
    const p = byNode.get(into ?? n.name);
    if (!p) return { node: n.name, op: n.op, backend: previous };
    previous = p.backend;
    return {
      node: n.name,
      op: n.op,
      backend: p.backend,
      ...(p.reason ? { reason: p.reason } : {}),
      ...(p.kernel && !into ? { kernel: p.kernel } : {}),
      ...(into ? { fusedInto: into } : {}),
    };
  });
}
