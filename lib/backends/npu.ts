/**
 * NPU plugins through the addon (native/npu: the C ABI, the dlopen loader and
 * the reference plugin). A plugin is a shared library; `loadNpuPlugin(path)`
 * checks its ABI and opens the device, or throws E_PLUGIN saying why.
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
}

/** A compiled subgraph on the device. */
export interface NpuGraph {
  run(x: Float32Array, rows: number): Promise<Float32Array>;
  runSync(x: Float32Array, rows: number): Float32Array;
  exportBlob(): Uint8Array;
  describe(): { inputFeatures: number; outputFeatures: number; batch: number };
}

export interface NpuPlugin {
  info(): NpuPluginInfo;
  /** null when the device runs the one op of this Program, else why not (NPU ABI v1's limits or the plugin's reason). */
  supports(program: Program): string | null;
}

interface NpuBinding {
  NpuPlugin: new (path: string, options?: Record<string, string>) => NpuPlugin;
  NpuGraph: new (plugin: NpuPlugin, program: Program | Uint8Array, batch?: number) => NpuGraph;
}

function binding(): NpuBinding {
  const { addon, reason } = loadAddon();
  if (!addon) throw new EdgeOptError('E_PLUGIN', `NPU plugins are loaded by the native addon, which is unavailable: ${reason}`);
  return addon.npu as NpuBinding;
}

/** Loads a plugin (E_PLUGIN for a missing file, a missing entry point, a wrong ABI version, a device that fails to open). */
export function loadNpuPlugin(file: string, options?: Record<string, string>): NpuPlugin {
  const b = binding();
  try {
    return new b.NpuPlugin(path.resolve(file), options);
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * Compiles a Program that is a chain of dense/qdense/relu/softmax ops (one input, one
 * output) on the plugin: E_PLUGIN when the plugin refuses or fails, E_UNSUPPORTED_OP when
 * NPU ABI v1 cannot express an op.
 */
export function compileNpuGraph(plugin: NpuPlugin, program: Program, batch: number): NpuGraph {
  try {
    return new (binding().NpuGraph)(plugin, program, batch);
  } catch (err) {
    throw fromNative(err);
  }
}

/** Loads a precompiled artifact (what the plugin's exportBlob() wrote, or a vendor's blob). */
export function loadNpuBlob(plugin: NpuPlugin, blob: Uint8Array): NpuGraph {
  try {
    return new (binding().NpuGraph)(plugin, blob);
  } catch (err) {
    throw fromNative(err);
  }
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
