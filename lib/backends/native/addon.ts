/**
 * Loads the native addon (a prebuilt binary from prebuilds/, else a local
 * build in build/Release) and describes it. When nothing loads, `reason` says
 * why and how to get a binary; everything then runs on the TS backend.
 */
import * as path from 'node:path';
import type { Activation, BinaryOp, Program } from '../../engine/program';
import type { ConvShape, PoolShape } from '../ts/cnn';
import type { RowQuantized, SymmetricQuantized } from '../types';

/** 'auto': sparse kernels where the measured crossover says they are faster; 'always' / 'never' force. */
export type SparsePolicy = 'auto' | 'always' | 'never';

/** A Program compiled by the native core (native/addon/program_wrap.cc): weights packed once. */
export interface NativeProgram {
  readonly kernel: string;
  readonly threads: number;
  /** Per op, the kernel it runs ('dense-avx2', 'sparse-avx2', 'depthwise-avx2', 'im2col-avx2', ...; '' when there is no choice). */
  readonly opKernels: string[];
  /**
   * Barriers per run when the program runs as a team (every pool thread runs each op's share of
   * output pixels, native/core/program_team.h); -1 when it runs op by op (one thread, or an op
   * that cannot take part).
   */
  readonly teamBarriers: number;
  /** One Float32Array per program input (batch x its per-image size); one per output back. */
  runSync(inputs: Float32Array[], batch: number): Float32Array[];
  run(inputs: Float32Array[], batch: number): Promise<Float32Array[]>;
  /** Seconds spent in each op over `repeats` synchronous runs (the per-op profile of `npm run bench -- compare`). */
  profile(inputs: Float32Array[], batch: number, repeats: number): Float64Array;
  /** Frees the native memory now; in-flight runs finish first. Later calls are E_STATE. */
  release(): void;
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
  /** Native bytes V8 has been told about in this isolate (AdjustExternalMemory): programs report their constants. */
  externalMemory(): number;
  /** Parses and validates the Program once (E_FORMAT / E_SHAPE for a bad one), packs its weights. */
  Program: new (program: Program, kernel?: string, threads?: number, sparse?: SparsePolicy) => NativeProgram;
  /** The Program ops the native executor runs with this kernel table (the rest go to TypeScript). */
  nativeProgramOps(kernel?: string): string[];
  /** The NPU plugin host (native/addon/npu_wrap.cc); typed in lib/backends/npu.ts. */
  npu: unknown;
  /** The CNN kernels one call at a time (native/addon/cnn_wrap.cc), for tests; wrapped by lib/backends/native/cnn.ts. */
  cnn: NativeCnnExports;
}

/** native/addon/cnn_wrap.cc: each call packs/allocates, runs one kernel table (default: the active one), returns new arrays. */
export interface NativeCnnExports {
  conv(
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array | null,
    shape: ConvShape,
    act: Activation,
    batch: number,
    kernel?: string,
    threads?: number,
  ): Float32Array;
  pool(kind: 'maxpool' | 'avgpool', x: Float32Array, shape: PoolShape, batch: number, kernel?: string): Float32Array;
  globalPool(
    kind: 'globalmaxpool' | 'globalavgpool',
    x: Float32Array,
    pixels: number,
    c: number,
    batch: number,
    kernel?: string,
  ): Float32Array;
  binary(
    fn: BinaryOp['fn'],
    a: Float32Array,
    b: Float32Array,
    shape: readonly number[],
    aStrides: readonly number[],
    bStrides: readonly number[],
    act: Activation,
    kernel?: string,
  ): Float32Array;
  activation(x: Float32Array, act: Activation, kernel?: string): Float32Array;
  softmax(x: Float32Array, outer: number, axis: number, inner: number, kernel?: string): Float32Array;
  reduceMean(x: Float32Array, outer: number, axis: number, inner: number, kernel?: string): Float32Array;
  lrn(x: Float32Array, pixels: number, c: number, size: number, alpha: number, beta: number, bias: number, kernel?: string): Float32Array;
  concat(inputs: readonly Float32Array[], sizes: readonly number[], outer: number, kernel?: string): Float32Array;
  split(x: Float32Array, sizes: readonly number[], outer: number, kernel?: string): Float32Array[];
  pad(
    x: Float32Array,
    inShape: readonly number[],
    begin: readonly number[],
    end: readonly number[],
    value: number,
    kernel?: string,
  ): Float32Array;
  transpose(x: Float32Array, inShape: readonly number[], perm: readonly number[], kernel?: string): Float32Array;
}

/** The package root: lib/backends/native (sources) and dist/backends/native (build) are both 3 deep. */
export const packageRoot = path.resolve(__dirname, '..', '..', '..');

const HOW_TO_BUILD =
  'to build one, run `npm rebuild edgeopt` (or `npx node-gyp rebuild` in the package folder); ' +
  'it needs python3, make and a C++17 compiler';

/** isaError: EDGEOPT_ISA names a table this binary lacks or this CPU cannot run (a setting that cannot be honoured). */
export type AddonLoad =
  { addon: NativeAddon; reason?: undefined; isaError?: undefined } | { addon: null; reason: string; isaError?: string };

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
    const e = err as { code?: string; message: string };
    const reason = `the native binary loaded but cannot run: ${e.message}`;
    return e.code === 'E_ISA' ? { addon: null, reason, isaError: e.message } : { addon: null, reason };
  }
  return { addon };
}

let cached: AddonLoad | undefined;

/** The addon, loaded once per process (per worker thread). */
export function loadAddon(): AddonLoad {
  cached ??= load();
  return cached;
}
