/**
 * A run of ops compiled on the NPU (a chain: one input, one output). When
 * execute fails (an error or an output of the wrong size), the request is
 * re-run on a CPU twin of the same ops, so the caller still gets the right
 * answer, and `onFailure` marks the plugin unhealthy (or, with strict, turns
 * the failure into the caller's error).
 */
import type { NpuGraph } from '../backends/npu';
import { fromNative } from '../errors';
import type { Segment, subProgram } from './segments';

/** Shared by every NPU segment of one engine: after one execute failure, all go to the CPU. */
export interface NpuHealth {
  healthy: boolean;
  reason?: string;
}

export function npuSegment(
  graph: NpuGraph,
  sub: ReturnType<typeof subProgram>,
  makeCpu: () => Segment,
  health: NpuHealth,
  // Records the failure; throws when the engine is strict.
  onFailure: (err: unknown) => void,
): Segment {
  let cpu: Segment | undefined;
  const cpuTwin = () => (cpu ??= makeCpu());
  return {
    backend: 'npu',
    ...sub,
    runSync(xs, batch) {
      if (!health.healthy) return cpuTwin().runSync(xs, batch);
      try {
        return [graph.runSync(xs[0], batch)];
      } catch (err) {
        onFailure(fromNative(err, 'NPU execute'));
        return cpuTwin().runSync(xs, batch);
      }
    },
    async run(xs, batch) {
      if (!health.healthy) return cpuTwin().run(xs, batch);
      try {
        return [await graph.run(xs[0], batch)];
      } catch (err) {
        onFailure(fromNative(err, 'NPU execute'));
        return cpuTwin().run(xs, batch);
      }
    },
    release() {
      graph.release();
      cpu?.release?.();
    },
  };
}
