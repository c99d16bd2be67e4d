/**
 * Step runners: the TS runner executes steps with the TS kernels; the native
 * runner hands a run of steps to one native Plan (weights packed once, in C++).
 */
import { EdgeOptError, fromNative } from '../errors';
import type { NativeAddon, NativeLayerSpec, NativePlan } from '../backends/native/addon';
import { biasActF32, softmaxRows, tsKernels } from '../backends/ts/kernels';
import { runQDense } from './qdense';
import type { Step, TsActivation } from './steps';

const ACTIVATION_FNS: Record<TsActivation, (v: number) => number> = {
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  relu6: (v) => (v < 0 ? 0 : v > 6 ? 6 : v),
};

export interface Segment {
  backend: 'native' | 'ts';
  steps: Step[];
  inputFeatures: number;
  outputFeatures: number;
  runSync(x: Float32Array, rows: number): Float32Array;
  run(x: Float32Array, rows: number): Promise<Float32Array>;
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

/** Large batches yield to the event loop between steps, so timers and I/O keep running. */
const YIELD_WORK = 1 << 20;

export function tsSegment(steps: Step[], inputFeatures: number): Segment {
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
      if (rows * width >= YIELD_WORK) await new Promise((r) => setImmediate(r));
      cur = runStep(s, cur, rows, width);
      width = stepWidth(s, width);
    }
    return cur;
  };
  return { backend: 'ts', steps, inputFeatures, outputFeatures, runSync, run };
}

function layerSpec(s: Step): NativeLayerSpec {
  switch (s.kind) {
    case 'dense':
      return { op: 'dense', n: s.n, k: s.k, weight: s.weight, bias: s.bias ?? undefined, relu: s.relu };
    case 'qdense':
      return { op: 'qdense', n: s.n, k: s.k, weight: s.weight, scales: s.scales, zeroPoint: s.zeroPoint, groupSize: s.groupSize, bias: s.bias ?? undefined, relu: s.relu };
    case 'activation': // the engine keeps models with these steps on TS (nativeUnsupported)
      throw new EdgeOptError('E_NATIVE', `node '${s.node}': the native core has no ${s.fn} activation`);
    default:
      return { op: s.kind };
  }
}

export function nativeSegment(addon: NativeAddon, steps: Step[], inputFeatures: number, kernel?: string): Segment {
  let plan: NativePlan;
  try {
    plan = new addon.Plan(steps.map(layerSpec), kernel);
  } catch (err) {
    throw fromNative(err, 'building the native plan');
  }
  return {
    backend: 'native',
    steps,
    inputFeatures,
    outputFeatures: plan.outputFeatures,
    runSync: (x, rows) => {
      try {
        return plan.runSync(x, rows);
      } catch (err) {
        throw fromNative(err, 'native inference');
      }
    },
    run: (x, rows) => plan.run(x, rows).catch((err: unknown) => Promise.reject(fromNative(err, 'native inference'))),
  };
}
