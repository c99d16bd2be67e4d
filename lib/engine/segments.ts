/**
 * Segments: a run of a Program's ops on one backend, itself a Program (its
 * inputs are the tensors earlier segments produced, its outputs the ones later
 * segments or the caller read; its arena planned anew). Native segments are
 * parsed once by the addon; TS segments run in lib/engine/ts-program.ts; NPU
 * segments are in npu-segment.ts.
 */
import type { NativeAddon, SparsePolicy } from '../backends/native/addon';
import { fromNative } from '../errors';
import { applyArena, opTensors } from './arena';
import type { Program, ProgramOp, ProgramTensor } from './program';
import { TsProgram } from './ts-program';

export type Backend = 'npu' | 'native' | 'ts';

/** The op fields (program.ts) that name one tensor. */
const TENSOR_FIELDS = ['x', 'y', 'a', 'b', 'weight', 'bias', 'scales', 'multipliers', 'shifts', 'table'];

export interface Segment {
  backend: Backend;
  program: Program;
  /** Root tensor indices of the whole program this segment reads and writes at its boundary. */
  inputs: number[];
  outputs: number[];
  /** Per op, its kernel ('dense-avx2', 'depthwise-avx2', 'dense-ts', ...). */
  kernels?: Array<string | undefined>;
  runSync(xs: Float32Array[], batch: number): Float32Array[];
  run(xs: Float32Array[], batch: number): Promise<Float32Array[]>;
  /** Frees native memory (programs, NPU graphs) now rather than at some GC; the segment is unusable after. */
  release?(): void;
}

/** Per root tensor, the index of the last op that reads it (p.ops.length for the program's outputs). */
export function lastReads(p: Program): Map<number, number> {
  const root = (t: number) => p.tensors[t].alias ?? t;
  const last = new Map<number, number>();
  p.ops.forEach((op, i) => {
    for (const t of opTensors(op).reads) last.set(root(t), i);
  });
  for (const o of p.outputs) last.set(root(o.tensor), p.ops.length);
  return last;
}

/**
 * The sub-Program of ops [from, to) of `p`: boundary inputs are the roots it reads but does
 * not write, outputs the roots it writes that a later op or the caller reads (`last`, from
 * lastReads(p): pass it when cutting many sub-Programs, so each costs its own ops only).
 */
export function subProgram(
  p: Program,
  from: number,
  to: number,
  last: Map<number, number> = lastReads(p),
): { program: Program; inputs: number[]; outputs: number[] } {
  const root = (t: number) => p.tensors[t].alias ?? t;
  const ops = p.ops.slice(from, to);
  const used = new Set<number>();
  const written = new Set<number>();
  for (const op of ops) {
    const { reads, writes } = opTensors(op);
    for (const t of reads) used.add(t);
    for (const t of writes) {
      used.add(t);
      written.add(root(t));
    }
  }
  const inputs = [...new Set([...used].map(root))].filter((r) => !p.tensors[r].data && !written.has(r));
  const outputs = [...written].filter((r) => (last.get(r) ?? -1) >= to);
  const index = new Map<number, number>();
  const tensors: ProgramTensor[] = [];
  const add = (t: number): number => {
    if (index.has(t)) return index.get(t)!;
    const src = p.tensors[t];
    const alias = src.alias !== undefined ? add(src.alias) : undefined;
    const { offset: _o, alias: _a, ...rest } = src;
    tensors.push(alias !== undefined ? { ...rest, alias } : rest);
    index.set(t, tensors.length - 1);
    return tensors.length - 1;
  };
  for (const t of used) add(t);
  for (const r of [...inputs, ...outputs]) add(r);
  const remap = (op: ProgramOp): ProgramOp => {
    const m = (t: number) => index.get(t)!;
    const o = { ...op } as Record<string, unknown>;
    for (const key of TENSOR_FIELDS) if (typeof o[key] === 'number') o[key] = m(o[key] as number);
    if (Array.isArray(o.inputs)) o.inputs = (o.inputs as number[]).map(m);
    if (Array.isArray(o.outputs)) o.outputs = (o.outputs as number[]).map(m);
    return o as unknown as ProgramOp;
  };
  const io = (r: number) => ({ name: p.tensors[r].name, tensor: index.get(r)!, shape: p.tensors[r].shape });
  const program = applyArena({ tensors, ops: ops.map(remap), inputs: inputs.map(io), outputs: outputs.map(io) });
  return { program: { name: p.name, ...program }, inputs, outputs };
}

export function tsSegment(sub: ReturnType<typeof subProgram>, sparse?: SparsePolicy): Segment {
  const exec = new TsProgram(sub.program, sparse);
  return {
    backend: 'ts',
    ...sub,
    kernels: exec.kernels,
    runSync: (xs, batch) => exec.run(xs, batch),
    run: (xs, batch) => exec.runAsync(xs, batch),
  };
}

export function nativeSegment(
  addon: NativeAddon,
  sub: ReturnType<typeof subProgram>,
  kernel?: string,
  threads?: number,
  sparse?: SparsePolicy,
): Segment {
  let exec;
  try {
    exec = new addon.Program(sub.program, kernel, threads, sparse);
  } catch (err) {
    throw fromNative(err, 'building the native program');
  }
  return {
    backend: 'native',
    ...sub,
    kernels: exec.opKernels.map((k) => k || undefined),
    runSync: (xs, batch) => {
      try {
        return exec.runSync(xs, batch);
      } catch (err) {
        throw fromNative(err, 'native inference');
      }
    },
    run: (xs, batch) => exec.run(xs, batch).catch((err: unknown) => Promise.reject(fromNative(err, 'native inference'))),
    release: () => exec.release(),
  };
}
