/**
 * A run of steps compiled on the NPU. When execute fails (an error or an
 * output of the wrong size), the request is re-run on a CPU twin of the same
 * steps, so the caller still gets the right answer, and `onFailure` marks the
 * plugin unhealthy (or, with strict, turns the failure into the caller's error).
 */
import type { NpuGraph } from '../backends/npu';
import { fromNative } from '../errors';
import type { Segment } from './runners';
import type { Step } from './steps';

/** Shared by every NPU segment of one engine: after one execute failure, all go to the CPU. */
export interface NpuHealth {
  healthy: boolean;
  reason?: string;
}

export function npuSegment(
  graph: NpuGraph,
  steps: Step[],
  inputFeatures: number,
  makeCpu: () => Segment,
  health: NpuHealth,
  // Records the failure; throws when the engine is strict.
  onFailure: (err: unknown) => void,
): Segment {
  let cpu: Segment | undefined;
  const cpuTwin = () => (cpu ??= makeCpu());
  const outputFeatures = graph.describe().outputFeatures;
  return {
    backend: 'npu',
    steps,
    inputFeatures,
    outputFeatures,
    runSync(x, rows) {
      if (!health.healthy) return cpuTwin().runSync(x, rows);
      try {
        return graph.runSync(x, rows);
      } catch (err) {
        onFailure(fromNative(err, 'NPU execute'));
        return cpuTwin().runSync(x, rows);
      }
    },
    async run(x, rows) {
      if (!health.healthy) return cpuTwin().run(x, rows);
      try {
        return await graph.run(x, rows);
      } catch (err) {
        onFailure(fromNative(err, 'NPU execute'));
        return cpuTwin().run(x, rows);
      }
    },
    release() {
      graph.release();
      cpu?.release?.();
    },
  };
}
