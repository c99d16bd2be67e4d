/**
 * Running a partitioned Program: its segments one after another over a batch,
 * on the calling thread (runSync) or off it (run). What the engine promises
 * about a call lives here:
 * - the caller's input is read when the call is made, as one native call reads
 *   it: the async path works on a copy whenever anything would read the input
 *   after an await (a later segment, TypeScript ops, an NPU segment's CPU twin),
 *   so the caller may reuse its array as soon as it has the promise;
 * - except for large batches, which stream in blocks of about STREAM_BYTES
 *   (inputs, outputs and arena per block), each block a trip through libuv's
 *   pool and read when its trip starts: neither memory nor the event loop pays
 *   for a copy of the whole batch, and the caller keeps the input unchanged
 *   until the promise settles (README: "Large batches");
 * - a NaN or an infinity in an output is E_VALUE (finite inputs near float32
 *   max overflow a layer's sums), never a silent result;
 * - inline calls (small work on the calling thread) give the event loop a turn
 *   when it has had none for INLINE_TURN_MS, so `await infer()` in a loop does
 *   not starve timers and I/O.
 */
import { firstNonFinite } from '../backends/finite';
import { EdgeOptError } from '../errors';
import type { Program } from './program';
import type { Segment } from './segments';

/** Bytes of input, output and arena per block of a streamed batch. */
export const STREAM_BYTES = 16 << 20;
/** The longest the inline path runs without letting the event loop turn. */
export const INLINE_TURN_MS = 2;

const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export interface Executable {
  id: string;
  program: Program;
  segments: Segment[];
}

/** Images per block when a batch is streamed: the batch's bytes per image into STREAM_BYTES. */
export function blockRows(p: Program): number {
  const io = [...p.inputs, ...p.outputs].reduce((n, t) => n + 4 * elements(t.shape), 0);
  return Math.max(1, Math.floor(STREAM_BYTES / (io + p.arenaBytes)));
}

function runSegmentsSync(m: Executable, xs: Float32Array[], batch: number): Float32Array[] {
  const values = boundary(m.program, xs);
  for (const s of m.segments) {
    const ys = s.runSync(
      s.inputs.map((t) => values.get(t)!),
      batch,
    );
    s.outputs.forEach((t, i) => values.set(t, ys[i]));
  }
  return outputsOf(m.program, values);
}

async function runSegments(m: Executable, xs: Float32Array[], batch: number): Promise<Float32Array[]> {
  const values = boundary(m.program, xs);
  for (const s of m.segments) {
    const ys = await s.run(
      s.inputs.map((t) => values.get(t)!),
      batch,
    );
    s.outputs.forEach((t, i) => values.set(t, ys[i]));
  }
  return outputsOf(m.program, values);
}

function boundary(p: Program, xs: Float32Array[]): Map<number, Float32Array> {
  return new Map(p.inputs.map((inp, i) => [p.tensors[inp.tensor].alias ?? inp.tensor, xs[i]]));
}

function outputsOf(p: Program, values: Map<number, Float32Array>): Float32Array[] {
  return p.outputs.map((o) => values.get(p.tensors[o.tensor].alias ?? o.tensor)!);
}

/** E_VALUE naming the first output value that is NaN or infinite, and the largest input magnitude. */
function checkOutputs(m: Executable, xs: Float32Array[], ys: Float32Array[]): Float32Array[] {
  ys.forEach((y, k) => {
    const i = firstNonFinite(y);
    if (i < 0) return;
    let largest = 0;
    for (const x of xs) for (const v of x) largest = Math.max(largest, Math.abs(v));
    throw new EdgeOptError(
      'E_VALUE',
      `model '${m.id}': output '${m.program.outputs[k].name}' value ${i} is ${y[i]}: the computation overflowed float32 ` +
        `(the largest input magnitude is ${largest.toPrecision(3)}; scale inputs into a range the model was trained on)`,
    );
  });
  return ys;
}

/** The whole batch on the calling thread. */
export function executeSync(m: Executable, xs: Float32Array[], batch: number): Float32Array[] {
  return checkOutputs(m, xs, runSegmentsSync(m, xs, batch));
}

/** The batch off the calling thread, streamed in blocks when it is large (see the file comment). */
export async function execute(m: Executable, xs: Float32Array[], batch: number): Promise<Float32Array[]> {
  // A lone native segment copies its input synchronously when called; anything else reads it later.
  const copy = m.segments.length > 1 || m.segments[0].backend !== 'native';
  const block = blockRows(m.program);
  if (batch <= block) {
    const inputs = copy ? xs.map((x) => x.slice()) : xs;
    return checkOutputs(m, inputs, await runSegments(m, inputs, batch));
  }
  const inSizes = m.program.inputs.map((t) => elements(t.shape));
  const outSizes = m.program.outputs.map((t) => elements(t.shape));
  const outputs = outSizes.map((n) => new Float32Array(batch * n));
  for (let first = 0; first < batch; first += block) {
    const n = Math.min(block, batch - first);
    const views = xs.map((x, i) => x.subarray(first * inSizes[i], (first + n) * inSizes[i]));
    const ys = await runSegments(m, copy ? views.map((v) => v.slice()) : views, n);
    ys.forEach((y, i) => outputs[i].set(y, first * outSizes[i]));
  }
  return checkOutputs(m, xs, outputs);
}

/**
 * Whether the event loop is turning while calls run inline. A check-phase callback is kept
 * pending; when it has not run for INLINE_TURN_MS, only microtasks have run since (a loop of
 * `await infer()` calls that never leave the calling thread), and the next inline call first
 * waits for one turn of the loop.
 */
export class LoopTurns {
  private pending = false;
  private since = 0;

  /** A promise to await before running inline when the loop is starved, else undefined. */
  starved(): Promise<void> | undefined {
    const now = performance.now();
    if (!this.pending) {
      this.pending = true;
      this.since = now;
      setImmediate(() => (this.pending = false));
      return undefined;
    }
    if (now - this.since <= INLINE_TURN_MS) return undefined;
    return new Promise<void>((resolve) => setImmediate(resolve));
  }
}
