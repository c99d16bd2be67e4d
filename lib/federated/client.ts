/**
 * FederatedLearningClient: local data, real local training (backprop, E
 * epochs), updates = weight deltas + sample count + metrics (Flower's fit),
 * optionally compressed with error feedback; `connect` runs the polling loop
 * against a FederatedServer.
 */
import { kernels } from '../backends';
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { decodeEom, loadModel, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { restrictedCrossEntropy } from '../train/loss';
import { trainAsync, type LossFn } from '../train/trainer';
import type { ClientUpdate } from './aggregate';
import { calibrationHead, classStats, encodeStats } from './calibrate';
import { decodeFrame, encodeFrame } from './codec';
import { DeltaCompressor, parseCompression } from './compress';
import { paramSpecs, readParams, subtract, writeParams, type Tensors } from './params';
import { ClientControl, controlSpecs, encodeControls, splitControls, validateControls } from './scaffold';
import type { FitConfig } from './server';

export interface TrainLocalOptions {
  epochs: number;
  batchSize?: number;
  lr?: number;
  optimizer?: 'sgd' | 'adam';
  momentum?: number;
  /** FedProx: (mu/2)·‖w - w_global‖² added to the local loss. */
  proxMu?: number;
  /** Softmax over the classes the local data holds only (restrictedCrossEntropy: FedRS, for label skew). */
  restrictSoftmax?: boolean;
  /** SCAFFOLD: the server's control variate c (scaffold.ts); the update then carries Δc_i. */
  control?: Tensors;
  seed?: number;
  signal?: AbortSignal;
}

export interface ClientEvent {
  type: 'trained' | 'sent' | 'rejected' | 'retry' | 'waiting';
  round?: number;
  detail?: string;
}

export interface ConnectOptions {
  token: string;
  signal?: AbortSignal;
  /** Upper bound on task requests (default 100000). */
  maxPolls?: number;
  /** Upper bound on the whole loop (default 1 hour). */
  timeoutMs?: number;
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /** Consecutive failed requests tolerated before giving up (default 20). */
  maxFailures?: number;
  /** Progress: 'waiting' comes once per change of the server's reason (e.g. too few clients connected). */
  onEvent?: (e: ClientEvent) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A stable 32-bit hash of the client id, mixed into shuffling seeds. */
function idHash(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

export class FederatedLearningClient {
  private model: Graph | null = null;
  private readonly chunks: Dataset[] = [];
  private readonly compressor = new DeltaCompressor();
  private readonly control = new ClientControl();
  /** Bytes this client uploaded and downloaded through `connect`. */
  bytesSent = 0;
  bytesReceived = 0;

  constructor(readonly clientId: string) {
    if (typeof clientId !== 'string' || !clientId)
      throw new EdgeOptError('E_ARGUMENT', 'FederatedLearningClient: clientId must be a non-empty string');
  }

  /** The global model that local training starts from. */
  setModel(model: ModelSource): this {
    this.model = loadModel(model);
    return this;
  }

  /** Appends labelled rows to the local data. */
  addData(data: Dataset): this {
    if (!data?.labels || data.labels.length !== data.shape[0])
      throw new EdgeOptError('E_ARGUMENT', `client '${this.clientId}': addData needs labelled rows`);
    this.chunks.push(data);
    return this;
  }

  get numSamples(): number {
    return this.chunks.reduce((s, d) => s + d.shape[0], 0);
  }

  private dataset(): Dataset {
    if (this.chunks.length === 1) return this.chunks[0];
    const rows = this.numSamples;
    const data = new Float32Array(this.chunks.reduce((s, d) => s + d.data.length, 0));
    const labels = new Int32Array(rows);
    let o = 0;
    let r = 0;
    for (const d of this.chunks) {
      data.set(d.data, o);
      labels.set(d.labels!, r);
      o += d.data.length;
      r += d.shape[0];
    }
    this.chunks.splice(0, this.chunks.length, { data, shape: [rows, data.length / rows], labels });
    return this.chunks[0];
  }

  /** Cross-entropy over the classes the local labels hold. */
  private restrictedLoss(): LossFn {
    const present: boolean[] = [];
    for (const y of this.dataset().labels!) present[y] = true;
    return (logits, b) => restrictedCrossEntropy(logits, b.labels, b.rows, present);
  }

  /** Trains on the local data from the current model; delta = local weights - global weights. */
  async trainLocal(options: TrainLocalOptions): Promise<ClientUpdate> {
    if (!this.model) throw new EdgeOptError('E_STATE', `client '${this.clientId}': call setModel before trainLocal`);
    if (!this.numSamples) throw new EdgeOptError('E_STATE', `client '${this.clientId}': no local data (addData)`);
    const global = readParams(this.model);
    const mu = options.proxMu ?? 0;
    const names = options.control ? controlSpecs(paramSpecs(this.model)).map((s) => s.name) : [];
    const controlVariate = options.control
      ? { offset: this.control.offset(options.control, names), meanGradient: names.map((n) => new Float32Array(global[n].length)) }
      : undefined;
    const { model, history } = await trainAsync(this.model, this.dataset(), {
      epochs: options.epochs,
      batchSize: options.batchSize ?? 32,
      lr: options.lr,
      optimizer: options.optimizer,
      momentum: options.momentum,
      seed: options.seed ?? idHash(this.clientId),
      proximal: mu > 0 ? { mu, anchor: Object.values(global) } : undefined,
      loss: options.restrictSoftmax ? this.restrictedLoss() : undefined,
      controlVariate,
      signal: options.signal,
    });
    const last = history[history.length - 1];
    return {
      clientId: this.clientId,
      numSamples: this.numSamples,
      delta: subtract(readParams(model), global),
      metrics: last ? { loss: last.loss, accuracy: last.accuracy } : {},
      controlDelta: controlVariate ? this.control.update(controlVariate.meanGradient, names) : undefined,
    };
  }

  /** Polls the server for tasks, trains, uploads, until the server says done. Returns the rounds trained. */
  async connect(url: string, options: ConnectOptions): Promise<{ rounds: number }> {
    const base = url.replace(/\/+$/, '');
    const deadline = Date.now() + (options.timeoutMs ?? 3_600_000);
    const maxFailures = options.maxFailures ?? 20;
    const emit = options.onEvent ?? (() => {});
    let failures = 0;
    let rounds = 0;
    let waitingFor = '';
    const request = async (method: 'GET' | 'POST', route: string, body?: Buffer): Promise<{ status: number; bytes: Buffer }> => {
      const timeout = AbortSignal.timeout(options.requestTimeoutMs ?? 30_000);
      const res = await fetch(base + route, {
        method,
        headers: { authorization: `Bearer ${options.token}`, ...(body ? { 'content-type': 'application/octet-stream' } : {}) },
        body,
        signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      this.bytesReceived += bytes.length;
      if (res.status === 401) throw new EdgeOptError('E_ARGUMENT', `client '${this.clientId}': the server rejected the token (401)`);
      return { status: res.status, bytes };
    };
    for (let poll = 0; poll < (options.maxPolls ?? 100_000); poll++) {
      if (options.signal?.aborted) throw new EdgeOptError('E_STATE', `client '${this.clientId}': aborted`);
      if (Date.now() > deadline) {
        const why = waitingFor ? `; the server's last word: ${waitingFor}` : '';
        throw new EdgeOptError(
          'E_TIMEOUT',
          `client '${this.clientId}': gave up after timeoutMs (${options.timeoutMs ?? 3_600_000} ms)${why}`,
        );
      }
      try {
        if (!this.model) this.model = decodeEom((await request('GET', '/v1/model')).bytes, `${base}/v1/model`);
        const task = await request('GET', '/v1/task');
        if (task.status !== 200) throw new EdgeOptError('E_STATE', `GET /v1/task answered ${task.status}`);
        const { meta, tensors: all } = decodeFrame(task.bytes, kernels().dequantizeS8);
        const { params: tensors, controls } = splitControls(all);
        failures = 0;
        if (meta.status === 'done') return { rounds };
        if (meta.status !== 'fit' && meta.status !== 'stats') {
          const reason = typeof meta.reason === 'string' ? meta.reason : '';
          if (reason && reason !== waitingFor) emit({ type: 'waiting', round: meta.round as number, detail: reason });
          waitingFor = reason;
          await sleep(Math.min(Number(meta.retryMs) || 100, Math.max(1, deadline - Date.now())), options.signal);
          continue;
        }
        waitingFor = '';
        const round = meta.round as number;
        this.setModel(writeParams(this.model, Object.fromEntries(tensors.map((t) => [t.name, t.data])) as Tensors));
        if (meta.status === 'stats') {
          // The statistics phase after the last round (calibrate.ts): class statistics under the final model.
          const stats = encodeStats(classStats(this.model!, this.dataset()), calibrationHead(this.model!));
          const frame = encodeFrame({ status: 'stats', round, clientId: this.clientId, numSamples: this.numSamples }, stats);
          this.bytesSent += frame.length;
          const sent = await request('POST', '/v1/update', frame);
          if (sent.status === 200) emit({ type: 'sent', round, detail: 'class statistics' });
          else emit({ type: 'rejected', round, detail: `${sent.status} ${sent.bytes.toString('utf8')}` });
          continue;
        }
        const config = meta.config as FitConfig;
        const control = config.scaffold ? validateControls(paramSpecs(this.model), controls) : undefined;
        const update = await this.trainLocal({
          ...config,
          control,
          seed: ((config.seed ?? 0) + idHash(this.clientId) + round * 7919) >>> 0,
          signal: options.signal,
        });
        emit({ type: 'trained', round });
        const shapes = Object.fromEntries(tensors.map((t) => [t.name, t.shape]));
        const encoded = this.compressor.compress(update.delta, shapes, parseCompression(config.compress ?? 'none'));
        if (update.controlDelta) encoded.push(...encodeControls(update.controlDelta, shapes));
        const frame = encodeFrame({ round, clientId: this.clientId, numSamples: update.numSamples, metrics: update.metrics }, encoded);
        this.bytesSent += frame.length;
        const sent = await request('POST', '/v1/update', frame);
        if (sent.status === 200) {
          rounds++;
          emit({ type: 'sent', round });
        } else emit({ type: 'rejected', round, detail: `${sent.status} ${sent.bytes.toString('utf8')}` });
      } catch (err) {
        if (err instanceof EdgeOptError && err.code === 'E_ARGUMENT') throw err;
        if (options.signal?.aborted) throw new EdgeOptError('E_STATE', `client '${this.clientId}': aborted`);
        if (++failures > maxFailures)
          throw new EdgeOptError(
            'E_STATE',
            `client '${this.clientId}': ${failures} failed requests in a row, last: ${(err as Error).message}`,
            { cause: err },
          );
        emit({ type: 'retry', detail: (err as Error).message });
        await sleep(Math.min(2000, 50 * 2 ** failures), options.signal);
      }
    }
    throw new EdgeOptError('E_STATE', `client '${this.clientId}': maxPolls reached`);
  }
}
