/**
 * The kernel interface both backends implement with the same numerics
 * (ARCHITECTURE.md, "Numerics contract"). Weights are [n][k], output-channel major.
 */
export interface RowQuantized {
  q: Uint8Array;
  scale: Float32Array;
  zeroPoint: Int32Array;
}

export interface SymmetricQuantized {
  q: Int8Array;
  scales: Float32Array;
}

export interface Kernels {
  /** Kernel table name: 'ts', or the native table ('scalar', 'avx2', ...). */
  readonly name: string;
  /** C[m][n] = sum_k (A[m][k] - zp[m]) * W[n][k], exact int32. */
  gemmU8S8(a: Uint8Array, zeroPoint: Int32Array, m: number, k: number, w: Int8Array, n: number): Int32Array;
  /** Y[m][n] = sum_k X[m][k] * W[n][k] in float32. */
  gemmF32(x: Float32Array, m: number, k: number, w: Float32Array, n: number): Float32Array;
  /** Y = relu?(float(C) * (aScale[m] * wScale[n]) + bias[n]); wScale has n or 1 entries. */
  epilogueS32(
    c: Int32Array,
    m: number,
    n: number,
    aScale: Float32Array,
    wScale: Float32Array,
    bias: Float32Array | null,
    relu: boolean,
  ): Float32Array;
  /** Dynamic asymmetric uint8 quantization, one scale/zero point per row. */
  quantizeRowsU8(x: Float32Array, m: number, k: number): RowQuantized;
  /** Symmetric quantization of W[n][k] to `bits`, per output channel or per tensor. */
  quantizeSymmetric(w: Float32Array, n: number, k: number, bits: number, perChannel: boolean): SymmetricQuantized;
  /** w = q * scale. */
  dequantizeS8(q: Int8Array, n: number, k: number, scales: Float32Array): Float32Array;
  /** Keep-mask pruning exactly `pruneCount` smallest |w|, ties by lower index. */
  pruneMask(w: Float32Array, pruneCount: number): { keep: Uint8Array; threshold: number };
  /** In-place ReLU; returns x. */
  reluF32(x: Float32Array): Float32Array;
}

/** What `backendInfo()` reports. */
export interface BackendInfo {
  /** True when the native addon loaded (and EDGEOPT_FORCE_TS is not set). */
  native: boolean;
  /** Why native is not used, and how to get it. */
  reason?: string;
  /** CPU features the native core detected (empty without native). */
  isa: string[];
  /** The kernel table in use: 'ts' or a native table name. */
  kernel: string;
  /** Every kernel table this machine can run (native ones and 'ts'). */
  kernels: string[];
  /** The native tables this machine cannot run, each with the CPU features it lacks (empty without native). */
  unavailable: { name: string; missing: string[] }[];
  /** What the choice of table should tell you, e.g. an OS that refused a feature the CPU has (AMX tiles). */
  notes: string[];
}
