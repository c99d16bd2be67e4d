/**
 * Dynamic batching: concurrent small runs of one model are queued, concatenated
 * along the batch dimension into one engine call, and the outputs split back by
 * rows. Every op is row-wise (dynamic int8 activations are quantized per row,
 * static ones per tensor with fixed scales), so a row's result does not depend
 * on its batch-mates: batched results are bit-identical to unbatched ones.
 *
 * A batch starts when the queue holds `maxBatch` rows, or when its oldest
 * request has waited `maxDelayMs`, and at most `concurrency` batches run at
 * once (requests keep queueing meanwhile, so batches grow with the load).
 * The queue is bounded (`maxQueue` rows): past it a run rejects at once with
 * E_BUSY instead of holding memory. An aborted request leaves the queue.
 */
import { EventEmitter } from 'node:events';
import { firstNonFinite } from '../backends/finite';
import { AbortError, EdgeOptError } from '../errors';
import { elementCount } from '../model/graph';
import type { ModelInfo, ModelTensors } from './engine';

export interface BatcherOptions {
  /** Rows per batch (default 32). A single request with more rows runs as its own batch. */
  maxBatch?: number;
  /** How long the oldest queued request may wait for batch-mates (default 0: the next turn of the event loop). */
  maxDelayMs?: number;
  /** Rows that may wait in the queue; a run past it rejects with E_BUSY (default 1024). */
  maxQueue?: number;
  /** Batches running at once (default 1: the engine already spreads one batch over its threads). */
  concurrency?: number;
}

export interface BatchEvent {
  /** Rows in the batch. */
  rows: number;
  /** Requests in the batch. */
  requests: number;
  /** Milliseconds the batch's engine call took. */
  ms: number;
}

export interface BatcherEvents {
  batch: [event: BatchEvent];
}

export type BatchRunner = (feeds: ModelTensors) => Promise<ModelTensors>;

interface Pending {
  feeds: ModelTensors;
  rows: number;
  enqueued: number;
  resolve(out: ModelTensors): void;
  reject(err: unknown): void;
  /** Detaches the abort listener. */
  done(): void;
}

function checkInt(name: string, v: number | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  if (!(Number.isInteger(v) && v >= min))
    throw new EdgeOptError('E_ARGUMENT', `batcher: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** An AbortError for a signal, with its reason as the cause. */
export function abortError(signal: AbortSignal, what: string): AbortError {
  return new AbortError(`${what} was aborted`, { cause: signal.reason });
}

export class Batcher extends EventEmitter<BatcherEvents> {
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly concurrency: number;
  /** Names the model in errors. */
  private readonly label: string;
  private readonly queue: Pending[] = [];
  private queuedRows = 0;
  private running = 0;
  private timer: { kind: 'timeout'; handle: NodeJS.Timeout } | { kind: 'immediate'; handle: NodeJS.Immediate } | null = null;
  private readonly idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly runner: BatchRunner,
    private readonly info: ModelInfo,
    options: BatcherOptions & { label?: string } = {},
  ) {
    super();
    this.maxBatch = checkInt('maxBatch', options.maxBatch, 32, 1);
    this.maxQueue = checkInt('maxQueue', options.maxQueue, 1024, 1);
    this.concurrency = checkInt('concurrency', options.concurrency, 1, 1);
    const delay = options.maxDelayMs ?? 0;
    if (!(Number.isFinite(delay) && delay >= 0 && delay <= 60_000))
      throw new EdgeOptError('E_ARGUMENT', `batcher: maxDelayMs must be a number in 0..60000, got ${String(options.maxDelayMs)}`);
    this.maxDelayMs = delay;
    this.label = options.label ?? 'batcher';
  }

  /** Rows waiting for a batch. */
  get queueDepth(): number {
    return this.queuedRows;
  }

  /** Batches running now. */
  get inFlight(): number {
    return this.running;
  }

  /**
   * Queues one request (`rows` rows in every feed, checked by the caller) and resolves with its
   * own rows of the batched outputs. Rejects with E_BUSY when the queue is full, with an
   * AbortError when `signal` fires first, with E_STATE after close().
   */
  run(feeds: ModelTensors, rows: number, signal?: AbortSignal): Promise<ModelTensors> {
    if (this.closed) return Promise.reject(new EdgeOptError('E_STATE', `${this.label}: the batcher is closed`));
    if (signal?.aborted) return Promise.reject(abortError(signal, `${this.label}: the run`));
    try {
      this.check(feeds, rows);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.queuedRows + rows > this.maxQueue && this.queuedRows > 0) {
      return Promise.reject(
        new EdgeOptError(
          'E_BUSY',
          `${this.label}: the batch queue is full (${this.queuedRows} rows waiting, maxQueue ${this.maxQueue}); retry later`,
        ),
      );
    }
    return new Promise<ModelTensors>((resolve, reject) => {
      const p: Pending = { feeds, rows, enqueued: performance.now(), resolve, reject, done: () => {} };
      if (signal) {
        const onAbort = () => {
          const i = this.queue.indexOf(p);
          if (i >= 0) {
            this.queue.splice(i, 1);
            this.queuedRows -= p.rows;
            if (!this.queue.length) {
              this.clearTimer();
              if (!this.running) this.wakeIdle();
            }
          }
          // Still queued: it never runs. Already in a batch: the batch finishes and this row is dropped.
          reject(abortError(signal, `${this.label}: the run`));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        p.done = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(p);
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /**
   * A request's own faults (shape, NaN) must fail it alone, before it enters the queue, never its
   * batch-mates: every input of `rows` rows of the model's row size, every value finite.
   */
  private check(feeds: ModelTensors, rows: number): void {
    if (!(Number.isInteger(rows) && rows > 0))
      throw new EdgeOptError('E_ARGUMENT', `${this.label}: rows must be a positive integer, got ${String(rows)}`);
    for (const { name, shape } of this.info.inputs) {
      const t = feeds[name];
      if (!t || !(t.data instanceof Float32Array) || !Array.isArray(t.shape))
        throw new EdgeOptError('E_ARGUMENT', `${this.label}: feed '${name}' must be { data: Float32Array, shape }`);
      const ok =
        t.shape.length === shape.length &&
        t.shape[0] === rows &&
        t.shape.every((d, i) => Number.isInteger(d) && d > 0 && (i === 0 || shape[i] === null || d === shape[i]));
      if (!ok || t.data.length !== elementCount(t.shape))
        throw new EdgeOptError(
          'E_SHAPE',
          `${this.label}: feed '${name}' has shape [${t.shape.join(', ')}] and ${t.data.length} values; expected [${rows}, ${shape
            .slice(1)
            .map((d) => d ?? '?')
            .join(', ')}]`,
        );
      const bad = firstNonFinite(t.data);
      if (bad >= 0) throw new EdgeOptError('E_VALUE', `${this.label}: input '${name}' value ${bad} is ${t.data[bad]}`);
    }
  }

  /** Stops accepting runs; resolves when every queued and running batch has finished. */
  close(): Promise<void> {
    this.closed = true;
    if (this.queue.length) this.flushSoon();
    return this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.queue.length && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private clearTimer(): void {
    if (this.timer?.kind === 'timeout') clearTimeout(this.timer.handle);
    else if (this.timer?.kind === 'immediate') clearImmediate(this.timer.handle);
    this.timer = null;
  }

  /** Starts batches on the next loop turn, so every request read in this turn can join. */
  private flushSoon(): void {
    if (this.timer?.kind === 'immediate') return;
    this.clearTimer();
    this.timer = {
      kind: 'immediate',
      handle: setImmediate(() => {
        this.timer = null;
        this.flush();
      }),
    };
  }

  /** Starts a batch soon if one is full or due, else arms a timer for the oldest request's deadline. */
  private schedule(): void {
    if (!this.queue.length || this.running >= this.concurrency) return;
    const waited = performance.now() - this.queue[0].enqueued;
    if (this.queuedRows >= this.maxBatch || waited >= this.maxDelayMs || this.closed) return this.flushSoon();
    if (this.timer) return;
    this.timer = {
      kind: 'timeout',
      handle: setTimeout(
        () => {
          this.timer = null;
          this.flush();
        },
        Math.max(0, this.maxDelayMs - waited),
      ),
    };
  }

  private flush(): void {
    while (this.queue.length && this.running < this.concurrency) {
      const batch: Pending[] = [];
      let rows = 0;
      while (
        this.queue.length &&
        (batch.length === 0 || (rows + this.queue[0].rows <= this.maxBatch && this.sameRowShapes(batch[0], this.queue[0])))
      ) {
        const p = this.queue.shift()!;
        batch.push(p);
        rows += p.rows;
      }
      this.queuedRows -= rows;
      this.running++;
      void this.runBatch(batch, rows);
    }
    this.schedule();
  }

  private async runBatch(batch: Pending[], rows: number): Promise<void> {
    const start = performance.now();
    try {
      const out = await this.runner(batch.length === 1 ? batch[0].feeds : this.concat(batch, rows));
      this.emit('batch', { rows, requests: batch.length, ms: performance.now() - start });
      if (batch.length === 1) settle(batch[0], () => out);
      else this.split(batch, rows, out);
    } catch (err) {
      for (const p of batch) fail(p, err);
    } finally {
      this.running--;
      if (this.queue.length) this.schedule();
      else if (!this.running) this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Requests go in one batch only when every input has the same dims after the batch (dynamic dims may differ). */
  private sameRowShapes(a: Pending, b: Pending): boolean {
    return this.info.inputs.every(({ name }) => a.feeds[name].shape.every((d, i) => i === 0 || d === b.feeds[name].shape[i]));
  }

  /** Each input's rows of every request, in order, as one tensor. */
  private concat(batch: Pending[], rows: number): ModelTensors {
    const feeds: ModelTensors = {};
    for (const { name } of this.info.inputs) {
      const first = batch[0].feeds[name];
      const rowSize = first.data.length / batch[0].rows;
      const data = new Float32Array(rows * rowSize);
      let offset = 0;
      for (const p of batch) {
        data.set(p.feeds[name].data, offset);
        offset += p.feeds[name].data.length;
      }
      feeds[name] = { data, shape: [rows, ...first.shape.slice(1)] };
    }
    return feeds;
  }

  /** Gives every request its rows of every output. */
  private split(batch: Pending[], rows: number, out: ModelTensors): void {
    for (const { name } of this.info.outputs) {
      const t = out[name];
      if (!t || t.shape[0] !== rows) {
        const err = new EdgeOptError(
          'E_SHAPE',
          `${this.label}: output '${name}' has batch ${t ? t.shape[0] : 'none'} for ${rows} input rows, so it cannot be split among requests`,
        );
        for (const p of batch) fail(p, err);
        return;
      }
    }
    let row = 0;
    for (const p of batch) {
      const from = row;
      row += p.rows;
      settle(p, () => {
        const mine: ModelTensors = {};
        for (const { name } of this.info.outputs) {
          const t = out[name];
          const rowSize = t.data.length / rows;
          mine[name] = { data: t.data.slice(from * rowSize, (from + p.rows) * rowSize), shape: [p.rows, ...t.shape.slice(1)] };
        }
        return mine;
      });
    }
  }
}

/** Resolves a request (an aborted one has already rejected, and ignores this). */
function settle(p: Pending, result: () => ModelTensors): void {
  p.done();
  p.resolve(result());
}

function fail(p: Pending, err: unknown): void {
  p.done();
  p.reject(err);
}
