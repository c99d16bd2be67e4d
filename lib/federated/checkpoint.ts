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
}

export function writeCheckpoint(file: string, state: CheckpointState): void {
  const model = { ...state.model, metadata: { ...state.model.metadata, fl_round: String(state.round), fl_history: JSON.stringify(state.history) } };
  saveModel(model, file);
}

/** The saved state, or null when there is no checkpoint yet. */
export function readCheckpoint(file: string): CheckpointState | null {
  if (!fs.existsSync(file)) return null;
  const model = loadModel(file);
  const round = Number(model.metadata.fl_round);
  if (!Number.isSafeInteger(round) || round < 0) throw new EdgeOptError('E_FORMAT', `${file}: not a federated checkpoint (no fl_round metadata)`);
  let history: RoundRecord[];
  try {
    history = JSON.parse(model.metadata.fl_history ?? '[]');
  } catch {
    throw new EdgeOptError('E_FORMAT', `${file}: fl_history metadata is not JSON`);
  }
  const metadata = { ...model.metadata };
  delete metadata.fl_round;
  delete metadata.fl_history;
  return { model: { ...model, metadata }, round, history };
}
