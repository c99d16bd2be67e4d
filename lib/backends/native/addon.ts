/**
 * Loads the native addon (a prebuilt binary from prebuilds/, else a local
 * build in build/Release) and describes it. When nothing loads, `reason` says
 * why and how to get a binary; everything then runs on the TS backend.
 */
import * as path from 'node:path';
import type { RowQuantized, SymmetricQuantized } from '../types';

export interface NativeLayerSpec {
  op: 'dense' | 'qdense' | 'relu' | 'softmax';
  n?: number;
  k?: number;
  weight?: Float32Array | Int8Array;
  scales?: Float32Array;
  zeroPoint?: number;
  groupSize?: number;
  bias?: Float32Array;
  relu?: boolean;
  /** Static int8 input quantization (QDense attrs activationQuant/inputScale/inputZeroPoint); NPU layers also carry a name. */
  activationQuant?: 'static' | 'dynamic';
  inputScale?: number;
  /** Static int8 output by integer requantization (QDense attrs outputScale/outputZeroPoint). */
  outputScale?: number;
  outputZeroPoint?: number;
  inputZeroPoint?: number;
  name?: string;
  /** Dense or sparse int8 kernels (native/core/sparse.h); default 'auto'. */
  sparse?: SparsePolicy;
}

/** 'auto': sparse kernels where the measured crossover says they are faster; 'always' / 'never' force. */
export type SparsePolicy = 'auto' | 'always' | 'never';

export interface NativePlan {
  readonly inputFeatures: number;
  readonly outputFeatures: number;
  readonly kernel: string;
  /** Per layer, the kernel it runs ('dense-avx2', 'sparse-avx2', 'sparsewin-avx2<8/dense-avx2', ...; '' for Relu/Softmax). */
  readonly layerKernels: string[];
  runSync(x: Float32Array, rows: number): Float32Array;
  run(x: Float32Array, rows: number): Promise<Float32Array>;
}

/** The addon's exports (native/addon/addon.cc). */
export interface NativeAddon {
  /** tables: every table of the binary, with the CPU features this CPU lacks for it (empty: runnable). */
  info(): { kernel: string; kernels: string[]; isa: string[]; tables: { name: string; missing: string[] }[]; notes: string[] };
  gemmU8S8(a: Uint8Array, zp: Int32Array, m: number, k: number, w: Int8Array, n: number, kernel?: string): Int32Array;
  gemmF32(x: Float32Array, m: number, k: number, w: Float32Array, n: number, kernel?: string): Float32Array;
  epilogueS32(
    c: Int32Array,
    m: number,
    n: number,
    aScale: Float32Array,
    wScale: Float32Array,
    bias: Float32Array | null,
    relu: boolean,
    kernel?: string,
  ): Float32Array;
  quantizeRowsU8(x: Float32Array, m: number, k: number, kernel?: string): RowQuantized;
  quantizeSymmetric(w: Float32Array, n: number, k: number, bits: number, perChannel: boolean): SymmetricQuantized;
  dequantizeS8(q: Int8Array, n: number, k: number, scales: Float32Array): Float32Array;
  pruneMask(w: Float32Array, pruneCount: number): { keep: Uint8Array; threshold: number };
  reluF32(x: Float32Array, kernel?: string): Float32Array;
  /** Index of the first NaN or +-Infinity in x, or -1. */
  firstNonFinite(x: Float32Array): number;
  Plan: new (layers: NativeLayerSpec[], kernel?: string, threads?: number) => NativePlan;
  /** The NPU plugin host (native/addon/npu_wrap.cc); typed in lib/backends/npu.ts. */
  npu: unknown;
}

/** The package root: lib/backends/native (sources) and dist/backends/native (build) are both 3 deep. */
export const packageRoot = path.resolve(__dirname, '..', '..', '..');

const HOW_TO_BUILD =
  'to build one, run `npm rebuild edgeopt` (or `npx node-gyp rebuild` in the package folder); ' +
  'it needs python3, make and a C++17 compiler';

export type AddonLoad = { addon: NativeAddon; reason?: undefined } | { addon: null; reason: string };

function load(): AddonLoad {
  if (process.env.EDGEOPT_FORCE_TS === '1') return { addon: null, reason: 'EDGEOPT_FORCE_TS=1 forces the TypeScript backend' };
  let addon: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require('node-gyp-build')(packageRoot) as NativeAddon;
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    return { addon: null, reason: `no native binary loaded for ${process.platform}-${process.arch} (${msg}); ${HOW_TO_BUILD}` };
  }
  try {
    addon.info(); // throws E_ISA for a bad EDGEOPT_ISA
  } catch (err) {
    return { addon: null, reason: `the native binary loaded but cannot run: ${(err as Error).message}` };
  }
  return { addon };
}

let cached: AddonLoad | undefined;

/** The addon, loaded once per process (per worker thread). */
export function loadAddon(): AddonLoad {
  cached ??= load();
  return cached;
}
