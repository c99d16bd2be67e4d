/**
 * Server checkpoints: the global model as an .eom file (saveModel: an atomic
 * write, so a crash leaves the old or the new checkpoint, never half of one)
 * with the completed round count and history in the model's metadata.
 * CheckpointWriter keeps a failed write from stopping anything: it retries the
 * latest state with back-off and reports each failure.
 */
import * as fs from 'node:fs';
import { EdgeOptError } from '../errors';
import { loadModel, saveModel } from '../model';
import { EOM_JSON_LIMITS } from '../model/eom';
import type { Graph } from '../model/graph';
import { parseJsonGuarded } from '../util/json-guard';

export interface RoundRecord {
  round: number;
  clients: string[];
  numSamples: number;
  bytesUp: number;
  bytesDown: number;
  rejected: number;
  dropped: number;
  metrics: Record<string, number>;
  evaluation?: Record<string, number>;
  /** What the evaluate callback threw, when it did (the round still completed). */
  evaluationError?: string;
  ms: number;
}

export interface CheckpointState {
  model: Graph;
  /** Completed rounds. */
  round: number;
  history: RoundRecord[];
  /** FedAvgM server velocity, when used. */
  velocity?: Record<string, Float32Array>;
  /** SCAFFOLD server control variate, when used. */
  control?: Record<string, Float32Array>;
}

/** Server-state tensors ride in the same .eom as unreferenced initializers under these prefixes. */
const STATE_PREFIXES = { velocity: 'fl_velocity::', control: 'fl_control::' } as const;
type StateName = keyof typeof STATE_PREFIXES;

export function writeCheckpoint(file: string, state: CheckpointState): void {
  const tensors = { ...state.model.tensors };
  for (const [kind, prefix] of Object.entries(STATE_PREFIXES) as Array<[StateName, string]>)
    for (const [name, data] of Object.entries(state[kind] ?? {}))
      tensors[prefix + name] = { name: prefix + name, dtype: 'float32', shape: [data.length], data };
  const metadata = { ...state.model.metadata, fl_round: String(state.round), fl_history: JSON.stringify(state.history) };
  const model = { ...state.model, tensors, metadata };
  saveModel(model, file);
}

/** The saved state, or null when there is no checkpoint yet. */
export function readCheckpoint(file: string): CheckpointState | null {
  if (!fs.existsSync(file)) return null;
  const model = loadModel(file);
  const round = Number(model.metadata.fl_round);
  if (!Number.isSafeInteger(round) || round < 0)
    throw new EdgeOptError('E_FORMAT', `${file}: not a federated checkpoint (no fl_round metadata)`);
  let history: RoundRecord[];
  try {
    history = parseJsonGuarded(model.metadata.fl_history ?? '[]', EOM_JSON_LIMITS, (m) => {
      throw new EdgeOptError('E_FORMAT', `${file}: fl_history metadata: ${m}`);
    }) as RoundRecord[];
  } catch (err) {
    if (err instanceof EdgeOptError) throw err;
    throw new EdgeOptError('E_FORMAT', `${file}: fl_history metadata is not JSON`);
  }
  if (!Array.isArray(history)) throw new EdgeOptError('E_FORMAT', `${file}: fl_history metadata is not an array`);
  const metadata = { ...model.metadata };
  delete metadata.fl_round;
  delete metadata.fl_history;
  const tensors = { ...model.tensors };
  const state: Partial<Record<StateName, Record<string, Float32Array>>> = {};
  for (const name of Object.keys(tensors)) {
    for (const [kind, prefix] of Object.entries(STATE_PREFIXES) as Array<[StateName, string]>) {
      if (!name.startsWith(prefix)) continue;
      (state[kind] ??= {})[name.slice(prefix.length)] = tensors[name].data as Float32Array;
      delete tensors[name];
    }
  }
  return { model: { ...model, tensors, metadata }, round, history, ...state };
}

export interface CheckpointFailure {
  /** The round the failed write was for. */
  round: number;
  /** Consecutive failures so far. */
  attempt: number;
  error: Error;
  /** When the next attempt runs. */
  retryInMs: number;
}

/**
 * Writes checkpoints of whatever `state()` returns at the time of writing. A
 * failed write is reported through `onFailure` and retried with the then-latest
 * state after retryMs, 2·retryMs, ... up to maxRetryMs, until one succeeds.
 * `save` never throws: rounds go on while the disk is full or the folder gone.
 */
export class CheckpointWriter {
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The round of the last successful write. */
  savedRound = -1;

  constructor(
    private readonly file: string,
    private readonly state: () => CheckpointState,
    private readonly onFailure: (f: CheckpointFailure) => void,
    private readonly onSaved: (round: number) => void,
    private readonly retry = { retryMs: 1000, maxRetryMs: 60_000 },
  ) {}

  /** True while the latest state is not on disk yet. */
  get pending(): boolean {
    return this.timer !== null;
  }

  /** Writes the latest state now; on failure, schedules retries. Returns whether it is on disk. */
  save(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const state = this.state();
    try {
      writeCheckpoint(this.file, state);
    } catch (err) {
      this.attempt++;
      const retryInMs = Math.min(this.retry.maxRetryMs, this.retry.retryMs * 2 ** (this.attempt - 1));
      this.timer = setTimeout(() => this.save(), retryInMs);
      this.timer.unref();
      this.onFailure({ round: state.round, attempt: this.attempt, error: err as Error, retryInMs });
      return false;
    }
    this.attempt = 0;
    this.savedRound = state.round;
    this.onSaved(state.round);
    return true;
  }

  /** Stops retrying; with a write pending, makes one last attempt first. */
  close(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    try {
      writeCheckpoint(this.file, this.state());
    } catch {
      // the failure was reported when it first happened
    }
  }
}
