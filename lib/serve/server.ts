/**
 * InferenceServer: the sessions of loaded models over HTTP (node:http).
 *
 *   POST /v1/models/<id>:predict   JSON or raw float32 body (see codec.ts)
 *   GET  /v1/models[/<id>]         input/output names, dtypes, shapes, memory, batching
 *   GET  /healthz                  200 while serving, 503 while shutting down
 *   GET  /metrics                  Prometheus text: requests, latency, batch sizes, queue depth, fallbacks
 *
 * Binds 127.0.0.1 unless told otherwise. Bodies are bounded (413 past `maxBodyBytes`); requests
 * in progress are bounded (503 E_BUSY past `maxInflight`, and a batching session's bounded queue
 * answers 503 E_BUSY too), so a burst is refused instead of growing memory. A client that goes
 * away aborts its run (a queued batched run leaves the queue). close() is graceful: no new
 * connections, requests in progress finish, keep-alive connections are closed after their response.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EdgeOptError, type ErrorCode } from '../errors';
import type { InferenceSession } from '../engine/session';
import { decodeRequest, encodeResponse, isRaw } from './codec';
import { Counter, Gauge, Histogram, Registry } from './metrics';

export interface ServerOptions {
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Largest request body accepted (default 16 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Predict requests handled at once (default 4096); past it, 503 E_BUSY. */
  maxInflight?: number;
  /** How long close() waits for requests in progress before cutting connections (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Time allowed to receive a whole request (node's requestTimeout; default 30 s). */
  requestTimeoutMs?: number;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const STATUS: Partial<Record<ErrorCode, number>> = {
  E_ARGUMENT: 400,
  E_SHAPE: 400,
  E_DTYPE: 400,
  E_VALUE: 400,
  E_FORMAT: 400,
  E_NOT_FOUND: 404,
  E_BUSY: 503,
  E_STATE: 503,
};

/** An error answered with a status of its own (413, 405). */
class HttpError extends EdgeOptError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export class InferenceServer {
  readonly host: string;
  readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly maxInflight: number;
  private readonly shutdownTimeoutMs: number;
  private readonly sessions = new Map<string, InferenceSession>();
  private readonly server: http.Server;
  private inflight = 0;
  private draining = false;
  private closing?: Promise<void>;
  private readonly drained: Array<() => void> = [];
  private readonly registry = new Registry();
  private readonly received: Counter;
  private readonly answered: Counter;
  private readonly latency: Histogram;
  private readonly runLatency: Histogram;
  private readonly batchSize: Histogram;
  private readonly batchSeconds: Histogram;
  private readonly fallbacks: Counter;

  constructor(sessions: readonly InferenceSession[], options: ServerOptions = {}) {
    const positive = (name: string, v: number | undefined, fallback: number) => {
      if (v === undefined) return fallback;
      if (!(Number.isInteger(v) && v > 0))
        throw new EdgeOptError('E_ARGUMENT', `server: ${name} must be a positive integer, got ${String(v)}`);
      return v;
    };
    this.host = options.host ?? '127.0.0.1';
    const port = options.port ?? 8080;
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
      throw new EdgeOptError('E_ARGUMENT', `server: port must be an integer in 0..65535, got ${String(port)}`);
    this.port = port;
    this.maxBodyBytes = positive('maxBodyBytes', options.maxBodyBytes, 16 << 20);
    this.maxInflight = positive('maxInflight', options.maxInflight, 4096);
    this.shutdownTimeoutMs = positive('shutdownTimeoutMs', options.shutdownTimeoutMs, 10_000);
    if (!sessions.length) throw new EdgeOptError('E_ARGUMENT', 'server: no models to serve');
    for (const s of sessions) {
      if (this.sessions.has(s.id)) throw new EdgeOptError('E_ARGUMENT', `server: model id '${s.id}' is given twice`);
      this.sessions.set(s.id, s);
    }

    const r = this.registry;
    this.received = r.add(new Counter('edgeopt_requests_received_total', 'Predict requests received, by model.'));
    this.answered = r.add(
      new Counter('edgeopt_requests_total', 'Predict requests answered, by model and HTTP status (499: the client went away first).'),
    );
    this.latency = r.add(
      new Histogram(
        'edgeopt_request_duration_seconds',
        'Predict request latency, from the request to the end of the response.',
        LATENCY_BUCKETS,
      ),
    );
    this.runLatency = r.add(
      new Histogram('edgeopt_run_duration_seconds', 'Time in session.run: the batch queue and the engine.', LATENCY_BUCKETS),
    );
    this.batchSize = r.add(new Histogram('edgeopt_batch_size', 'Rows per batched engine call.', BATCH_BUCKETS));
    this.batchSeconds = r.add(new Histogram('edgeopt_batch_duration_seconds', 'Engine time of one batched call.', LATENCY_BUCKETS));
    r.add(
      new Gauge('edgeopt_queue_depth', 'Rows waiting for a batch.', () =>
        [...this.sessions.values()].map((s) => ({ labels: { model: s.id }, value: s.batcher?.queueDepth ?? 0 })),
      ),
    );
    r.add(new Gauge('edgeopt_inflight_requests', 'Predict requests being handled.', () => [{ labels: {}, value: this.inflight }]));
    this.fallbacks = r.add(
      new Counter('edgeopt_fallbacks_total', 'Nodes moved off their preferred backend (at load and at run time), by model.'),
    );
    r.add(
      new Gauge('process_resident_memory_bytes', 'Resident set size of the server process.', () => [
        { labels: {}, value: process.memoryUsage.rss() },
      ]),
    );

    const engines = new Set(sessions.map((s) => s.engine));
    for (const s of sessions) {
      this.fallbacks.inc({ model: s.id }, s.placement.filter((p) => p.reason).length);
      s.batcher?.on('batch', (b) => {
        this.batchSize.observe({ model: s.id }, b.rows);
        this.batchSeconds.observe({ model: s.id }, b.ms / 1000);
      });
    }
    for (const e of engines) e.on('fallback', (f) => this.sessions.has(f.modelId) && this.fallbacks.inc({ model: f.modelId }));

    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.requestTimeout = options.requestTimeoutMs ?? 30_000;
  }

  /** Starts listening; resolves to the base URL. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.url;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo | null;
    if (!a) throw new EdgeOptError('E_STATE', 'the server is not listening');
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  /** The metrics in Prometheus text format (what GET /metrics returns). */
  metrics(): string {
    return this.registry.render();
  }

  /**
   * Graceful shutdown: stops accepting connections, lets requests in progress finish (then closes
   * their keep-alive connections), and after `shutdownTimeoutMs` cuts whatever is left.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.draining = true;
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.shutdownTimeoutMs)));
      await Promise.race([this.idle(), timeout]);
      clearTimeout(timer);
      this.server.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  private idle(): Promise<void> {
    if (!this.inflight) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const predict = /^\/v1\/models\/([^/]+):predict$/.exec(path);
    if (predict) return this.predict(decodeURIComponent(predict[1]), req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'E_ARGUMENT', `${req.method} ${path} is not supported`);
    if (path === '/healthz') {
      return this.json(res, this.draining ? 503 : 200, {
        status: this.draining ? 'shutting down' : 'ok',
        models: [...this.sessions.keys()],
      });
    }
    if (path === '/metrics') {
      const text = this.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (path === '/v1/models') return this.json(res, 200, { models: [...this.sessions.values()].map(describeModel) });
    const model = /^\/v1\/models\/([^/:]+)$/.exec(path);
    if (model) return this.json(res, 200, describeModel(this.session(decodeURIComponent(model[1]))));
    throw new HttpError(404, 'E_NOT_FOUND', `no route ${path} (try POST /v1/models/<id>:predict, GET /v1/models, /healthz, /metrics)`);
  }

  private session(id: string): InferenceSession {
    const s = this.sessions.get(id);
    if (!s) throw new EdgeOptError('E_NOT_FOUND', `no model '${id}' (models: ${[...this.sessions.keys()].join(', ')})`);
    return s;
  }

  private async predict(id: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const start = performance.now();
    const session = this.session(id);
    const labels = { model: id };
    this.received.inc(labels);
    this.inflight++;
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') res.setHeader('x-request-id', requestId);
    // Only a queued (batched) run can still be called off when the client goes away.
    const ac = session.batcher ? new AbortController() : undefined;
    if (ac)
      res.on('close', () => {
        if (!res.writableFinished) ac.abort(new EdgeOptError('E_ABORTED', 'the client closed the connection'));
      });
    let status = 500;
    try {
      if (req.method !== 'POST') throw new HttpError(405, 'E_ARGUMENT', `${req.method} ${req.url}: predict takes POST`);
      if (this.draining) throw new EdgeOptError('E_STATE', 'the server is shutting down');
      if (this.inflight > this.maxInflight)
        throw new EdgeOptError('E_BUSY', `the server is handling ${this.maxInflight} requests (maxInflight); retry later`);
      const body = await this.readBody(req);
      const { feeds, form } = decodeRequest(body, req.headers, session);
      const t0 = performance.now();
      const out = await session.run(feeds, { signal: ac?.signal });
      this.runLatency.observe(labels, (performance.now() - t0) / 1000);
      const accept = req.headers.accept ?? '*/*';
      const rawOk = isRaw(req.headers) && !/application\/json/.test(accept);
      const { body: payload, headers } = encodeResponse(out, form, rawOk, session);
      status = 200;
      res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(payload), ...(this.draining ? { connection: 'close' } : {}) });
      res.end(payload);
    } catch (err) {
      status = ac?.signal.aborted ? 499 : this.fail(res, err);
    } finally {
      this.answered.inc({ model: id, code: String(status) });
      this.latency.observe(labels, (performance.now() - start) / 1000);
      if (--this.inflight === 0) for (const d of this.drained.splice(0)) d();
    }
  }

  /** The whole body, up to maxBodyBytes (413 past it, from Content-Length or while reading). */
  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = () => new HttpError(413, 'E_ARGUMENT', `the request body exceeds maxBodyBytes (${this.maxBodyBytes} bytes)`);
    if (declared > this.maxBodyBytes) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.maxBodyBytes) {
          req.removeAllListeners('data');
          req.pause();
          reject(tooLarge());
        } else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks, size)));
      req.on('error', reject);
    });
  }

  /** Answers an error as JSON { error: { code, message } }; returns the status sent. */
  private fail(res: http.ServerResponse, err: unknown): number {
    const e = err instanceof EdgeOptError ? err : new EdgeOptError('E_NATIVE', String((err as Error)?.message ?? err));
    const status = e instanceof HttpError ? e.status : (STATUS[e.code] ?? 500);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return status;
    }
    const close = this.draining || status === 413;
    this.json(
      res,
      status,
      { error: { code: e.code, message: e.message } },
      { ...(e.code === 'E_BUSY' ? { 'retry-after': '1' } : {}), ...(close ? { connection: 'close' } : {}) },
    );
    return status;
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }
}

function describeModel(s: InferenceSession) {
  const b = s.batcher;
  return {
    id: s.id,
    inputs: s.inputMetadata,
    outputs: s.outputMetadata,
    memory: s.engine.memory(s.id),
    batching: b ? { maxBatch: b.maxBatch, maxDelayMs: b.maxDelayMs, maxQueue: b.maxQueue, concurrency: b.concurrency } : null,
  };
}
