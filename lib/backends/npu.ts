/**
 * NPU plugins through the addon (native/npu: the C ABI, the dlopen loader and
 * the reference plugin). A plugin is a shared library; `loadNpuPlugin(path)`
 * checks its ABI and opens the device, or throws E_PLUGIN saying why. Loading
 * a plugin runs its code in this process: the path must be absolute (never
 * searched for), and the trust model is in docs/npu-plugins.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError, fromNative } from '../errors';
import type { Program } from '../engine/program';
import { loadAddon, packageRoot } from './native/addon';

export interface NpuCapabilities {
  dtypes: string[];
  perChannelWeights: boolean;
  perTensorWeights: boolean;
  staticActivations: boolean;
  dynamicActivations: boolean;
  maxDims: number;
  /** Widest layer the device takes; 0 = no limit. */
  maxChannels: number;
  staticShapesOnly: boolean;
  /** False: the device runs only a prefix of a graph (EdgeTPU-style). */
  partialGraphs: boolean;
  threadSafe: boolean;
}

export interface NpuPluginInfo {
  name: string;
  vendor: string;
  version: string;
  abiVersion: number;
  path: string;
  capabilities: NpuCapabilities;
  /** Null while usable; else why the plugin is no longer called (a call did not return within its timeout). */
  broken: string | null;
}

/** How long one plugin call may take before the plugin is marked broken and its work goes to the CPU. */
export interface NpuTimeouts {
  /** execute, supports, describe, release, export (default: the engine option npuTimeoutMs's). */
  timeoutMs?: number;
  /** Loading (dlopen, entry point, init), compile and load_blob (default: npuCompileTimeoutMs's). */
  compileTimeoutMs?: number;
}

/** A compiled subgraph on the device. Failures are E_PLUGIN. */
export interface NpuGraph {
  run(x: Float32Array, rows: number): Promise<Float32Array>;
  runSync(x: Float32Array, rows: number): Float32Array;
  exportBlob(): Uint8Array;
  describe(): { inputFeatures: number; outputFeatures: number; batch: number };
  /** Releases the compiled graph on the device now; in-flight runs finish first. */
  release(): void;
}

export interface NpuPlugin {
  info(): NpuPluginInfo;
  /**
   * null when the device runs the one op of this Program, else why not: NPU ABI v1's limits, the
   * plugin's reason, or its failure to answer (an exception, a timeout: the op then simply stays off the NPU).
   */
  supports(program: Program): string | null;
}

/** The binding's objects: they throw plain errors with a `code`. */
interface RawPlugin {
  info(): NpuPluginInfo;
  supports(program: Program): string | null;
}
type RawGraph = NpuGraph;

interface NpuBinding {
  NpuPlugin: new (path: string, options?: Record<string, string>, timeouts?: NpuTimeouts) => RawPlugin;
  NpuGraph: new (plugin: RawPlugin, program: Program | Uint8Array, batch?: number) => RawGraph;
}

/** Runs a binding call, turning its errors into EdgeOptError. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

class LoadedPlugin implements NpuPlugin {
  constructor(readonly raw: RawPlugin) {}
  info(): NpuPluginInfo {
    return call(() => this.raw.info());
  }
  supports(program: Program): string | null {
    try {
      return this.raw.supports(program);
    } catch (err) {
      const e = fromNative(err);
      if (e.code === 'E_PLUGIN') return e.message;
      throw e;
    }
  }
}

class CompiledGraph implements NpuGraph {
  constructor(private readonly raw: RawGraph) {}
  run(x: Float32Array, rows: number): Promise<Float32Array> {
    return call(() => this.raw.run(x, rows)).catch((err: unknown) => Promise.reject(fromNative(err)));
  }
  runSync(x: Float32Array, rows: number): Float32Array {
    return call(() => this.raw.runSync(x, rows));
  }
  exportBlob(): Uint8Array {
    return call(() => this.raw.exportBlob());
  }
  describe(): { inputFeatures: number; outputFeatures: number; batch: number } {
    return call(() => this.raw.describe());
  }
  release(): void {
    this.raw.release();
  }
}

function rawPlugin(plugin: NpuPlugin): RawPlugin {
  if (!(plugin instanceof LoadedPlugin)) throw new EdgeOptError('E_ARGUMENT', 'expected a plugin from loadNpuPlugin()');
  return plugin.raw;
}

function binding(): NpuBinding {
  const { addon, reason } = loadAddon();
  if (!addon) throw new EdgeOptError('E_PLUGIN', `NPU plugins are loaded by the native addon, which is unavailable: ${reason}`);
  return addon.npu as NpuBinding;
}

/** E_ARGUMENT unless `file` is an absolute path without NUL bytes: a plugin is code, never searched for. */
export function checkNpuPluginPath(file: unknown, what = 'NPU plugin path'): string {
  if (typeof file !== 'string' || !file) throw new EdgeOptError('E_ARGUMENT', `${what} must be a non-empty string`);
  if (file.includes('\0')) throw new EdgeOptError('E_ARGUMENT', `${what} contains a NUL byte`);
  if (!path.isAbsolute(file))
    throw new EdgeOptError('E_ARGUMENT', `${what} '${file}' must be absolute (resolve it against your config file yourself)`);
  return file;
}

/**
 * Loads a plugin from an absolute path (E_ARGUMENT otherwise). E_PLUGIN for a missing or world-writable file,
 * a missing entry point, a wrong ABI version, a device that fails to open or a load past the timeout.
 */
export function loadNpuPlugin(file: string, options?: Record<string, string>, timeouts?: NpuTimeouts): NpuPlugin {
  const b = binding();
  checkNpuPluginPath(file);
  return new LoadedPlugin(call(() => new b.NpuPlugin(file, options, timeouts)));
}

/**
 * Compiles a Program that is a chain of dense/qdense/relu/softmax ops (one input, one
 * output) on the plugin: E_PLUGIN when the plugin refuses or fails, E_UNSUPPORTED_OP when
 * NPU ABI v1 cannot express an op.
 */
export function compileNpuGraph(plugin: NpuPlugin, program: Program, batch: number): NpuGraph {
  const b = binding();
  return new CompiledGraph(call(() => new b.NpuGraph(rawPlugin(plugin), program, batch)));
}

/** Loads a precompiled artifact (what the plugin's exportBlob() wrote, or a vendor's blob). */
export function loadNpuBlob(plugin: NpuPlugin, blob: Uint8Array): NpuGraph {
  const b = binding();
  return new CompiledGraph(call(() => new b.NpuGraph(rawPlugin(plugin), blob)));
}

/**
 * The reference NPU plugin built with the package (a simulated int8 NPU, see
 * docs/npu-plugins.md): prebuilds/<platform>-<arch>/ first, then build/Release.
 * Throws E_NOT_FOUND when neither holds it.
 */
export function referenceNpuPluginPath(): string {
  const candidates = [
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'edgeopt_npu_ref.so'),
    path.join(packageRoot, 'build', 'Release', 'edgeopt_npu_ref.so'),
  ];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found)
    throw new EdgeOptError(
      'E_NOT_FOUND',
      `the reference NPU plugin is not built (looked in ${candidates.join(', ')}); run \`npm run build:native\``,
    );
  return found;
}
