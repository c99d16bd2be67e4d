/**
 * Latency measured by the engine on this machine, for the budget search: each layer alone,
 * at each candidate setting, cached by op, weight shape and setting (layers of equal shape
 * and setting share one entry; a table saved by an earlier run is reused as it is).
 *
 * The machine may be shared and noisy, so no decision rests on one raw timing:
 * - Interleaved rounds: every round times every entry once (one sample = one untimed call,
 *   then at least 5 and enough calls to last `sampleMs`, each timed alone; the sample is
 *   their median), in an order rotated per round, together with a fixed
 *   yardstick (a seeded 256x256 float32 Dense). A neighbour's burst slows what is measured
 *   around it alike.
 * - Ratios: an entry's value is the median over rounds of its time divided by the
 *   yardstick's time in the same round, so it does not move with the machine's load, and
 *   tables from different runs (and models) are in the same unit. Microseconds are that
 *   ratio times the yardstick's median.
 * - A grid: the search compares layer latencies rounded to a grid of `resolution` x the
 *   float model's latency (5 % by default), so a difference the noise could flip is a tie,
 *   broken by bytes and then by candidate order. Decisions depend only on the gridded
 *   ratios: a reused table gives the same choice every time; a fresh measurement gives the
 *   same choice unless a latency sits within the noise of a grid edge.
 * The engine's fixed cost per call (timed on a 1x1 Dense) is subtracted from every layer:
 * a model costs that once, plus its layers, plus what no setting changes (activations,
 * softmax), measured on the float model.
 */
import { backendInfo } from '../backends';
import type { Device } from '../engine/engine';
import { EdgeInferenceEngine } from '../engine/engine';
import { EdgeOptError } from '../errors';
import { denseGraph } from '../model/build';
import type { Graph } from '../model/graph';
import { seededRandom } from '../train/random';
import { throwIfAborted, yieldToEventLoop } from './abort';

export interface LatencyOptions {
  /** Rows per timed call (default 1: one request at a time, as an edge device serves them). */
  batch?: number;
  /** Timed rounds (default 15); an entry's latency is the median over them. */
  rounds?: number;
  /** Milliseconds one sample lasts (default 0.5): calls are repeated until it does. */
  sampleMs?: number;
  /** Grid step the search compares latencies on, as a fraction of the float model's latency (default 0.05). */
  resolution?: number;
  device?: Device;
  /**
   * Intra-op threads of the timed models (default 1). One thread keeps other processes' load
   * on the other cores out of the figures (a layer split over a busy core waits for it), and
   * every timed model would otherwise start a thread pool of its own.
   */
  threads?: number;
  /** Seeds the input rows of the timed calls (default 1). */
  seed?: number;
}

export interface LatencyEntry {
  /** Median over rounds of (this entry's time / the yardstick's time in the same round). */
  ratio: number;
  /** Relative spread of those ratios (interquartile range / median). */
  spread: number;
}

export interface LatencyTableJSON {
  kernel: string;
  device: Device;
  batch: number;
  threads: number;
  /** Median microseconds of one yardstick call when the table was first measured. */
  yardstickUs: number;
  entries: Record<string, LatencyEntry>;
}

export interface TimedItem {
  key: string;
  graph: Graph;
}

export interface TimingProgress {
  done: number;
  total: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))];
};

/** Calls per sample at least, so a sample's median is a median even for slow models. */
const MIN_REPS = 5;

/** Microseconds one call takes. */
function timeCall(call: () => unknown): number {
  const t0 = process.hrtime.bigint();
  call();
  return Number(process.hrtime.bigint() - t0) / 1e3;
}

/** The key of the engine's fixed cost per call. */
export const CALL_KEY = 'call:1x1';

function yardstick(): Graph {
  const random = seededRandom(7);
  return denseGraph('yardstick', [
    { weight: Float32Array.from({ length: 256 * 256 }, () => random() - 0.5), inFeatures: 256, outFeatures: 256 },
  ]);
}

function callProbe(): Graph {
  return denseGraph('call', [{ weight: new Float32Array([1]), inFeatures: 1, outFeatures: 1 }]);
}

export class LatencyTable {
  readonly kernel: string;
  readonly device: Device;
  readonly batch: number;
  readonly threads: number;
  readonly resolution: number;
  private readonly rounds: number;
  private readonly sampleMs: number;
  private readonly seed: number;
  private readonly entries = new Map<string, LatencyEntry>();
  private yardstickUs = 0;

  constructor(options: LatencyOptions = {}) {
    const { batch = 1, rounds = 15, sampleMs = 0.5, resolution = 0.05, seed = 1, threads = 1 } = options;
    const positiveInt = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
    if (!positiveInt(batch, 4096)) throw new EdgeOptError('E_ARGUMENT', `latency: batch must be an integer in 1..4096, got ${batch}`);
    if (!positiveInt(threads, 256)) throw new EdgeOptError('E_ARGUMENT', `latency: threads must be an integer in 1..256, got ${threads}`);
    if (!positiveInt(rounds, 1000)) throw new EdgeOptError('E_ARGUMENT', `latency: rounds must be an integer in 1..1000, got ${rounds}`);
    if (!(sampleMs > 0 && sampleMs <= 1000))
      throw new EdgeOptError('E_ARGUMENT', `latency: sampleMs must be in (0, 1000], got ${sampleMs}`);
    if (!(resolution > 0 && resolution < 1))
      throw new EdgeOptError('E_ARGUMENT', `latency: resolution must be in (0, 1), got ${resolution}`);
    const device = options.device ?? 'auto';
    if (!['auto', 'npu', 'cpu', 'ts'].includes(device)) throw new EdgeOptError('E_ARGUMENT', `latency: unknown device '${String(device)}'`);
    this.batch = batch;
    this.threads = threads;
    this.rounds = rounds;
    this.sampleMs = sampleMs;
    this.resolution = resolution;
    this.seed = seed;
    this.device = device;
    this.kernel = device === 'ts' ? 'ts' : backendInfo().kernel;
  }

  /** A table saved with toJSON(); it must come from the same kernels (another machine's timings would mislead). */
  static fromJSON(json: LatencyTableJSON, options: Omit<LatencyOptions, 'batch' | 'device' | 'threads'> = {}): LatencyTable {
    if (!json || typeof json !== 'object' || !json.entries || typeof json.entries !== 'object' || !(json.yardstickUs > 0))
      throw new EdgeOptError('E_FORMAT', 'latency table: not a saved LatencyTable');
    const t = new LatencyTable({ ...options, batch: json.batch, device: json.device, threads: json.threads });
    if (json.kernel !== t.kernel)
      throw new EdgeOptError('E_ARGUMENT', `latency table was measured with the '${json.kernel}' kernels; this process runs '${t.kernel}'`);
    t.yardstickUs = json.yardstickUs;
    for (const [key, e] of Object.entries(json.entries)) {
      if (!(e?.ratio >= 0) || !(e.spread >= 0)) throw new EdgeOptError('E_FORMAT', `latency table: bad entry '${key}'`);
      t.entries.set(key, { ratio: e.ratio, spread: e.spread });
    }
    return t;
  }

  toJSON(): LatencyTableJSON {
    const { kernel, device, batch, threads, yardstickUs } = this;
    return { kernel, device, batch, threads, yardstickUs, entries: Object.fromEntries(this.entries) };
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Microseconds of one call of an entry, the engine's fixed cost included. */
  us(key: string): number {
    return this.entry(key).ratio * this.yardstickUs;
  }

  /** Microseconds of the work of an entry, without the engine's fixed cost per call. */
  workUs(key: string): number {
    return Math.max(0, this.entry(key).ratio - this.entry(CALL_KEY).ratio) * this.yardstickUs;
  }

  /** workUs rounded to a grid of `resolution` x `scaleUs`: what the search compares. */
  gridUs(key: string, scaleUs: number): number {
    const step = this.resolution * scaleUs;
    return step > 0 ? Math.round(this.workUs(key) / step) * step : this.workUs(key);
  }

  spread(key: string): number {
    return this.entry(key).spread;
  }

  private entry(key: string): LatencyEntry {
    const e = this.entries.get(key);
    if (!e) throw new EdgeOptError('E_STATE', `latency table has no entry '${key}'`);
    return e;
  }

  /** Times every item not in the table yet (all listed items with `remeasure`), in interleaved rounds. */
  async measure(
    items: TimedItem[],
    options: { signal?: AbortSignal; onProgress?: (p: TimingProgress) => void; remeasure?: boolean } = {},
  ): Promise<void> {
    const todo = dedupe([{ key: CALL_KEY, graph: callProbe() }, ...items]).filter((it) => options.remeasure || !this.entries.has(it.key));
    if (!todo.length) return;
    const all: TimedItem[] = [{ key: '', graph: yardstick() }, ...todo];
    const engine = new EdgeInferenceEngine({ device: this.device, threads: this.threads });
    const random = seededRandom(this.seed);
    try {
      const runs = all.map((it, i) => {
        const id = `t${i}`;
        const { inputShape } = engine.loadModelSync(id, it.graph);
        const row = inputShape.reduce((a, d) => a * d, 1);
        const input = { data: Float32Array.from({ length: this.batch * row }, () => random()), shape: [this.batch, ...inputShape] };
        const call = () => engine.inferSync(id, input);
        const once = median(Array.from({ length: 7 }, () => timeCall(call))) / 1e3;
        return { call, reps: Math.max(MIN_REPS, Math.min(10_000, Math.round(this.sampleMs / Math.max(once, 1e-4)))) };
      });
      const times = all.map(() => [] as number[]);
      const calls: number[] = [];
      for (let r = 0; r < this.rounds; r++) {
        throwIfAborted(options.signal);
        for (let j = 0; j < all.length; j++) {
          const i = (j + r) % all.length;
          const { call, reps } = runs[i];
          call(); // the first call after other models ran finds cold caches: steady state is what serving sees
          for (let n = 0; n < reps; n++) calls[n] = timeCall(call);
          times[i].push(median(calls.slice(0, reps)));
        }
        options.onProgress?.({ done: r + 1, total: this.rounds });
        await yieldToEventLoop();
      }
      if (!this.yardstickUs) this.yardstickUs = median(times[0]);
      todo.forEach((it, j) => {
        const ratios = times[j + 1].map((t, r) => t / times[0][r]);
        const m = median(ratios);
        this.entries.set(it.key, { ratio: m, spread: m > 0 ? (quantile(ratios, 0.75) - quantile(ratios, 0.25)) / m : 0 });
      });
    } finally {
      engine.dispose();
    }
  }
}

function dedupe(items: TimedItem[]): TimedItem[] {
  const seen = new Set<string>();
  return items.filter((it) => !seen.has(it.key) && seen.add(it.key));
}
