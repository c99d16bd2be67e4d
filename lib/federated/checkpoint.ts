/**
 * Server checkpoints: the global model as an .eom file (saveModel: temp file +
 * rename, so a crash leaves the old or the new checkpoint, never half of one)
 * with the completed round count and history in the model's metadata.
 */
import * as fs from 'node:fs';
import { EdgeOptError } from '../errors';
import { loadModel, saveModel } from '../model';
import type { Graph } from '../model/graph';

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
  ms: number;
}

export interface CheckpointState {
  model: Graph;
  /** Completed rounds. */
  round: number;
  history: RoundRecord[];
  /** FedAvgM server velocity, when used. */
  velocity?: Record<string, Float32Array>;
}

/** Velocity tensors ride in the same .eom as unreferenced initializers under this prefix. */
const VELOCITY = 'fl_velocity::';

export function writeCheckpoint(file: string, state: CheckpointState): void {
  const tensors = { ...state.model.tensors };
  for (const [name, data] of Object.entries(state.velocity ?? {}))
    tensors[VELOCITY + name] = { name: VELOCITY + name, dtype: 'float32', shape: [data.length], data };
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
    history = JSON.parse(model.metadata.fl_history ?? '[]');
  } catch {
    throw new EdgeOptError('E_FORMAT', `${file}: fl_history metadata is not JSON`);
  }
  const metadata = { ...model.metadata };
  delete metadata.fl_round;
  delete metadata.fl_history;
  const tensors = { ...model.tensors };
  const velocity: Record<string, Float32Array> = {};
  for (const name of Object.keys(tensors)) {
    if (!name.startsWith(VELOCITY)) continue;
    velocity[name.slice(VELOCITY.length)] = tensors[name].data as Float32Array;
    delete tensors[name];
  }
  return { model: { ...model, tensors, metadata }, round, history, velocity: Object.keys(velocity).length ? velocity : undefined };
}
