/**
 * Step runners: the TS runner executes steps with the TS kernels; the native
 * runner hands a run of steps to one native Plan (weights packed once, in C++).
 */
import { EdgeOptError, fromNative } from '../errors';
import type { NativeAddon, NativeLayerSpec, NativePlan, SparsePolicy } from '../backends/native/addon';
import { packCsrS8, TS_CSR_MAX_DENSITY } from '../backends/ts/sparse';
import { biasActF32, softmaxRows, tsKernels } from '../backends/ts/kernels';
import { runQDense } from './qdense';
import type { Step, TsActivation } from './steps';

const ACTIVATION_FNS: Record<TsActivation, (v: number) => number> = {
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  relu6: (v) => (v < 0 ? 0 : v > 6 ? 6 : v),
};

export type Backend = 'npu' | 'native' | 'ts';

export interface Segment {
  backend: Backend;
  steps: Step[];
  inputFeatures: number;
  outputFeatures: number;
  /** Per step, the kernel it runs (Dense/QDense steps of CPU segments). */
  kernels?: Array<string | undefined>;
  runSync(x: Float32Array, rows: number): Float32Array;
  run(x: Float32Array, rows: number): Promise<Float32Array>;
  /** Frees native memory (plans, NPU graphs) now rather than at some GC; the segment is unusable after. */
  release?(): void;
}

function stepWidth(step: Step, width: number): number {
  return step.kind === 'dense' || step.kind === 'qdense' ? step.n : width;
}

function runStep(step: Step, x: Float32Array, rows: number, width: number): Float32Array {
  const k = tsKernels;
  switch (step.kind) {
    case 'dense':
      return biasActF32(k.gemmF32(x, rows, step.k, step.weight, step.n), rows, step.n, step.bias, step.relu);
    case 'qdense':
      return runQDense(step, x, rows);
    case 'relu':
      return k.reluF32(x.slice());
    case 'softmax':
      return softmaxRows(x.slice(), rows, width);
    case 'activation':
      return x.map(ACTIVATION_FNS[step.fn]);
  }
}

/** About this many multiply-adds run between two yields to the event loop (a few ms of TS work). */
const YIELD_WORK = 1 << 21;

function stepWork(step: Step, width: number): number {
  return step.kind === 'dense' || step.kind === 'qdense' ? step.k * step.n : width;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One step over row chunks, yielding between chunks so timers and I/O keep
 * running. Every step is row-wise (per-row or per-tensor quantization), so
 * chunking never changes results.
 */
async function runStepYielding(step: Step, x: Float32Array, rows: number, width: number): Promise<Float32Array> {
  const chunk = Math.max(1, Math.floor(YIELD_WORK / stepWork(step, width)));
  if (rows <= chunk) return runStep(step, x, rows, width);
  const outWidth = stepWidth(step, width);
  const out = new Float32Array(rows * outWidth);
  for (let r = 0; r < rows; r += chunk) {
    await yieldToLoop();
    const m = Math.min(chunk, rows - r);
    out.set(runStep(step, x.subarray(r * width, (r + m) * width), m, width), r * outWidth);
  }
  return out;
}

/** A QDense step with its CSR packing when the policy picks it (per-group-scaled layers stay dense). */
function withTsSparse(step: Step, sparse: SparsePolicy): Step {
  if (step.kind !== 'qdense' || step.groupSize || sparse === 'never') return step;
  const csr = packCsrS8(step.weight, step.n, step.k);
  return sparse === 'always' || csr.density <= TS_CSR_MAX_DENSITY ? { ...step, csr } : step;
}

function tsKernelName(s: Step): string | undefined {
  if (s.kind === 'qdense') return s.csr ? 'sparse-ts' : 'dense-ts';
  return s.kind === 'dense' ? 'dense-ts' : undefined;
}

export function tsSegment(placedSteps: Step[], inputFeatures: number, sparse: SparsePolicy = 'auto'): Segment {
  const steps = placedSteps.map((s) => withTsSparse(s, sparse));
  const outputFeatures = steps.reduce((w, s) => stepWidth(s, w), inputFeatures);
  const runSync = (x: Float32Array, rows: number) => {
    let cur = x;
    let width = inputFeatures;
    for (const s of steps) {
      cur = runStep(s, cur, rows, width);
      width = stepWidth(s, width);
    }
    return cur;
  };
  const run = async (x: Float32Array, rows: number) => {
    let cur = x;
    let width = inputFeatures;
    for (const s of steps) {
      cur = await runStepYielding(s, cur, rows, width);
      width = stepWidth(s, width);
    }
    return cur;
  };
  return { backend: 'ts', steps: placedSteps, inputFeatures, outputFeatures, kernels: steps.map(tsKernelName), runSync, run };
}

/** The addon's layer spec of a step; `width` (its input width) sizes Relu/Softmax for NPU plugins. */
export function layerSpec(s: Step, width = 0, sparse?: SparsePolicy): NativeLayerSpec {
  switch (s.kind) {
    case 'dense':
      return { op: 'dense', name: s.node, n: s.n, k: s.k, weight: s.weight, bias: s.bias ?? undefined, relu: s.relu };
    case 'qdense':
      return {
        op: 'qdense',
        name: s.node,
        n: s.n,
        k: s.k,
        weight: s.weight,
        scales: s.scales,
        zeroPoint: s.zeroPoint,
        groupSize: s.groupSize,
        bias: s.bias ?? undefined,
        relu: s.relu,
        ...(sparse ? { sparse } : {}),
        ...(s.input
          ? { activationQuant: 'static', inputScale: s.input.scale, inputZeroPoint: s.input.zeroPoint }
          : { activationQuant: 'dynamic' }),
        ...(s.output ? { outputScale: s.output.scale, outputZeroPoint: s.output.zeroPoint } : {}),
      };
    case 'activation': // the engine keeps models with these steps on TS (nativeUnsupported)
      throw new EdgeOptError('E_NATIVE', `node '${s.node}': the native core has no ${s.fn} activation`);
    default:
      return { op: s.kind, name: s.node, n: width, k: width };
  }
}

/** Each step's input width, given the segment's input width. */
export function stepInputWidths(steps: Step[], inputFeatures: number): number[] {
  const widths: number[] = [];
  steps.reduce((w, s) => (widths.push(w), stepWidth(s, w)), inputFeatures);
  return widths;
}

export function nativeSegment(
  addon: NativeAddon,
  steps: Step[],
  inputFeatures: number,
  kernel?: string,
  threads?: number,
  sparse?: SparsePolicy,
): Segment {
  let plan: NativePlan;
  try {
    plan = new addon.Plan(
      steps.map((s) => layerSpec(s, 0, sparse)),
      kernel,
      threads,
    );
  } catch (err) {
    throw fromNative(err, 'building the native plan');
  }
  return {
    backend: 'native',
    steps,
    inputFeatures,
    outputFeatures: plan.outputFeatures,
    kernels: plan.layerKernels.map((k) => k || undefined),
    runSync: (x, rows) => {
      try {
        return plan.runSync(x, rows);
      } catch (err) {
        throw fromNative(err, 'native inference');
      }
    },
    run: (x, rows) => plan.run(x, rows).catch((err: unknown) => Promise.reject(fromNative(err, 'native inference'))),
    release: () => plan.release(),
  };
}
