/**
 * FederatedServer: FedAvg rounds over HTTP (node:http, 127.0.0.1 only).
 *
 * Flower's semantics: a round wants max(ceil(clients · fractionFit), minClients)
 * participants; clients poll GET /v1/task and the first ones to ask are
 * selected. A round closes when every selected client has reported, or at the
 * deadline (roundTimeoutMs) once at least minClients have; a selected client
 * that stays silent past the deadline loses its slot to another client, so a
 * dead client never stalls a round. Every request is authenticated (bearer
 * token per client: unknown -> 401, body never read) and every update
 * validated (-> 400) before it is stored; the global model only changes when a
 * round closes, by an aggregate a minority of poisoned updates cannot steer
 * (robust.ts), and is then checkpointed atomically, so a restarted server
 * resumes at the same round. A checkpoint that cannot be written is retried
 * with back-off ('checkpointError' events) while rounds go on.
 *
 * Slow or greedy peers are cut off: headers within headersTimeoutMs, a whole
 * request within requestTimeoutMs (sized to the largest update), no idle socket
 * past idleTimeoutMs, at most maxConnectionsPerAddress sockets per address, and
 * a declared body larger than an update is refused (413) before it is read.
 *
 * Routes: GET /v1/task (frame: {status: fit|stats|wait|done, round, config} +
 * global params when fit or stats), POST /v1/update (frame: {round,
 * numSamples, metrics} + delta, or {status: stats, round} + class statistics),
 * GET /v1/model (.eom of the global model), GET /v1/status (JSON).
 *
 * With `calibrate`, a statistics phase follows the last round (calibrate.ts,
 * CCVR): clients report per-class feature statistics under the final model,
 * and the server retrains its final Dense layer on virtual features drawn from
 * them ('calibrated' event) before it says done.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import { encodeEom } from '../model';
import type { Graph } from '../model/graph';
import { seededRandom } from '../train/random';
import { l2Norm } from '../train/linalg';
import { checkSchedule, scheduledLr, type LrSchedule } from '../train/schedule';
import {
  calibrateHead,
  calibrationHead,
  decodeStats,
  poolStats,
  type CalibrateOptions,
  type ClassStats,
  type CalibrationHead,
} from './calibrate';
import { averageMetrics, validateMetrics, validateUpdate, type ClientUpdate, type DpOptions } from './aggregate';
import { CheckpointWriter, readCheckpoint, type CheckpointFailure, type RoundRecord } from './checkpoint';
import { decodeFrame, encodeFrame, f32Tensors } from './codec';
import { bearer, hashToken, limitConnectionsPerAddress, readBody, replyBytes, replyJson } from './http';
import { paramSpecs, readParams, writeParams, type ParamSpec, type Tensors } from './params';
import { aggregate, parseAggregator, type RobustOptions } from './robust';
import { encodeControls, nextControls, splitControls, validateControls, zeroControls } from './scaffold';

/** What selected clients are asked to do (sent with every task). */
export interface FitConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer?: 'sgd' | 'adam';
  momentum?: number;
  /** FedProx proximal term; 0 or absent is plain FedAvg. */
  proxMu?: number;
  /** Clients take the softmax over their own classes only (FedRS's restricted softmax, for label skew). */
  restrictSoftmax?: boolean;
  /** Set by the server when it runs SCAFFOLD (FederatedServerOptions.scaffold): clients correct their steps by c - c_i. */
  scaffold?: boolean;
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
  /** Updates whose L2 norm exceeds this are rejected (400). Default: maxUpdateNormRatio × the global weights' norm. */
  maxUpdateNorm?: number;
  /**
   * The default norm bound relative to the current global weights' L2 norm. Default 20: room for honest
   * first-round updates from a random init (measured: README, "Poisoned updates"); influence within the
   * bound is limited by normClip and sampleWeightCap.
   */
  maxUpdateNormRatio?: number;
  /** Updates claiming more samples than this are rejected (400). Default 1,000,000. */
  maxSamples?: number;
  /** A client's FedAvg weight is at most this many times the round's median numSamples. Default 4; Infinity: off. */
  sampleWeightCap?: number;
  /** Each delta is scaled down to at most this many times the round's median update norm. Default 2; 0: off. */
  normClip?: number;
  /**
   * 'fedavg' (default: mean weighted by numSamples), 'median' or 'trimmed-mean:<fraction>' (coordinate-wise,
   * unweighted: robust when a larger share of clients may be hostile; not combinable with dp).
   */
  aggregator?: string;
  dp?: DpOptions;
  /** FedAvgM (Hsu et al. 2019): v = β·v + avgDelta, w += v. Helps with non-IID clients. Default 0 (plain FedAvg). */
  serverMomentum?: number;
  /**
   * SCAFFOLD (Karimireddy et al. 2020; scaffold.ts): control variates that correct each client's local steps
   * for the drift its own data causes (label skew). Tasks carry c and updates Δc_i: twice the bytes each way.
   * Not combinable with dp. Default false.
   */
  scaffold?: boolean;
  /**
   * The clients' learning rate over the rounds (fit.lr is the first round's): cosine anneals it towards minLr
   * by the last round, step multiplies it by gamma every `every` rounds. Late rounds then move the averaged
   * model less, which damps the round-to-round swings of label-skewed federations. Default: constant.
   */
  lrSchedule?: LrSchedule;
  seed?: number;
  /** Checkpoint file (.eom); resumed from when it exists. */
  checkpoint?: string;
  /**
   * After the last round, retrain the final Dense layer on virtual features drawn from the clients'
   * per-class feature statistics (CCVR; calibrate.ts): the cure for a classifier biased by label skew.
   * The statistics disclose a class's mean feature per client; not combinable with dp. Default off.
   */
  calibrate?: boolean | CalibrateOptions;
  /** Run after every round on the new global model (e.g. test accuracy), and after calibration. */
  evaluate?: (model: Graph, round: number) => Record<string, number>;
  /** How long waiting clients are told to sleep before polling again. */
  pollMs?: number;
  /** First retry of a failed checkpoint write after this long, doubling up to 60 s. Default 1000. */
  checkpointRetryMs?: number;
  /** A request's headers must arrive within this. Default 10 s. */
  headersTimeoutMs?: number;
  /** A whole request within this. Default: 30 s plus 1 s per 64 KiB of the largest update accepted. */
  requestTimeoutMs?: number;
  /** A socket that sends nothing for this long is closed. Default 10 s. */
  idleTimeoutMs?: number;
  /** Open connections per remote address; more are closed at once. Default 32. */
  maxConnectionsPerAddress?: number;
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

type Limits = Required<
  Pick<
    FederatedServerOptions,
    | 'rounds'
    | 'minClients'
    | 'fractionFit'
    | 'roundTimeoutMs'
    | 'maxUpdateNormRatio'
    | 'maxSamples'
    | 'pollMs'
    | 'checkpointRetryMs'
    | 'headersTimeoutMs'
    | 'requestTimeoutMs'
    | 'idleTimeoutMs'
    | 'maxConnectionsPerAddress'
  >
>;

/** Emitted as 'calibrated' when the statistics phase after the last round has retrained the classifier. */
export interface CalibrationRecord {
  clients: string[];
  bytesUp: number;
  bytesDown: number;
  ms: number;
  evaluation?: Record<string, number>;
  evaluationError?: string;
}

interface OpenCalibration {
  head: CalibrationHead;
  stats: Map<string, ClassStats>;
  openedAt: number;
  bytesUp: number;
  bytesDown: number;
  timer?: NodeJS.Timeout;
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
  private readonly opts: Limits;
  private readonly robust: RobustOptions;
  /** Bytes the largest acceptable update frame may have. */
  private readonly maxBody: number;
  private readonly fit: FitConfig;
  private readonly tokens = new Map<string, string>();
  private readonly specs: ParamSpec[];
  private readonly shapes: Record<string, number[]>;
  private readonly random: () => number;
  private readonly target: number;
  private graph: Graph;
  private global: Tensors;
  private velocity: Tensors | null = null;
  /** SCAFFOLD's server control variate c (null: plain FedAvg). */
  private control: Tensors | null = null;
  private completed = 0;
  private records: RoundRecord[] = [];
  private current: OpenRound | null = null;
  private calibration: OpenCalibration | null = null;
  private calibrated = false;
  private server: http.Server | null = null;
  private checkpoints: CheckpointWriter | null = null;
  /** The current L2 bound on updates (fixed, or relative to the global weights). */
  private maxUpdateNorm = Infinity;

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
    const resumed = options.checkpoint ? readCheckpoint(options.checkpoint) : null;
    this.graph = resumed?.model ?? options.model;
    this.specs = paramSpecs(this.graph);
    this.shapes = Object.fromEntries(this.specs.map((s) => [s.name, s.shape]));
    this.global = readParams(this.graph);
    this.maxBody = 2 * 4 * Object.values(this.global).reduce((s, t) => s + t.length, 0) + (1 << 20);
    this.opts = {
      rounds: options.rounds,
      minClients: options.minClients ?? Math.min(2, ids.length),
      fractionFit: options.fractionFit ?? 1,
      roundTimeoutMs: options.roundTimeoutMs ?? 60_000,
      maxUpdateNormRatio: options.maxUpdateNormRatio ?? 20,
      maxSamples: options.maxSamples ?? 1_000_000,
      pollMs: options.pollMs ?? 100,
      checkpointRetryMs: options.checkpointRetryMs ?? 1000,
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000 + Math.ceil(this.maxBody / 65536) * 1000,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 32,
    };
    this.robust = {
      aggregator: parseAggregator(options.aggregator ?? 'fedavg'),
      normClip: options.normClip ?? 2,
      sampleWeightCap: options.sampleWeightCap ?? 4,
    };
    this.checkOptions();
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
    if (resumed) {
      this.completed = resumed.round;
      this.records = resumed.history;
      this.velocity = resumed.velocity ?? null;
    }
    if (options.scaffold) {
      this.control = resumed?.control ?? zeroControls(this.specs);
      this.fit.scaffold = true;
    }
    const beta = options.serverMomentum ?? 0;
    if (!(beta >= 0 && beta < 1)) throw new EdgeOptError('E_ARGUMENT', `FederatedServer: serverMomentum must be in [0, 1), got ${beta}`);
    this.refreshNormBound();
    if (options.checkpoint) {
      this.checkpoints = new CheckpointWriter(
        options.checkpoint,
        () => ({
          model: this.graph,
          round: this.completed,
          history: this.records,
          velocity: this.velocity ?? undefined,
          control: this.control ?? undefined,
        }),
        (f: CheckpointFailure) => this.emit('checkpointError', f),
        (round: number) => this.emit('checkpoint', { round }),
        { retryMs: this.opts.checkpointRetryMs, maxRetryMs: 60_000 },
      );
    }
  }

  /** Positive finite numbers where the options need them (E_ARGUMENT). */
  private checkOptions(): void {
    const o = this.options;
    const positive: Array<[string, number | undefined]> = [
      ['maxUpdateNorm', o.maxUpdateNorm],
      ['maxUpdateNormRatio', o.maxUpdateNormRatio],
      ['maxSamples', o.maxSamples],
      ['checkpointRetryMs', o.checkpointRetryMs],
      ['headersTimeoutMs', o.headersTimeoutMs],
      ['requestTimeoutMs', o.requestTimeoutMs],
      ['idleTimeoutMs', o.idleTimeoutMs],
      ['maxConnectionsPerAddress', o.maxConnectionsPerAddress],
    ];
    for (const [name, v] of positive)
      if (v !== undefined && !(v > 0 && Number.isFinite(v)))
        throw new EdgeOptError('E_ARGUMENT', `FederatedServer: ${name} must be a positive number, got ${v}`);
    if (!(this.robust.normClip >= 0 && Number.isFinite(this.robust.normClip)))
      throw new EdgeOptError('E_ARGUMENT', `FederatedServer: normClip must be a number >= 0, got ${this.robust.normClip}`);
    if (!(this.robust.sampleWeightCap >= 1))
      throw new EdgeOptError('E_ARGUMENT', `FederatedServer: sampleWeightCap must be >= 1, got ${this.robust.sampleWeightCap}`);
    if (o.lrSchedule) checkSchedule(o.lrSchedule);
    if (o.calibrate) {
      if (o.dp)
        throw new EdgeOptError('E_ARGUMENT', 'FederatedServer: dp covers the weight deltas only; it cannot be combined with calibrate');
      const head = calibrationHead(this.graph);
      const bytes = 4 * head.classes * head.dim * (head.dim + 1);
      if (bytes > this.maxBody)
        throw new EdgeOptError(
          'E_ARGUMENT',
          `FederatedServer: calibrate needs ${bytes} bytes of statistics per client (${head.classes} classes x ${head.dim}x${head.dim} covariances), more than an update's ${this.maxBody}`,
        );
    }
    if (o.dp && o.scaffold)
      throw new EdgeOptError('E_ARGUMENT', 'FederatedServer: dp noise covers the weight deltas only; it cannot be combined with scaffold');
    if (o.dp && this.robust.aggregator.kind !== 'fedavg')
      throw new EdgeOptError(
        'E_ARGUMENT',
        `FederatedServer: dp noise is calibrated for the mean; it cannot be combined with aggregator '${o.aggregator}'`,
      );
  }

  /** The fixed bound, or maxUpdateNormRatio × the current global weights' norm. */
  private refreshNormBound(): void {
    if (this.options.maxUpdateNorm !== undefined) {
      this.maxUpdateNorm = this.options.maxUpdateNorm;
      return;
    }
    const norm = l2Norm(Object.values(this.global));
    if (!(norm > 0)) throw new EdgeOptError('E_ARGUMENT', 'FederatedServer: the model weights are all zero; set maxUpdateNorm explicitly');
    this.maxUpdateNorm = this.opts.maxUpdateNormRatio * norm;
  }

  /** Updates with a larger L2 norm are rejected now (fixed, or maxUpdateNormRatio x the global weights' norm). */
  get updateNormBound(): number {
    return this.maxUpdateNorm;
  }

  /** True while a checkpoint write failed and is being retried. */
  get checkpointPending(): boolean {
    return this.checkpoints?.pending ?? false;
  }

  /** Completed rounds. */
  get round(): number {
    return this.completed;
  }

  get done(): boolean {
    return this.completed >= this.opts.rounds && (!this.options.calibrate || this.calibrated);
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
    const o = this.opts;
    const server = http.createServer(
      {
        headersTimeout: o.headersTimeoutMs,
        requestTimeout: o.requestTimeoutMs,
        keepAliveTimeout: Math.min(5000, o.idleTimeoutMs),
        // Node checks the two timeouts above on this period (default 30 s).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, o.headersTimeoutMs / 4)),
      },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          if (!res.headersSent) replyJson(res, 500, { error: String((err as Error)?.message ?? err) }, true);
          else res.destroy();
        });
      },
    );
    server.setTimeout(o.idleTimeoutMs, (socket) => socket.destroy());
    server.maxHeadersCount = 64;
    limitConnectionsPerAddress(server, o.maxConnectionsPerAddress, (address) => this.emit('connectionRefused', { address }));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.openNext();
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Stops at once: open connections are cut, the open round's updates are dropped (the checkpoint has every completed round). */
  async close(): Promise<void> {
    if (this.current?.timer) clearTimeout(this.current.timer);
    if (this.calibration?.timer) clearTimeout(this.calibration.timer);
    this.current = null;
    this.checkpoints?.close();
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

  /** Resolves once the server is done (every round, and the calibration when asked for); rejects after timeoutMs. */
  waitForDone(timeoutMs: number): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('done', onDone);
        reject(new EdgeOptError('E_STATE', `the server was not done within ${timeoutMs} ms (at round ${this.completed})`));
      }, timeoutMs);
      const onDone = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('done', onDone);
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '').split('?')[0];
    const token = bearer(req);
    const clientId = token ? this.tokens.get(hashToken(token)) : undefined;
    if (!clientId) {
      // Nothing from an unknown client is read or recorded; the connection closes after the reply.
      this.emit('rejected', { clientId: null, status: 401, reason: 'unknown or missing bearer token' });
      return replyJson(res, 401, { error: 'unknown or missing bearer token' }, true);
    }
    if (req.method === 'GET' && url === '/v1/status') return replyJson(res, 200, this.status());
    if (req.method === 'GET' && url === '/v1/task') return this.task(clientId, res);
    if (req.method === 'GET' && url === '/v1/model') return replyBytes(res, encodeEom(this.graph));
    if (req.method === 'POST' && url === '/v1/update') return this.update(clientId, req, res);
    replyJson(res, 404, { error: `no route ${req.method} ${url}` }, true);
  }

  /** GET /v1/status (clients only: round progress tells an outsider when the model changes). */
  private status(): Record<string, unknown> {
    return {
      round: this.completed,
      rounds: this.opts.rounds,
      done: this.done,
      open: this.current?.round ?? null,
      calibrating: this.calibration !== null,
      checkpoint: this.checkpoints ? { savedRound: this.checkpoints.savedRound, pending: this.checkpoints.pending } : null,
    };
  }

  private task(clientId: string, res: http.ServerResponse): void {
    const cal = this.calibration;
    if (cal && !cal.stats.has(clientId)) {
      const frame = encodeFrame({ status: 'stats', round: this.completed }, f32Tensors(this.global, this.shapes));
      cal.bytesDown += frame.length;
      return replyBytes(res, frame);
    }
    const r = this.current;
    if (this.done || !r)
      return replyBytes(res, encodeFrame({ status: this.done ? 'done' : 'wait', round: this.completed, retryMs: this.opts.pollMs }, []));
    if (!this.select(r, clientId)) {
      return replyBytes(res, encodeFrame({ status: 'wait', round: r.round, retryMs: this.opts.pollMs, reason: this.waitReason(r) }, []));
    }
    const tensors = f32Tensors(this.global, this.shapes);
    if (this.control) tensors.push(...encodeControls(this.control, this.shapes));
    const frame = encodeFrame({ status: 'fit', round: r.round, config: this.roundFit(r.round) }, tensors);
    r.bytesDown += frame.length;
    replyBytes(res, frame);
  }

  /** The fit config of a round: the learning rate on lrSchedule. */
  private roundFit(round: number): FitConfig {
    const s = this.options.lrSchedule;
    if (!s) return this.fit;
    return { ...this.fit, lr: scheduledLr(s, this.fit.lr, round - 1, this.opts.rounds, round) };
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
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared <= this.maxBody)) return this.reject(res, clientId, 413, `a declared body of ${declared} bytes exceeds ${this.maxBody}`);
    let body: Buffer;
    try {
      body = await readBody(req, this.maxBody);
    } catch (err) {
      if (!res.destroyed) this.reject(res, clientId, 413, (err as Error).message);
      return;
    }
    if (this.calibration && !r) return this.acceptStats(clientId, body, res);
    if (this.current !== r || !r) return this.reject(res, clientId, 409, 'the round closed while the update was uploading');
    let decoded;
    try {
      decoded = decodeFrame(body, kernels().dequantizeS8);
    } catch (err) {
      return this.reject(res, clientId, 400, (err as Error).message, r);
    }
    const { meta } = decoded;
    const { params: tensors, controls } = splitControls(decoded.tensors);
    if (meta.round !== r.round)
      return this.reject(res, clientId, 409, `update is for round ${String(meta.round)}, round ${r.round} is open`);
    if (!r.assigned.has(clientId) || r.updates.has(clientId))
      return this.reject(res, clientId, 409, `client '${clientId}' has no open task in round ${r.round}`);
    if (meta.clientId !== undefined && meta.clientId !== clientId)
      return this.reject(res, clientId, 400, `update claims client '${String(meta.clientId)}' but the token is '${clientId}'s`, r);
    let metrics: Map<string, number>;
    let controlDelta: Tensors | undefined;
    try {
      validateUpdate(this.specs, tensors, meta.numSamples, { maxNorm: this.maxUpdateNorm, maxSamples: this.opts.maxSamples });
      metrics = validateMetrics(meta.metrics);
      if (this.control) controlDelta = validateControls(this.specs, controls);
      else if (controls.length) throw new EdgeOptError('E_VALUE', `control tensors sent, but this server does not run SCAFFOLD`);
    } catch (err) {
      return this.reject(res, clientId, 400, (err as Error).message, r);
    }
    r.updates.set(clientId, {
      clientId,
      numSamples: meta.numSamples as number,
      delta: Object.fromEntries(tensors.map((t) => [t.name, t.data])),
      metrics: Object.fromEntries(metrics),
      controlDelta,
    });
    r.bytesUp += body.length;
    this.emit('update', { clientId, round: r.round, bytes: body.length });
    if (r.updates.size >= this.target) this.closeRound(r);
    replyJson(res, 200, { accepted: true, round: r.round });
  }

  /** POST /v1/update in the statistics phase: one client's class statistics, checked, then stored. */
  private acceptStats(clientId: string, body: Buffer, res: http.ServerResponse): void {
    const cal = this.calibration!;
    let stats: ClassStats;
    try {
      const { meta, tensors } = decodeFrame(body, kernels().dequantizeS8);
      if (meta.status !== 'stats' || meta.round !== this.completed)
        return this.reject(res, clientId, 409, `the server collects class statistics after round ${this.completed}, not updates`);
      if (cal.stats.has(clientId)) return this.reject(res, clientId, 409, `client '${clientId}' already sent its statistics`);
      stats = decodeStats(tensors, cal.head);
    } catch (err) {
      return this.reject(res, clientId, 400, (err as Error).message);
    }
    cal.stats.set(clientId, stats);
    cal.bytesUp += body.length;
    this.emit('update', { clientId, round: this.completed, bytes: body.length });
    if (cal.stats.size >= this.target) this.finishCalibration(cal);
    replyJson(res, 200, { accepted: true, round: this.completed });
  }

  /** The next round, or the statistics phase after the last one. */
  private openNext(): void {
    if (!this.server || this.done) return;
    if (this.completed < this.opts.rounds) return this.openRound();
    const cal: OpenCalibration = {
      head: calibrationHead(this.graph),
      stats: new Map(),
      openedAt: Date.now(),
      bytesUp: 0,
      bytesDown: 0,
    };
    this.calibration = cal;
    const arm = () => {
      cal.timer = setTimeout(() => {
        if (this.calibration !== cal) return;
        if (cal.stats.size >= this.opts.minClients) return this.finishCalibration(cal);
        arm();
      }, this.opts.roundTimeoutMs);
      cal.timer.unref();
    };
    arm();
  }

  /** Pools the statistics (in client-id order), retrains the classifier, evaluates, and is done. */
  private finishCalibration(cal: OpenCalibration): void {
    if (cal.timer) clearTimeout(cal.timer);
    const ids = [...cal.stats.keys()].sort();
    const options = typeof this.options.calibrate === 'object' ? this.options.calibrate : {};
    const pooled = poolStats(
      ids.map((id) => cal.stats.get(id)!),
      cal.head,
    );
    this.graph = calibrateHead(this.graph, pooled, { seed: this.options.seed, ...options });
    this.global = readParams(this.graph);
    this.calibration = null;
    this.calibrated = true;
    const record: CalibrationRecord = { clients: ids, bytesUp: cal.bytesUp, bytesDown: cal.bytesDown, ms: Date.now() - cal.openedAt };
    Object.assign(record, this.evaluateModel(this.completed));
    this.checkpoints?.save();
    this.emit('calibrated', record);
    this.emit('done', this.records);
  }

  /** options.evaluate on the global model, its failure kept as a message (a broken evaluation never stops the server). */
  private evaluateModel(round: number): { evaluation?: Record<string, number>; evaluationError?: string } {
    if (!this.options.evaluate) return {};
    try {
      return { evaluation: this.options.evaluate(this.graph, round) };
    } catch (err) {
      return { evaluationError: String((err as Error)?.message ?? err) };
    }
  }

  private reject(res: http.ServerResponse, clientId: string, status: number, reason: string, r?: OpenRound): void {
    if (r && status === 400) r.rejected++;
    this.emit('rejected', { clientId, status, reason });
    replyJson(res, status, { error: reason }, status === 413);
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

  /**
   * FedAvgM: the averaged step feeds a velocity; plain FedAvg when serverMomentum is 0.
   * BatchNorm running statistics take the plain average: they are estimates, not a
   * descent direction, and a velocity overshoots them (a variance can go below zero).
   */
  private momentum(averaged: Tensors): Tensors {
    const beta = this.options.serverMomentum ?? 0;
    if (!beta) return averaged;
    const v = (this.velocity ??= Object.fromEntries(this.specs.map((s) => [s.name, new Float32Array(averaged[s.name].length)])));
    return Object.fromEntries(
      this.specs.map((s) => {
        if (s.statistic) return [s.name, averaged[s.name]];
        const w = this.global[s.name];
        const vel = v[s.name];
        for (let i = 0; i < vel.length; i++) vel[i] = beta * vel[i] + (averaged[s.name][i] - w[i]);
        return [s.name, w.map((x, i) => (s.mask && !s.mask[i] ? 0 : x + vel[i]))];
      }),
    );
  }

  /**
   * Applies the round and opens the next. Nothing here may leave the round
   * machine stuck: a failed checkpoint is retried in the background
   * ('checkpointError'), and the update that closed the round was accepted.
   */
  private closeRound(r: OpenRound): void {
    if (r.timer) clearTimeout(r.timer);
    // Sorted by client id: the aggregate does not depend on arrival order.
    const updates = [...r.updates.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    const averaged = aggregate(this.global, this.specs, updates, { ...this.robust, dp: this.options.dp, random: this.random });
    this.global = this.momentum(averaged);
    if (this.control) this.control = nextControls(this.control, this.specs, updates, this.tokens.size, this.robust);
    this.graph = writeParams(this.graph, this.global);
    this.completed = r.round;
    this.refreshNormBound();
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
    Object.assign(record, this.evaluateModel(r.round));
    this.records.push(record);
    this.current = null;
    this.openNext();
    this.checkpoints?.save();
    this.emit('round', record);
    if (this.done) this.emit('done', this.records);
  }
}
