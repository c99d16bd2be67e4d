/**
 * The arena planner: one block of memory per model (per image; a batch of N
 * scales every offset by N), in which each activation tensor gets a 64-byte
 * aligned slot for the ops between the one that writes it and the last one
 * that reads it (or a view of it). Slots whose lifetimes do not overlap share
 * memory; an op that may run in place (program.ts: unary, softmax, binary over
 * an operand read at y's own positions) writes over an input that dies there.
 * Placement is greedy by size (largest first, lowest offset that fits among the
 * slots live at the same time), as TFLite's arena planner does; the report
 * gives the liveness lower bound next to the planned size.
 */
import type { Program, ProgramOp, ProgramTensor } from './program';

export const ARENA_ALIGN = 64;
const align = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/** Tensors an op reads and writes. */
export function opTensors(op: ProgramOp): { reads: number[]; writes: number[] } {
  switch (op.op) {
    case 'conv':
    case 'dense':
      return { reads: [op.x, op.weight, ...(op.bias !== undefined ? [op.bias] : [])], writes: [op.y] };
    case 'groupnorm':
      return { reads: [op.x, op.weight, op.bias], writes: [op.y] };
    case 'qdense':
      return { reads: [op.x, op.weight, op.scales, ...(op.bias !== undefined ? [op.bias] : [])], writes: [op.y] };
    case 'binary':
      return { reads: [op.a, op.b], writes: [op.y] };
    case 'concat':
    case 'qconcat':
      return { reads: op.inputs, writes: [op.y] };
    case 'qconv':
      return { reads: [op.x, op.weight, op.bias, op.multipliers, op.shifts], writes: [op.y] };
    case 'qlut':
      return { reads: [op.x, op.table], writes: [op.y] };
    case 'qbinary':
      return { reads: [op.a, op.b], writes: [op.y] };
    case 'split':
      return { reads: [op.x], writes: op.outputs };
    default:
      return { reads: [op.x], writes: [op.y] };
  }
}

const contiguous = (shape: number[]) => {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
};

/** The inputs this op may overwrite with its output (program.ts). */
function inPlaceCandidates(op: ProgramOp): number[] {
  if (op.op === 'unary' || op.op === 'softmax') return [op.x];
  if (op.op !== 'binary') return [];
  const want = contiguous(op.shape);
  const same = (strides: number[]) => strides.every((s, i) => op.shape[i] === 1 || s === want[i]);
  return [...(same(op.aStrides) ? [op.a] : []), ...(same(op.bStrides) ? [op.b] : [])];
}

export interface ArenaPlan {
  offsets: Map<number, number>;
  arenaBytes: number;
  liveBytesBound: number;
}

/** Tensors held in the caller's buffers: program inputs and the roots of outputs. */
export function externalTensors(p: Pick<Program, 'tensors' | 'inputs' | 'outputs'>): Set<number> {
  const root = (t: number) => p.tensors[t].alias ?? t;
  return new Set([...p.inputs.map((i) => root(i.tensor)), ...p.outputs.map((o) => root(o.tensor))]);
}

/** Plans offsets for every arena tensor of `p`; returns them with the planned size and the bound. */
export function planArena(p: Pick<Program, 'tensors' | 'ops' | 'inputs' | 'outputs'>): ArenaPlan {
  const { tensors, ops } = p;
  const root = (t: number) => tensors[t].alias ?? t;
  const external = externalTensors(p);
  const isArena = (t: number) => {
    const r = root(t);
    return !tensors[r].data && !external.has(r);
  };
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  ops.forEach((op, i) => {
    const { reads, writes } = opTensors(op);
    for (const t of writes) if (isArena(t) && !first.has(root(t))) first.set(root(t), i);
    for (const t of [...reads, ...writes]) if (isArena(t)) last.set(root(t), i);
  });
  // In place: the output joins the group of an input whose group ends at this op.
  const group = new Map<number, number>();
  const find = (t: number): number => {
    let g = t;
    while (group.has(g) && group.get(g) !== g) g = group.get(g)!;
    return g;
  };
  const groupEnd = new Map<number, number>();
  for (const t of first.keys()) {
    group.set(t, t);
    groupEnd.set(t, last.get(t)!);
  }
  ops.forEach((op, i) => {
    const y = opTensors(op).writes[0];
    if (!isArena(y) || first.get(root(y)) !== i) return;
    for (const x of inPlaceCandidates(op)) {
      if (!isArena(x)) continue;
      const gx = find(root(x));
      if (gx === find(root(y)) || groupEnd.get(gx) !== i || tensors[root(x)].bytes !== tensors[root(y)].bytes) continue;
      group.set(root(y), gx);
      groupEnd.set(gx, Math.max(i, last.get(root(y))!));
      return;
    }
  });
  const slots = new Map<number, { start: number; end: number; size: number; offset: number }>();
  for (const t of first.keys()) {
    const g = find(t);
    const size = align(tensors[t].bytes ?? 0);
    const s = slots.get(g) ?? { start: Infinity, end: -Infinity, size: 0, offset: 0 };
    s.start = Math.min(s.start, first.get(t)!);
    s.end = Math.max(s.end, groupEnd.get(g)!, last.get(t)!);
    s.size = Math.max(s.size, size);
    slots.set(g, s);
  }
  const list = [...slots.values()];
  let liveBytesBound = 0;
  for (let i = 0; i < ops.length; i++) {
    let live = 0;
    for (const s of list) if (s.start <= i && i <= s.end) live += s.size;
    liveBytesBound = Math.max(liveBytesBound, live);
  }
  const placed: typeof list = [];
  let arenaBytes = 0;
  for (const s of [...list].sort((a, b) => b.size - a.size || a.start - b.start)) {
    const busy = placed.filter((o) => o.start <= s.end && s.start <= o.end).sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const o of busy) {
      if (offset + s.size <= o.offset) break;
      offset = Math.max(offset, o.offset + o.size);
    }
    s.offset = offset;
    placed.push(s);
    arenaBytes = Math.max(arenaBytes, offset + s.size);
  }
  const offsets = new Map<number, number>();
  for (const t of first.keys()) offsets.set(t, slots.get(find(t))!.offset);
  return { offsets, arenaBytes, liveBytesBound };
}

/** Writes the plan into the program's tensors (views take their root's offset) and totals. */
export function applyArena<P extends Pick<Program, 'tensors' | 'ops' | 'inputs' | 'outputs'>>(
  p: P,
): P & { arenaBytes: number; liveBytesBound: number } {
  const plan = planArena(p);
  const tensors: ProgramTensor[] = p.tensors.map((t, i) => {
    const { offset: _drop, ...rest } = t;
    const r = t.alias ?? i;
    const offset = plan.offsets.get(r);
    return offset === undefined ? rest : { ...rest, offset };
  });
  return { ...p, tensors, arenaBytes: plan.arenaBytes, liveBytesBound: plan.liveBytesBound };
}
