/**
 * FederatedServer: FedAvg rounds over HTTP (node:http, 127.0.0.1 only).
 *
 * Flower's semantics: a round wants max(ceil(clients · fractionFit), minClients)
 * participants; clients poll GET /v1/task and the first ones to ask are
 * selected. A round closes when every selected client has reported, or at the
 * deadline (roundTimeoutMs) once at least minClients have; a selected client
 * that stays silent past the deadline loses its slot to another client, so a
 * dead client never stalls a round. Every update is authenticated (bearer
 * token per client: unknown -> 401) and validated (-> 400) before it is
 * stored; the global model only changes when a round closes, and is then
 * checkpointed atomically, so a restarted server resumes at the same round.
 *
 * Routes: GET /v1/task (frame: {status: fit|wait|done, round, config} + global
 * params when fit), POST /v1/update (frame: {round, numSamples, metrics} +
 * delta), GET /v1/model (.eom of the global model), GET /v1/status (JSON).
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import { encodeEom } from '../model';
import type { Graph } from '../model/graph';
import { seededRandom } from '../train/random';
import { averageMetrics, fedAvg, validateUpdate, type ClientUpdate, type DpOptions } from './aggregate';
import { readCheckpoint, writeCheckpoint, type RoundRecord } from './checkpoint';
import { decodeFrame, encodeFrame, f32Tensors } from './codec';
import { bearer, hashToken, readBody, replyBytes, replyJson } from './http';
import { paramSpecs, readParams, writeParams, type ParamSpec, type Tensors } from './params';

/** What selected clients are asked to do (sent with every task). */
export interface FitConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer?: 'sgd' | 'adam';
  momentum?: number;
  /** FedProx proximal term; 0 or absent is plain FedAvg. */
  proxMu?: number;
  /** 'none' | 'int8' | 'topk:<fraction>' */
  compress?: string;
  /** Base seed for client shuffling (each client mixes in its id and the round). */
  seed?: number;
}

export interface FederatedServerOptions {
  /** The initial global model (a Dense chain or a CNN graph training supports); ignored when resuming from a checkpoint. */
  model: Graph;
  /** clientId -> bearer token. */
  clients: Record<string, string>;
  rounds: number;
  minClients?: number;
  fractionFit?: number;
  roundTimeoutMs?: number;
  fit?: Partial<FitConfig>;
  /** Updates whose L2 norm exceeds this are rejected (400). Default 1e4. */
  maxUpdateNorm?: number;
  dp?: DpOptions;
  /** FedAvgM (Hsu et al. 2019): v = β·v + avgDelta, w += v. Helps with non-IID clients. Default 0 (plain FedAvg). */
  serverMomentum?: number;
  seed?: number;
  /** Checkpoint file (.eom); resumed from when it exists. */
  checkpoint?: string;
  /** Run after every round on the new global model (e.g. test accuracy). */
  evaluate?: (model: Graph, round: number) => Record<string, number>;
  /** How long waiting clients are told to sleep before polling again. */
  pollMs?: number;
}

/** Emitted as 'waiting' at each round deadline that passes with fewer than minClients updates. */
export interface WaitingEvent {
  round: number;
  reported: number;
  minClients: number;
  /** Clients selected for the round so far. */
  connected: number;
  waitedMs: number;
  reason: string;
}

interface OpenRound {
  round: number;
  openedAt: number;
  assigned: Map<string, number>;
  updates: Map<string, ClientUpdate>;
  bytesUp: number;
  bytesDown: number;
  rejected: number;
  dropped: number;
  timer?: NodeJS.Timeout;
}

const DEFAULT_FIT: FitConfig = {
  epochs: 1,
  batchSize: 32,
  lr: 0.05,
  optimizer: 'sgd',
  momentum: 0.9,
  proxMu: 0,
  compress: 'none',
  seed: 0,
};

export class FederatedServer extends EventEmitter {
  private readonly opts: Required<
    Pick<FederatedServerOptions, 'rounds' | 'minClients' | 'fractionFit' | 'roundTimeoutMs' | 'maxUpdateNorm' | 'pollMs'>
  >;
  private readonly fit: FitConfig;
  private readonly tokens = new Map<string, string>();
  private readonly specs: ParamSpec[];
  private readonly shapes: Record<string, number[]>;
  private readonly random: () => number;
  private readonly target: number;
  private graph: Graph;
  private global: Tensors;
  private velocity: Tensors | null = null;
  private completed = 0;
  private records: RoundRecord[] = [];
  private current: OpenRound | null = null;
  private server: http.Server | null = null;

  constructor(private readonly options: FederatedServerOptions) {
    super();
    const ids = Object.keys(options.clients ?? {});
    if (!ids.length) throw new EdgeOptError('E_ARGUMENT', 'FederatedServer: clients must map at least one client id to a token');
    for (const id of ids) {
      const token = options.clients[id];
      if (typeof token !== 'string' || token.length < 8)
        throw new EdgeOptError('E_ARGUMENT', `FederatedServer: client '${id}' needs a token of at least 8 characters`);
      this.tokens.set(hashToken(token), id);
    }
    this.opts = {
      rounds: options.rounds,
      minClients: options.minClients ?? Math.min(2, ids.length),
      fractionFit: options.fractionFit ?? 1,
      roundTimeoutMs: options.roundTimeoutMs ?? 60_000,
      maxUpdateNorm: options.maxUpdateNorm ?? 1e4,
      pollMs: options.pollMs ?? 100,
    };
    const { rounds, minClients, fractionFit, roundTimeoutMs } = this.opts;
    if (!(Number.isInteger(rounds) && rounds > 0))
      throw new EdgeOptError('E_ARGUMENT', `FederatedServer: rounds must be a positive integer, got ${rounds}`);
    if (!(Number.isInteger(minClients) && minClients >= 1 && minClients <= ids.length))
      throw new EdgeOptError('E_ARGUMENT', `FederatedServer: minClients must be in 1..${ids.length}, got ${minClients}`);
    if (!(fractionFit > 0 && fractionFit <= 1))
      throw new EdgeOptError('E_ARGUMENT', `FederatedServer: fractionFit must be in (0, 1], got ${fractionFit}`);
    if (!(roundTimeoutMs > 0)) throw new EdgeOptError('E_ARGUMENT', `FederatedServer: roundTimeoutMs must be positive`);
    this.target = Math.min(ids.length, Math.max(minClients, Math.ceil(ids.length * fractionFit)));
    this.fit = { ...DEFAULT_FIT, ...options.fit };
    this.random = seededRandom(options.seed ?? 0);
    const resumed = options.checkpoint ? readCheckpoint(options.checkpoint) : null;
    this.graph = resumed?.model ?? options.model;
    this.specs = paramSpecs(this.graph);
    this.shapes = Object.fromEntries(this.specs.map((s) => [s.name, s.shape]));
    this.global = readParams(this.graph);
    if (resumed) {
      this.completed = resumed.round;
      this.records = resumed.history;
      this.velocity = resumed.velocity ?? null;
    }
    const beta = options.serverMomentum ?? 0;
    if (!(beta >= 0 && beta < 1)) throw new EdgeOptError('E_ARGUMENT', `FederatedServer: serverMomentum must be in [0, 1), got ${beta}`);
  }

  /** Completed rounds. */
  get round(): number {
    return this.completed;
  }

  get done(): boolean {
    return this.completed >= this.opts.rounds;
  }

  /** The current global model. */
  get model(): Graph {
    return this.graph;
  }

  get history(): RoundRecord[] {
    return [...this.records];
  }

  /** Starts serving on 127.0.0.1 (port 0: any free port); resolves to the base URL. */
  async listen(port = 0): Promise<string> {
    if (this.server) throw new EdgeOptError('E_STATE', 'FederatedServer is already listening');
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) replyJson(res, 500, { error: String((err as Error)?.message ?? err) });
        else res.destroy();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    if (!this.done) this.openRound();
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Stops at once: open connections are cut, the open round's updates are dropped (the checkpoint has every completed round). */
  async close(): Promise<void> {
    if (this.current?.timer) clearTimeout(this.current.timer);
    this.current = null;
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resolves once `round` rounds are complete; rejects after timeoutMs. */
  waitForRound(round: number, timeoutMs: number): Promise<void> {
    if (this.completed >= round) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('round', onRound);
        reject(new EdgeOptError('E_STATE', `round ${round} did not complete within ${timeoutMs} ms (at ${this.completed})`));
      }, timeoutMs);
      const onRound = () => {
        if (this.completed < round) return;
        clearTimeout(timer);
        this.off('round', onRound);
        resolve();
      };
      this.on('round', onRound);
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && url === '/v1/status') {
      return replyJson(res, 200, { round: this.completed, rounds: this.opts.rounds, done: this.done, open: this.current?.round ?? null });
    }
    const token = bearer(req);
    const clientId = token ? this.tokens.get(hashToken(token)) : undefined;
    if (!clientId) {
      req.resume(); // discard the body: nothing from an unknown client is read or recorded
      this.emit('rejected', { clientId: null, status: 401, reason: 'unknown or missing bearer token' });
      return replyJson(res, 401, { error: 'unknown or missing bearer token' });
    }
    if (req.method === 'GET' && url === '/v1/task') return this.task(clientId, res);
    if (req.method === 'GET' && url === '/v1/model') return replyBytes(res, encodeEom(this.graph));
    if (req.method === 'POST' && url === '/v1/update') return this.update(clientId, req, res);
    req.resume();
    replyJson(res, 404, { error: `no route ${req.method} ${url}` });
  }

  private task(clientId: string, res: http.ServerResponse): void {
    const r = this.current;
    if (this.done || !r)
      return replyBytes(res, encodeFrame({ status: this.done ? 'done' : 'wait', round: this.completed, retryMs: this.opts.pollMs }, []));
    if (!this.select(r, clientId)) {
      return replyBytes(res, encodeFrame({ status: 'wait', round: r.round, retryMs: this.opts.pollMs, reason: this.waitReason(r) }, []));
    }
    const frame = encodeFrame({ status: 'fit', round: r.round, config: this.fit }, f32Tensors(this.global, this.shapes));
    r.bytesDown += frame.length;
    replyBytes(res, frame);
  }

  /** Whether the client works in this round (a silent client's slot is freed after roundTimeoutMs). */
  private select(r: OpenRound, clientId: string): boolean {
    if (r.updates.has(clientId)) return false;
    const now = Date.now();
    if (r.assigned.has(clientId)) {
      r.assigned.set(clientId, now);
      return true;
    }
    for (const [id, at] of r.assigned) {
      if (r.assigned.size < this.target) break;
      if (!r.updates.has(id) && now - at > this.opts.roundTimeoutMs) {
        r.assigned.delete(id);
        r.dropped++;
      }
    }
    if (r.assigned.size >= this.target) return false;
    r.assigned.set(clientId, now);
    return true;
  }

  private async update(clientId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const r = this.current;
    const limit = 2 * 4 * Object.values(this.global).reduce((s, t) => s + t.length, 0) + (1 << 20);
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (!res.destroyed) this.reject(res, clientId, 413, (err as Error).message);
      return;
    }
    if (this.current !== r || !r) return this.reject(res, clientId, 409, 'the round closed while the update was uploading');
    let decoded;
    try {
      decoded = decodeFrame(body, kernels().dequantizeS8);
    } catch (err) {
      return this.reject(res, clientId, 400, (err as Error).message, r);
    }
    const { meta, tensors } = decoded;
    if (meta.round !== r.round)
      return this.reject(res, clientId, 409, `update is for round ${String(meta.round)}, round ${r.round} is open`);
    if (!r.assigned.has(clientId) || r.updates.has(clientId))
      return this.reject(res, clientId, 409, `client '${clientId}' has no open task in round ${r.round}`);
    if (meta.clientId !== undefined && meta.clientId !== clientId)
      return this.reject(res, clientId, 400, `update claims client '${String(meta.clientId)}' but the token is '${clientId}'s`, r);
    try {
      validateUpdate(this.specs, tensors, meta.numSamples, this.opts.maxUpdateNorm);
    } catch (err) {
      return this.reject(res, clientId, 400, (err as Error).message, r);
    }
    const metrics = (typeof meta.metrics === 'object' && meta.metrics ? meta.metrics : {}) as Record<string, number>;
    r.updates.set(clientId, {
      clientId,
      numSamples: meta.numSamples as number,
      delta: Object.fromEntries(tensors.map((t) => [t.name, t.data])),
      metrics,
    });
    r.bytesUp += body.length;
    this.emit('update', { clientId, round: r.round, bytes: body.length });
    if (r.updates.size >= this.target) this.closeRound(r);
    replyJson(res, 200, { accepted: true, round: r.round });
  }

  private reject(res: http.ServerResponse, clientId: string, status: number, reason: string, r?: OpenRound): void {
    if (r && status === 400) r.rejected++;
    this.emit('rejected', { clientId, status, reason });
    replyJson(res, status, { error: reason });
  }

  private openRound(): void {
    const r: OpenRound = {
      round: this.completed + 1,
      openedAt: Date.now(),
      assigned: new Map(),
      updates: new Map(),
      bytesUp: 0,
      bytesDown: 0,
      rejected: 0,
      dropped: 0,
    };
    this.current = r;
    this.armDeadline(r);
  }

  /** Why a client is told to wait: what the open round still needs. */
  private waitReason(r: OpenRound): string {
    const { minClients } = this.opts;
    return (
      `round ${r.round} has ${r.updates.size} of the ${this.target} updates it asks for (it closes at the deadline with ${minClients}); ` +
      `${r.assigned.size} of ${this.tokens.size} known clients are taking part`
    );
  }

  /** At the deadline: close with whoever reported if that is at least minClients, else wait another period. */
  private armDeadline(r: OpenRound): void {
    r.timer = setTimeout(() => {
      if (this.current !== r) return;
      if (r.updates.size >= this.opts.minClients) return this.closeRound(r);
      // Too few clients: say so (a federation short of clients must not look like a hang), wait another period.
      const waiting: WaitingEvent = {
        round: r.round,
        reported: r.updates.size,
        minClients: this.opts.minClients,
        connected: r.assigned.size,
        waitedMs: Date.now() - r.openedAt,
        reason: this.waitReason(r),
      };
      this.emit('waiting', waiting);
      this.armDeadline(r);
    }, this.opts.roundTimeoutMs);
    r.timer.unref();
  }

  /** FedAvgM: the averaged step feeds a velocity; plain FedAvg when serverMomentum is 0. */
  private momentum(averaged: Tensors): Tensors {
    const beta = this.options.serverMomentum ?? 0;
    if (!beta) return averaged;
    const v = (this.velocity ??= Object.fromEntries(this.specs.map((s) => [s.name, new Float32Array(averaged[s.name].length)])));
    return Object.fromEntries(
      this.specs.map((s) => {
        const w = this.global[s.name];
        const vel = v[s.name];
        for (let i = 0; i < vel.length; i++) vel[i] = beta * vel[i] + (averaged[s.name][i] - w[i]);
        return [s.name, w.map((x, i) => (s.mask && !s.mask[i] ? 0 : x + vel[i]))];
      }),
    );
  }

  private closeRound(r: OpenRound): void {
    if (r.timer) clearTimeout(r.timer);
    // Sorted by client id: the aggregate does not depend on arrival order.
    const updates = [...r.updates.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    this.global = this.momentum(fedAvg(this.global, this.specs, updates, this.options.dp, this.random));
    this.graph = writeParams(this.graph, this.global);
    this.completed = r.round;
    const record: RoundRecord = {
      round: r.round,
      clients: updates.map((u) => u.clientId),
      numSamples: updates.reduce((s, u) => s + u.numSamples, 0),
      bytesUp: r.bytesUp,
      bytesDown: r.bytesDown,
      rejected: r.rejected,
      dropped: r.dropped + [...r.assigned.keys()].filter((id) => !r.updates.has(id)).length,
      metrics: averageMetrics(updates),
      ms: Date.now() - r.openedAt,
    };
    if (this.options.evaluate) record.evaluation = this.options.evaluate(this.graph, r.round);
    this.records.push(record);
    if (this.options.checkpoint)
      writeCheckpoint(this.options.checkpoint, {
        model: this.graph,
        round: this.completed,
        history: this.records,
        velocity: this.velocity ?? undefined,
      });
    this.current = null;
    if (!this.done && this.server) this.openRound();
    this.emit('round', record);
    if (this.done) this.emit('done', this.records);
  }
}
