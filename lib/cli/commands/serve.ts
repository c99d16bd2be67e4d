import type { Command } from 'commander';
import * as path from 'node:path';
import { EdgeInferenceEngine, type Device } from '../../engine/engine';
import type { InferenceSession } from '../../engine/session';
import { InferenceServer } from '../../serve/server';
import { numIn } from '../options';
import { loadModelArg } from './optimize';

interface ServeOptions {
  port: string;
  host: string;
  device: Device;
  threads?: string;
  batching: boolean;
  maxBatch: string;
  maxDelayMs: string;
  maxQueue: string;
  maxBodyBytes: string;
  maxInflight: string;
  shutdownTimeoutMs: string;
}

/** `id=path` or `path` (the id is the file name without its extension). */
function modelArg(arg: string): { id: string; file: string } {
  const eq = arg.indexOf('=');
  if (eq > 0) return { id: arg.slice(0, eq), file: arg.slice(eq + 1) };
  return { id: path.basename(arg).replace(/\.(eom|onnx)$/, ''), file: arg };
}

export function register(program: Command): void {
  program
    .command('serve <models...>')
    .description('serve models over HTTP: POST /v1/models/<id>:predict, GET /healthz, GET /metrics (Prometheus)')
    .option('--port <port>', 'TCP port (0: any free port)', '8080')
    .option('--host <host>', 'address to bind (default: loopback only)', '127.0.0.1')
    .option('--device <device>', 'auto | npu | cpu | ts', 'auto')
    .option('--threads <n>', 'intra-op threads of native plans (default: the core count)')
    .option('--no-batching', 'run every request on its own (default: dynamic batching)')
    .option('--max-batch <rows>', 'rows per batched engine call', '32')
    .option('--max-delay-ms <ms>', 'longest wait of a queued request for batch-mates (0: the next event-loop turn)', '0')
    .option('--max-queue <rows>', 'rows that may wait for a batch; past it, 503 E_BUSY', '1024')
    .option('--max-body-bytes <n>', 'largest request body (413 past it)', String(16 << 20))
    .option('--max-inflight <n>', 'requests handled at once (503 E_BUSY past it)', '4096')
    .option('--shutdown-timeout-ms <ms>', 'on SIGTERM, how long requests in progress may take to finish', '10000')
    .addHelpText('after', '\nmodels: <model.eom|model.onnx|weights-dir> or <id>=<path>; the id is the file name without extension.')
    .action(async (models: string[], opts: ServeOptions) => {
      const engine = new EdgeInferenceEngine({
        device: opts.device,
        ...(opts.threads ? { threads: numIn(opts.threads, '--threads', 1, 256, true) } : {}),
      });
      const batching = opts.batching
        ? {
            maxBatch: numIn(opts.maxBatch, '--max-batch', 1, 65536, true),
            maxDelayMs: numIn(opts.maxDelayMs, '--max-delay-ms', 0, 60_000),
            maxQueue: numIn(opts.maxQueue, '--max-queue', 1, 1e7, true),
          }
        : false;
      const sessions: InferenceSession[] = [];
      for (const m of models.map(modelArg)) sessions.push(await engine.loadModel(m.id, loadModelArg(m.file), { batching }));
      const server = new InferenceServer(sessions, {
        host: opts.host,
        port: numIn(opts.port, '--port', 0, 65535, true),
        maxBodyBytes: numIn(opts.maxBodyBytes, '--max-body-bytes', 1, 2 ** 31, true),
        maxInflight: numIn(opts.maxInflight, '--max-inflight', 1, 1e6, true),
        shutdownTimeoutMs: numIn(opts.shutdownTimeoutMs, '--shutdown-timeout-ms', 1, 3_600_000, true),
      });
      const url = await server.listen();
      const mode = batching
        ? `batching maxBatch ${batching.maxBatch}, maxDelayMs ${batching.maxDelayMs}, maxQueue ${batching.maxQueue}`
        : 'no batching';
      console.log(`edgeopt serve: listening on ${url} (models: ${sessions.map((s) => s.id).join(', ')}; ${mode}; pid ${process.pid})`);
      const stop = (signal: string) => {
        console.log(`edgeopt serve: ${signal}: finishing requests in progress`);
        void server
          .close()
          .then(() => Promise.all(sessions.map((s) => s.release())))
          .then(() => {
            engine.dispose();
            console.log('edgeopt serve: stopped');
          });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
