/**
 * Partitioning a Program over backends, as ONNX Runtime execution providers
 * and TFLite delegates do it: the NPU plugin is asked about every op (as a
 * one-op Program), the rest runs on the native core when its binary has that
 * op's kernels, else on TypeScript. Maximal runs of ops (in the Program's
 * topological order) with one backend become segments, each a Program of its
 * own (segments.ts). Every op that does not land on the preferred backend
 * carries the reason; the engine reports it per graph node.
 */
import type { NativeAddon, SparsePolicy } from '../backends/native/addon';
import { compileNpuGraph, type NpuPlugin } from '../backends/npu';
import { EdgeOptError, fromNative } from '../errors';
import { npuSegment, type NpuHealth } from './npu-segment';
import type { Program } from './program';
import { type Backend, lastReads, nativeSegment, type Segment, subProgram, tsSegment } from './segments';

/** Rows per execute() a static-shape NPU graph is compiled for; the host chunks larger batches. */
export const NPU_BATCH = 16;

export interface OpPlacement {
  /** Index of the op in the Program. */
  op: number;
  backend: Backend;
  /** Why the op is not on the preferred backend. */
  reason?: string;
  /** The kernel it runs ('dense-avx2', 'sparse-avx2', 'depthwise-avx2', 'dense-ts', ...). */
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

/** Where an op would run on the CPU side: native when the binary has its kernels, else TS with the reason. */
function cpuPlacement(p: Program, i: number, o: PartitionOptions, nativeOps: Set<string>): OpPlacement {
  if (o.preferred === 'ts') return { op: i, backend: 'ts' };
  if (!o.addon) return { op: i, backend: 'ts', reason: o.nativeReason ?? 'the native backend is unavailable' };
  const kind = p.ops[i].op;
  if (!nativeOps.has(kind))
    return { op: i, backend: 'ts', reason: `the native binary has no ${kind} kernels for table '${o.kernel ?? 'default'}' yet` };
  return { op: i, backend: 'native' };
}

/** A Program of one op, to ask the plugin about it. */
function oneOp(p: Program, i: number, last: Map<number, number>): Program {
  return subProgram(p, i, i + 1, last).program;
}

function placements(p: Program, o: PartitionOptions): OpPlacement[] {
  let nativeOps: Set<string>;
  try {
    nativeOps = new Set(o.addon ? o.addon.nativeProgramOps(o.kernel) : []);
  } catch (err) {
    throw fromNative(err);
  }
  const npuReason = o.npu ? o.npu.health.reason : o.npuUnavailable;
  if (!o.npu?.health.healthy) {
    return p.ops.map((_, i) => {
      const cpu = cpuPlacement(p, i, o, nativeOps);
      if (o.preferred !== 'npu' || !npuReason) return cpu;
      return { ...cpu, reason: cpu.reason ? `${npuReason}; ${cpu.reason}` : npuReason };
    });
  }
  const npu = o.npu;
  const prefixOnly = !npu.plugin.info().capabilities.partialGraphs;
  const last = lastReads(p);
  let refused = false;
  return p.ops.map((_, i) => {
    const why =
      refused && prefixOnly
        ? 'the plugin runs only a prefix of a graph, and an earlier node stayed on the CPU'
        : npu.plugin.supports(oneOp(p, i, last));
    if (why === null) return { op: i, backend: 'npu' };
    refused = true;
    const cpu = cpuPlacement(p, i, o, nativeOps);
    return { ...cpu, reason: `NPU plugin '${npu.name}': ${why}${cpu.reason ? `; ${cpu.reason}` : ''}` };
  });
}

function cpuSegment(p: Program, from: number, to: number, backend: Backend, o: PartitionOptions, last: Map<number, number>): Segment {
  const sub = subProgram(p, from, to, last);
  return backend === 'native' ? nativeSegment(o.addon!, sub, o.kernel, o.threads, o.sparse) : tsSegment(sub, o.sparse);
}

/** Splits the program into segments. A run the plugin fails to compile moves to the CPU with the plugin's message as the reason. */
export function partition(p: Program, o: PartitionOptions): { segments: Segment[]; placed: OpPlacement[] } {
  const placed = placements(p, o);
  const last = lastReads(p);
  const segments: Segment[] = [];
  for (let from = 0; from < placed.length;) {
    let to = from + 1;
    while (to < placed.length && placed[to].backend === placed[from].backend) to++;
    let segment: Segment;
    if (placed[from].backend === 'npu') {
      const [begin, end] = [from, to];
      const sub = subProgram(p, begin, end, last);
      try {
        const graph = compileNpuGraph(o.npu!.plugin, sub.program, NPU_BATCH);
        segment = npuSegment(graph, sub, () => cpuSegment(p, begin, end, 'native', o, last), o.npu!.health, o.npu!.onFailure);
      } catch (err) {
        if (!(err instanceof EdgeOptError) || (err.code !== 'E_PLUGIN' && err.code !== 'E_UNSUPPORTED_OP')) throw err;
        segment = cpuSegment(p, from, to, 'native', o, last);
        for (let i = from; i < to; i++) placed[i] = { op: i, backend: 'native', reason: err.message };
      }
    } else {
      segment = cpuSegment(p, from, to, placed[from].backend, o, last);
    }
    segment.kernels?.forEach((k, j) => {
      if (k) placed[from + j].kernel = k;
    });
    segments.push(segment);
    from = to;
  }
  return { segments, placed };
}
