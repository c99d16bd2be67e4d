/**
 * EdgeInferenceEngine: serves several models by id. Each model is compiled
 * once into segments placed on a backend (native C++ when a binary loads,
 * else TypeScript); where a node runs, and why, is kept in `placement(id)` and
 * announced with a 'fallback' event. Library code never prints.
 */
import { EventEmitter } from 'node:events';
import { nativeAddon, backendInfo } from '../backends';
import { EdgeOptError } from '../errors';
import { loadModel, type ModelSource } from '../model';
import { nativeSegment, type Segment, tsSegment } from './runners';
import { compile, type CompiledModel, nativeUnsupported } from './steps';

export type Device = 'auto' | 'cpu' | 'ts';

export interface EngineOptions {
  /** 'auto' and 'cpu' use the native core when it loads (else TS, with a 'fallback' event); 'ts' forces TypeScript. */
  device?: Device;
  /** Throw instead of falling back. */
  strict?: boolean;
  /** Native kernel table to use ('scalar', 'avx2', ...); default: the best this CPU runs. */
  kernel?: string;
}

export interface Placement {
  node: string;
  op: string;
  backend: 'native' | 'ts';
  reason?: string;
}

export interface FallbackEvent {
  modelId: string;
  node: string;
  from: string;
  to: string;
  reason: string;
}

export interface InferInput {
  data: Float32Array;
  shape: number[];
}

export interface InferOutput {
  data: Float32Array;
  shape: [number, number];
}

interface LoadedModel {
  id: string;
  compiled: CompiledModel;
  segments: Segment[];
  placement: Placement[];
}

const DEVICES: Device[] = ['auto', 'cpu', 'ts'];

export class EdgeInferenceEngine extends EventEmitter {
  private readonly options: Required<Omit<EngineOptions, 'kernel'>> & { kernel?: string };
  private readonly models = new Map<string, LoadedModel>();
  private disposed = false;

  constructor(options: EngineOptions = {}) {
    super();
    const device = options.device ?? 'auto';
    if (!DEVICES.includes(device)) throw new EdgeOptError('E_ARGUMENT', `device must be one of ${DEVICES.join(', ')}, got '${device}'`);
    this.options = { device, strict: options.strict ?? false, kernel: options.kernel };
  }

  /** Compiles a model (Graph, seed object, .eom path or bytes) and places its nodes. */
  async loadModel(id: string, source: ModelSource): Promise<{ id: string; inputShape: number[]; outputFeatures: number; placement: Placement[] }> {
    return this.loadModelSync(id, source);
  }

  loadModelSync(id: string, source: ModelSource): { id: string; inputShape: number[]; outputFeatures: number; placement: Placement[] } {
    this.assertAlive();
    if (typeof id !== 'string' || !id) throw new EdgeOptError('E_ARGUMENT', 'model id must be a non-empty string');
    const graph = loadModel(source);
    const compiled = compile(graph);
    const { segment, reason } = this.place(compiled);
    const placement: Placement[] = graph.nodes.map((n) => ({ node: n.name, op: n.op, backend: segment.backend, ...(reason ? { reason } : {}) }));
    this.models.set(id, { id, compiled, segments: [segment], placement });
    if (reason) {
      for (const p of placement) this.emit('fallback', { modelId: id, node: p.node, from: 'native', to: 'ts', reason } satisfies FallbackEvent);
    }
    return { id, inputShape: compiled.rowShape, outputFeatures: compiled.outputFeatures, placement };
  }

  private place(compiled: CompiledModel): { segment: Segment; reason?: string } {
    if (this.options.device === 'ts') return { segment: tsSegment(compiled.steps, compiled.inputFeatures) };
    const addon = nativeAddon();
    // Until the engine splits models into segments, a model with a TS-only step runs wholly on TS.
    const unsupported = nativeUnsupported(compiled.steps);
    if (!addon || unsupported) {
      const reason = unsupported ?? backendInfo().reason ?? 'the native backend is unavailable';
      if (this.options.strict) throw new EdgeOptError('E_NATIVE', `device '${this.options.device}' with strict: ${reason}`);
      return { segment: tsSegment(compiled.steps, compiled.inputFeatures), reason };
    }
    return { segment: nativeSegment(addon, compiled.steps, compiled.inputFeatures, this.options.kernel) };
  }

  unloadModel(id: string): boolean {
    // In-flight native runs hold their own reference to the plan, so they finish safely.
    return this.models.delete(id);
  }

  /** Model ids currently loaded. */
  modelIds(): string[] {
    return [...this.models.keys()];
  }

  /** Where every node of the model runs, and why it fell back if it did. */
  placement(id: string): Placement[] {
    return this.get(id).placement.map((p) => ({ ...p }));
  }

  /** Runs the model off the event loop (native: libuv's pool; TS: yields between layers). */
  async infer(id: string, input: Float32Array | InferInput): Promise<InferOutput> {
    const m = this.get(id);
    const { data, rows } = this.checkInput(m, input);
    let x = data;
    for (const s of m.segments) x = await s.run(x, rows);
    return { data: x, shape: [rows, m.compiled.outputFeatures] };
  }

  /** Runs the model on the calling thread: the microsecond path for small inputs. */
  inferSync(id: string, input: Float32Array | InferInput): InferOutput {
    const m = this.get(id);
    const { data, rows } = this.checkInput(m, input);
    let x = data;
    for (const s of m.segments) x = s.runSync(x, rows);
    return { data: x, shape: [rows, m.compiled.outputFeatures] };
  }

  dispose(): void {
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
    const want = `[batch, ${m.compiled.rowShape.join(', ')}]`;
    const isObj = !(input instanceof Float32Array) && !!input && typeof input === 'object' && 'data' in input;
    const data = isObj ? (input as InferInput).data : input;
    if (!(data instanceof Float32Array)) {
      throw new EdgeOptError('E_DTYPE', `model '${m.id}' takes a Float32Array (or { data: Float32Array, shape }) of shape ${want}, got ${describe(data)}`);
    }
    const features = m.compiled.inputFeatures;
    let rows: number;
    if (isObj) {
      const shape = (input as InferInput).shape;
      const ok = Array.isArray(shape) && shape.length === m.compiled.rowShape.length + 1 && shape.slice(1).every((d, i) => d === m.compiled.rowShape[i]) && Number.isInteger(shape[0]) && shape[0] > 0;
      if (!ok) throw new EdgeOptError('E_SHAPE', `model '${m.id}' expects input shape ${want}, got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`);
      rows = shape[0];
      if (data.length !== rows * features) throw new EdgeOptError('E_SHAPE', `model '${m.id}': shape [${shape.join(', ')}] needs ${rows * features} values, data has ${data.length}`);
    } else {
      if (data.length === 0 || data.length % features !== 0) {
        throw new EdgeOptError('E_SHAPE', `model '${m.id}' expects input shape ${want} (a multiple of ${features} values), got ${data.length} values`);
      }
      rows = data.length / features;
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new EdgeOptError('E_VALUE', `model '${m.id}': input value ${i} is ${data[i]}`);
    }
    return { data, rows };
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (ArrayBuffer.isView(x)) return x.constructor.name;
  if (Array.isArray(x)) return 'an Array';
  return typeof x;
}
