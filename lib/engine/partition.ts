/**
 * Graph partitioning, as ONNX Runtime execution providers and TFLite delegates
 * do it: the NPU plugin is asked about every step, maximal runs of supported
 * steps become one compiled NPU graph each, and the rest runs on the native
 * CPU core (or on TypeScript when no native binary loads, or for TS-only
 * steps). Every step that does not land on the preferred backend carries the
 * reason, which the engine reports through placement() and 'fallback' events.
 */
import type { NativeAddon, SparsePolicy } from '../backends/native/addon';
import { compileNpuGraph, type NpuPlugin } from '../backends/npu';
import { EdgeOptError } from '../errors';
import { npuSegment, type NpuHealth } from './npu-segment';
import { type Backend, layerSpec, nativeSegment, type Segment, stepInputWidths, tsSegment } from './runners';
import { nativeUnsupported, type Step } from './steps';

/** Rows per execute() a static-shape NPU graph is compiled for; the host chunks larger batches. */
export const NPU_BATCH = 16;

export interface StepPlacement {
  step: Step;
  backend: Backend;
  /** Why the step is not on the preferred backend. */
  reason?: string;
  /** The CPU kernel of a Dense/QDense step ('dense-avx2', 'sparse-avx2', 'sparse-ts', ...). */
  kernel?: string;
}

export interface PartitionOptions {
  preferred: Backend;
  /** Null when native is unavailable; `nativeReason` says why. */
  addon: NativeAddon | null;
  nativeReason?: string;
  /** Why the preferred NPU is not used (no plugin configured, load failure). */
  npuUnavailable?: string;
  /** The loaded plugin when the NPU is wanted and healthy. */
  npu?: { plugin: NpuPlugin; name: string; health: NpuHealth; onFailure(err: unknown): void };
  kernel?: string;
  threads?: number;
  sparse?: SparsePolicy;
}

/** Where a step would run on the CPU side: native, or TS with the reason. */
function cpuPlacement(step: Step, o: PartitionOptions): StepPlacement {
  if (o.preferred === 'ts') return { step, backend: 'ts' };
  const tsOnly = nativeUnsupported([step]);
  if (!o.addon || tsOnly) return { step, backend: 'ts', reason: tsOnly ?? o.nativeReason ?? 'the native backend is unavailable' };
  return { step, backend: 'native' };
}

/** CPU placement when the preferred NPU is unusable: the NPU's reason comes first. */
function withoutNpu(step: Step, o: PartitionOptions): StepPlacement {
  const cpu = cpuPlacement(step, o);
  const npuReason = o.npu ? o.npu.health.reason : o.npuUnavailable;
  if (o.preferred !== 'npu' || !npuReason) return cpu;
  return { ...cpu, reason: cpu.reason ? `${npuReason}; ${cpu.reason}` : npuReason };
}

/** Asks the plugin about each step; a prefix-only plugin (partialGraphs false) stops at the first refusal. */
function npuPlacements(steps: Step[], inputFeatures: number, o: PartitionOptions): StepPlacement[] {
  const npu = o.npu!;
  const widths = stepInputWidths(steps, inputFeatures);
  const prefixOnly = !npu.plugin.info().capabilities.partialGraphs;
  let refused = false;
  return steps.map((step, i) => {
    const why = nativeUnsupported([step])
      ? 'the NPU ABI has no such activation'
      : step.kind === 'qdense' && step.output
        ? 'integer requantization to an int8 output is not in NPU ABI v1 (its layers end in the float epilogue)'
        : refused && prefixOnly
          ? 'the plugin runs only a prefix of a graph, and an earlier node stayed on the CPU'
          : npu.plugin.supports(layerSpec(step, widths[i]));
    if (why === null) return { step, backend: 'npu' };
    refused = true;
    const cpu = cpuPlacement(step, o);
    return { ...cpu, reason: `NPU plugin '${npu.name}': ${why}${cpu.reason ? `; ${cpu.reason}` : ''}` };
  });
}

/** Maximal runs of consecutive placements with the same backend. */
function runs(placed: StepPlacement[]): StepPlacement[][] {
  const out: StepPlacement[][] = [];
  for (const p of placed) {
    const last = out[out.length - 1];
    if (last && last[0].backend === p.backend) last.push(p);
    else out.push([p]);
  }
  return out;
}

function cpuSegment(steps: Step[], inputFeatures: number, backend: Backend, o: PartitionOptions): Segment {
  return backend === 'native'
    ? nativeSegment(o.addon!, steps, inputFeatures, o.kernel, o.threads, o.sparse)
    : tsSegment(steps, inputFeatures, o.sparse);
}

function withKernels(run: StepPlacement[], segment: Segment): StepPlacement[] {
  return run.map((p, i) => (segment.kernels?.[i] ? { ...p, kernel: segment.kernels[i] } : p));
}

/**
 * Splits the steps into segments. A run the plugin fails to compile moves to
 * the CPU with the plugin's message as the reason.
 */
export function partition(steps: Step[], inputFeatures: number, o: PartitionOptions): { segments: Segment[]; placed: StepPlacement[] } {
  const placed = o.npu?.health.healthy ? npuPlacements(steps, inputFeatures, o) : steps.map((s) => withoutNpu(s, o));
  const segments: Segment[] = [];
  const result: StepPlacement[] = [];
  let width = inputFeatures;
  for (const run of runs(placed)) {
    const runSteps = run.map((p) => p.step);
    let segment: Segment;
    if (run[0].backend === 'npu') {
      try {
        const widths = stepInputWidths(runSteps, width);
        const graph = compileNpuGraph(
          o.npu!.plugin,
          runSteps.map((s, i) => layerSpec(s, widths[i])),
          NPU_BATCH,
        );
        segment = npuSegment(graph, runSteps, width, () => cpuSegment(runSteps, width, 'native', o), o.npu!.health, o.npu!.onFailure);
        result.push(...run);
      } catch (err) {
        if (!(err instanceof EdgeOptError) || err.code !== 'E_PLUGIN') throw err;
        const reason = err.message; // already names the plugin and says 'compile failed'
        segment = cpuSegment(runSteps, width, 'native', o);
        result.push(
          ...withKernels(
            run.map((p) => ({ step: p.step, backend: 'native' as const, reason })),
            segment,
          ),
        );
      }
    } else {
      segment = cpuSegment(runSteps, width, run[0].backend, o);
      result.push(...withKernels(run, segment));
    }
    segments.push(segment);
    width = segment.outputFeatures;
  }
  return { segments, placed: result };
}
