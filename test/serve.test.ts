/**
 * The HTTP inference server on loopback: predictions (JSON rows, named JSON
 * tensors, raw float32 and uint8) equal the engine's bit for bit; every bad
 * request gets its status and EdgeOptError code; the bounded queue and the
 * in-flight limit answer 503 E_BUSY; a client that goes away leaves the queue;
 * /healthz and /metrics (Prometheus text) tell the truth; close() lets requests
 * in progress finish; `edgeopt serve` starts, answers, and stops on SIGTERM.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeInferenceEngine, type MemoryReport } from '../lib/engine/engine';
import type { InferenceSession } from '../lib/engine/session';
import { saveModel } from '../lib/model';
import { foldInputNormalization } from '../lib/optimizer/input-normalization';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { InferenceServer, type ServerOptions } from '../lib/serve/server';
import { sameFloats, throwsCode } from './helpers';

const mnist = mnistTest();
const int8 = quantizeGraph(defaultModel());
const rows = sliceRows(mnist, 0, 4);
const ROOT = path.join(__dirname, '..');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection (no keep-alive pool between tests). */
function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const json = (r: Reply) => JSON.parse(r.body.toString()) as Record<string, unknown>;
const postJson = (url: string, body: unknown) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const errorOf = (r: Reply) => (json(r) as { error: { code: string; message: string } }).error;

async function withServer(
  setup: (engine: EdgeInferenceEngine) => InferenceSession[],
  options: ServerOptions,
  body: (url: string, server: InferenceServer, engine: EdgeInferenceEngine) => Promise<void>,
): Promise<void> {
  const engine = new EdgeInferenceEngine();
  const server = new InferenceServer(setup(engine), { port: 0, ...options });
  const url = await server.listen();
  try {
    await body(url, server, engine);
  } finally {
    await server.close();
    engine.dispose();
  }
}

test('predict: JSON rows, JSON named tensors (flat and nested), raw float32; all equal the engine bit for bit', async () => {
  await withServer(
    (e) => [e.loadModelSync('mnist', int8, { batching: { maxDelayMs: 1 } })],
    {},
    async (url, _s, e) => {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const want = e.inferSync('mnist', { data: rows.data, shape: rows.shape }).data;
      const flat = Array.from(rows.data);
      const nested = Array.from({ length: 4 }, (_, r) => flat.slice(r * 784, (r + 1) * 784));
      const a = await postJson(`${url}/v1/models/mnist:predict`, { instances: nested });
      assert.is(a.status, 200);
      sameFloats(Float32Array.from((json(a).predictions as number[][]).flat()), want, 'instances');
      const b = await postJson(`${url}/v1/models/mnist:predict`, { inputs: { input: { data: flat, dims: [4, 784] } } });
      const bo = (json(b).outputs as Record<string, { dims: number[]; data: number[] }>)['fc2.out'];
      assert.equal(bo.dims, [4, 10]);
      sameFloats(Float32Array.from(bo.data), want, 'inputs, flat');
      const c = await postJson(`${url}/v1/models/mnist:predict`, { inputs: { input: nested } });
      sameFloats(Float32Array.from((json(c).outputs as Record<string, { data: number[] }>)['fc2.out'].data), want, 'inputs, nested');
      const raw = await request(`${url}/v1/models/mnist:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': '4,784', 'x-request-id': 'abc-1' },
        body: Buffer.from(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength),
      });
      assert.is(raw.status, 200);
      assert.is(raw.headers['content-type'], 'application/octet-stream');
      assert.is(raw.headers['x-edgeopt-dims'], '4,10');
      assert.is(raw.headers['x-edgeopt-output'], 'fc2.out');
      assert.is(raw.headers['x-request-id'], 'abc-1');
      sameFloats(new Float32Array(raw.body.buffer.slice(raw.body.byteOffset, raw.body.byteOffset + raw.body.length)), want, 'raw');
      const rawJson = await request(`${url}/v1/models/mnist:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': '4,784', accept: 'application/json' },
        body: Buffer.from(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength),
      });
      assert.is(rawJson.headers['content-type'], 'application/json');
      const models = json(await request(`${url}/v1/models`)).models as Array<{
        id: string;
        inputs: unknown;
        batching: unknown;
        memory: MemoryReport;
      }>;
      assert.equal(models[0].id, 'mnist');
      assert.equal(models[0].memory, e.memory('mnist'));
      assert.ok(models[0].memory.weightBytes > 100_000 && models[0].memory.arenaBytes > 0);
      assert.equal(models[0].inputs, [{ name: 'input', dtype: 'float32', shape: [null, 784] }]);
      assert.equal(models[0].batching, { maxBatch: 32, maxDelayMs: 1, maxQueue: 1024, concurrency: 1 });
    },
  );
});

test('a uint8 model takes raw bytes (octet-stream, x-edgeopt-dtype uint8) and JSON integers 0..255', async () => {
  const u8 = quantizeGraph(foldInputNormalization(defaultModel()));
  await withServer(
    (e) => [e.loadModelSync('cam', u8)],
    {},
    async (url, _s, e) => {
      const want = e.inferSync('cam', Float32Array.from(rows.raw!)).data;
      const raw = await request(`${url}/v1/models/cam:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': '4,784', 'x-edgeopt-dtype': 'uint8' },
        body: Buffer.from(rows.raw!),
      });
      assert.is(raw.status, 200);
      sameFloats(new Float32Array(raw.body.buffer.slice(raw.body.byteOffset, raw.body.byteOffset + raw.body.length)), want, 'uint8 raw');
      const j = await postJson(`${url}/v1/models/cam:predict`, {
        instances: Array.from({ length: 4 }, (_, r) => Array.from(rows.raw!.subarray(r * 784, (r + 1) * 784))),
      });
      sameFloats(Float32Array.from((json(j).predictions as number[][]).flat()), want, 'uint8 JSON');
      const bad = await postJson(`${url}/v1/models/cam:predict`, { instances: [new Array(784).fill(0.5)] });
      assert.is(bad.status, 400);
      assert.is(errorOf(bad).code, 'E_VALUE');
      const wrongType = await request(`${url}/v1/models/cam:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': '1,784', 'x-edgeopt-dtype': 'float32' },
        body: Buffer.alloc(784 * 4),
      });
      assert.is(errorOf(wrongType).code, 'E_DTYPE');
    },
  );
});

test('bad requests: status and EdgeOptError code for each', async () => {
  await withServer(
    (e) => [e.loadModelSync('mnist', int8)],
    { maxBodyBytes: 64 * 1024 },
    async (url) => {
      const p = `${url}/v1/models/mnist:predict`;
      const cases: Array<[Promise<Reply>, number, string, RegExp]> = [
        [postJson(`${url}/v1/models/nope:predict`, { instances: [[1]] }), 404, 'E_NOT_FOUND', /no model 'nope' \(models: mnist\)/],
        [
          request(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"instances": [' }),
          400,
          'E_FORMAT',
          /not JSON/,
        ],
        [postJson(p, { rows: [] }), 400, 'E_ARGUMENT', /"inputs"/],
        [postJson(p, { instances: [] }), 400, 'E_SHAPE', /empty/],
        [postJson(p, { instances: [[1, 2, 3]] }), 400, 'E_SHAPE', /expects dims \[batch, 784\], got \[1, 3\]/],
        [postJson(p, { instances: [[[1, 2], [3]]] }), 400, 'E_SHAPE', /not rectangular/],
        [postJson(p, { instances: [new Array(784).fill('x')] }), 400, 'E_DTYPE', /expected a number, got string/],
        [postJson(p, { inputs: { image: [[1]] } }), 400, 'E_ARGUMENT', /no input 'image'/],
        [postJson(p, { inputs: { input: { data: [1, 2], dims: 'x' } } }), 400, 'E_SHAPE', /"dims"/],
        [
          request(p, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(784 * 4) }),
          400,
          'E_SHAPE',
          /x-edgeopt-dims/,
        ],
        [
          request(p, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': '2,784' },
            body: Buffer.alloc(784 * 4),
          }),
          400,
          'E_SHAPE',
          /need 6272 bytes, the body has 3136/,
        ],
        [
          request(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(65 * 1024, 32) }),
          413,
          'E_ARGUMENT',
          /maxBodyBytes \(65536 bytes\)/,
        ],
        [request(p), 405, 'E_ARGUMENT', /predict takes POST/],
        [request(`${url}/v2/nothing`), 404, 'E_NOT_FOUND', /no route/],
        [request(`${url}/metrics`, { method: 'DELETE' }), 405, 'E_ARGUMENT', /not supported/],
      ];
      for (const [reply, status, code, message] of cases) {
        const r = await reply;
        assert.is(r.status, status, r.body.toString());
        assert.is(errorOf(r).code, code);
        assert.match(errorOf(r).message, message);
      }
      // The server is still healthy after all of that.
      assert.is((await request(`${url}/healthz`)).status, 200);
    },
  );
});

test('back-pressure: a full batch queue and too many requests in flight answer 503 E_BUSY with Retry-After', async () => {
  await withServer(
    (e) => [e.loadModelSync('mnist', int8, { batching: { maxBatch: 64, maxDelayMs: 300, maxQueue: 2 } })],
    {},
    async (url) => {
      const one = { instances: [Array.from(rows.data.subarray(0, 784))] };
      const replies = await Promise.all([0, 1, 2, 3].map(() => postJson(`${url}/v1/models/mnist:predict`, one)));
      const statuses = replies.map((r) => r.status).sort();
      assert.equal(statuses, [200, 200, 503, 503]);
      const busy = replies.find((r) => r.status === 503)!;
      assert.is(errorOf(busy).code, 'E_BUSY');
      assert.is(busy.headers['retry-after'], '1');
    },
  );
  await withServer(
    (e) => [e.loadModelSync('mnist', int8, { batching: { maxBatch: 64, maxDelayMs: 300 } })],
    { maxInflight: 1 },
    async (url) => {
      const one = { instances: [Array.from(rows.data.subarray(0, 784))] };
      const replies = await Promise.all([0, 1].map(() => postJson(`${url}/v1/models/mnist:predict`, one)));
      assert.equal(replies.map((r) => r.status).sort(), [200, 503]);
      assert.match(errorOf(replies.find((r) => r.status === 503)!).message, /maxInflight/);
    },
  );
});

test('a client that goes away takes its queued request out (counted as 499); metrics count every request', async () => {
  await withServer(
    (e) => [e.loadModelSync('mnist', int8, { batching: { maxBatch: 64, maxDelayMs: 400 } })],
    {},
    async (url, server) => {
      const session = (server as unknown as { sessions: Map<string, InferenceSession> }).sessions.get('mnist')!;
      const req = http.request(`${url}/v1/models/mnist:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        agent: false,
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ instances: [Array.from(rows.data.subarray(0, 784))] }));
      while (session.batcher!.queueDepth === 0) await new Promise((r) => setTimeout(r, 5));
      req.destroy();
      while (session.batcher!.queueDepth !== 0) await new Promise((r) => setTimeout(r, 5));
      const ok = await postJson(`${url}/v1/models/mnist:predict`, { instances: [Array.from(rows.data.subarray(0, 784))] });
      assert.is(ok.status, 200);
      const bad = await postJson(`${url}/v1/models/mnist:predict`, { instances: [[1]] });
      assert.is(bad.status, 400);
      const text = (await request(`${url}/metrics`)).body.toString();
      assert.match(text, /# TYPE edgeopt_requests_total counter/);
      assert.match(text, /edgeopt_requests_received_total\{model="mnist"\} 3\n/);
      assert.match(text, /edgeopt_requests_total\{model="mnist",code="499"\} 1\n/);
      assert.match(text, /edgeopt_requests_total\{model="mnist",code="200"\} 1\n/);
      assert.match(text, /edgeopt_requests_total\{model="mnist",code="400"\} 1\n/);
      assert.match(text, /edgeopt_request_duration_seconds_count\{model="mnist"\} 3\n/);
      assert.match(text, /edgeopt_request_duration_seconds_bucket\{model="mnist",le="\+Inf"\} 3\n/);
      assert.match(text, /edgeopt_batch_size_bucket\{model="mnist",le="1"\} 1\n/);
      assert.match(text, /edgeopt_batch_size_count\{model="mnist"\} 1\n/);
      assert.match(text, /edgeopt_queue_depth\{model="mnist"\} 0\n/);
      assert.match(text, /edgeopt_inflight_requests 1\n|edgeopt_inflight_requests 0\n/);
      // Under EDGEOPT_FORCE_TS every node has fallen back from native to TS.
      assert.ok(text.includes(`edgeopt_fallbacks_total{model="mnist"} ${session.placement.filter((p) => p.reason).length}\n`));
      assert.match(text, /process_resident_memory_bytes \d+\n/);
    },
  );
});

test('fallbacks are counted in /metrics (an NPU asked for without a plugin)', async () => {
  const engine = new EdgeInferenceEngine({ device: 'npu', npuPlugin: '/nonexistent/plugin.so' });
  const server = new InferenceServer([engine.loadModelSync('mnist', int8)], { port: 0 });
  try {
    assert.match(server.metrics(), /edgeopt_fallbacks_total\{model="mnist"\} 2\n/);
  } finally {
    engine.dispose();
  }
});

test('graceful close: a request in progress finishes with 200, then new connections are refused', async () => {
  const engine = new EdgeInferenceEngine();
  const server = new InferenceServer([engine.loadModelSync('mnist', int8, { batching: { maxDelayMs: 200, maxBatch: 64 } })], { port: 0 });
  const url = await server.listen();
  const inProgress = postJson(`${url}/v1/models/mnist:predict`, { instances: [Array.from(rows.data.subarray(0, 784))] });
  await new Promise((r) => setTimeout(r, 50));
  const closed = server.close();
  const reply = await inProgress;
  assert.is(reply.status, 200);
  await closed;
  try {
    await request(`${url}/healthz`);
    assert.unreachable('connected after close');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  }
  engine.dispose();
});

test('bad server options are E_ARGUMENT', () => {
  const engine = new EdgeInferenceEngine();
  const s = engine.loadModelSync('m', int8);
  throwsCode(() => new InferenceServer([]), 'E_ARGUMENT', /no models/);
  throwsCode(() => new InferenceServer([s, s]), 'E_ARGUMENT', /given twice/);
  throwsCode(() => new InferenceServer([s], { port: 70000 }), 'E_ARGUMENT', /port/);
  throwsCode(() => new InferenceServer([s], { maxBodyBytes: 0 }), 'E_ARGUMENT', /maxBodyBytes/);
  throwsCode(() => new InferenceServer([s], { maxInflight: 1.5 }), 'E_ARGUMENT', /maxInflight/);
  engine.dispose();
});

test('edgeopt serve: listens on 127.0.0.1, answers, and stops cleanly on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-serve-'));
  const file = path.join(dir, 'mnist.eom');
  saveModel(int8, file);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'lib', 'cli', 'index.ts'), 'serve', file, '--port', '0', '--max-delay-ms', '0'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setInterval(() => {
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearInterval(t);
          resolve(m[1]);
        }
      }, 20);
      void exited.then(() => reject(new Error(`exited early: ${out}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(out, /models: mnist; batching maxBatch 32, maxDelayMs 0, maxQueue 1024/);
    const r = await postJson(`${url}/v1/models/mnist:predict`, { instances: [Array.from(rows.data.subarray(0, 784))] });
    assert.is(r.status, 200);
    assert.is((json(r).predictions as number[][])[0].length, 10);
    child.kill('SIGTERM');
    assert.is(await exited, 0);
    assert.match(out, /SIGTERM: finishing requests in progress/);
    assert.match(out, /stopped/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('edgeopt serve refuses bad flags with E_ARGUMENT', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'lib', 'cli', 'index.ts'), 'serve', 'x.eom', '--max-batch', '0'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 1);
  assert.match(err, /E_ARGUMENT: --max-batch must be an integer in 1\.\.65536, got '0'/);
});

test.run();
