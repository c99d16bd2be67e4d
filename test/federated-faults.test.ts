/**
 * The federated server under attack and under faults: client metric names
 * aimed at Object.prototype, a checkpoint folder that disappears, a poisoning
 * client (a huge numSamples, a delta just under the norm bound) among ten honest
 * ones on the bundled MNIST data, and peers that hold connections open (a 10 GB
 * declared body, a body that stalls, headers that never end, too many sockets).
 * Every wait is bounded; no test takes longer than its training.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { averageMetrics, fedAvg, type ClientUpdate } from '../lib/federated/aggregate';
import { readCheckpoint, type CheckpointFailure } from '../lib/federated/checkpoint';
import { FederatedLearningClient } from '../lib/federated/client';
import { encodeFrame, f32Tensors } from '../lib/federated/codec';
import { paramSpecs, readParams, writeParams, type Tensors } from '../lib/federated/params';
import { aggregate, boundInfluence } from '../lib/federated/robust';
import { FederatedServer, type FederatedServerOptions } from '../lib/federated/server';
import { partition } from '../lib/federated/simulate';
import type { Graph } from '../lib/model/graph';
import { evaluateModel } from '../lib/optimizer/evaluate';
import { l2Norm } from '../lib/train/linalg';
import {
  asUpdate,
  call,
  randomDelta,
  sameTensors,
  shapes,
  small,
  specs,
  startServer,
  task,
  tokens,
  train,
  updateFrame,
} from './fl-helpers';
import { closeFloats, throwsCode } from './helpers';

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

test('client metric names never reach Object.prototype: reserved names are 400, averages use no client keys', async () => {
  const probe = {} as Record<string, unknown>;
  try {
    const polluted = JSON.parse('{"__proto__": 5, "loss": 1}') as Record<string, number>;
    const avg = averageMetrics([{ clientId: 'a', numSamples: 3, delta: {}, metrics: polluted }]);
    assert.equal(avg, { loss: 1 });
    assert.is(probe.s, undefined);
    assert.is(probe.n, undefined);
    const { server, url } = await startServer();
    try {
      await task(url, tokens.a);
      const frame = (metrics: unknown) => encodeFrame({ round: 1, numSamples: 10, metrics }, f32Tensors(randomDelta(1), shapes));
      for (const metrics of [JSON.parse('{"__proto__": 7}'), { constructor: 1 }, { prototype: 2 }, { 'a b': 1 }, { loss: 'x' }, [1]]) {
        const r = await call(url, tokens.a, 'POST', '/v1/update', frame(metrics));
        assert.is(r.status, 400, JSON.stringify(metrics));
      }
      assert.is((await call(url, tokens.a, 'POST', '/v1/update', frame({ loss: 0.5, accuracy: null }))).status, 200);
      for (const tok of [tokens.b, tokens.c]) {
        await task(url, tok);
        assert.is((await call(url, tok, 'POST', '/v1/update', frame({ loss: 1.5 }))).status, 200);
      }
      assert.is(server.round, 1);
      assert.equal(server.history[0].metrics, { loss: (0.5 + 1.5 + 1.5) / 3 });
      assert.is(probe.s, undefined, 'Object.prototype.s');
      assert.is(probe.n, undefined, 'Object.prototype.n');
    } finally {
      await server.close();
    }
  } finally {
    delete (Object.prototype as Record<string, unknown>).s;
    delete (Object.prototype as Record<string, unknown>).n;
  }
});

test('a failed checkpoint never wedges the rounds: 200 for the closing update, an event, retries until the folder is back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-fl-ckpt-'));
  const folder = path.join(dir, 'ckpt');
  fs.mkdirSync(folder);
  const file = path.join(folder, 'global.eom');
  const { server, url } = await startServer({ checkpoint: file, checkpointRetryMs: 50 });
  const failures: CheckpointFailure[] = [];
  const rounds: number[] = [];
  server.on('checkpointError', (f: CheckpointFailure) => failures.push(f));
  server.on('round', (r: { round: number }) => rounds.push(r.round));
  try {
    fs.rmSync(folder, { recursive: true });
    for (const tok of Object.values(tokens)) {
      await task(url, tok);
      assert.is((await call(url, tok, 'POST', '/v1/update', updateFrame(1, randomDelta(2)))).status, 200, 'accepted means 200');
    }
    assert.equal(rounds, [1]);
    assert.is(server.round, 1);
    assert.ok(failures.length >= 1 && failures[0].round === 1 && failures[0].error.message.includes('global.eom'));
    assert.ok(server.checkpointPending);
    const next = await task(url, tokens.a);
    assert.is(next.meta.status, 'fit');
    assert.is(next.meta.round, 2, 'the next round is open');
    const saved = new Promise<number>((resolve) => server.once('checkpoint', (e: { round: number }) => resolve(e.round)));
    fs.mkdirSync(folder);
    assert.is(await within(5000, 'the retried checkpoint', saved), 1);
    assert.is(readCheckpoint(file)!.round, 1);
    assert.ok(!server.checkpointPending);
    assert.ok(failures.length >= 2 ? failures[1].retryInMs >= failures[0].retryInMs : true, 'back-off');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('robust aggregation: norm clipping and weight capping bound one outlier; median and trimmed mean are per coordinate', () => {
  const g = readParams(small);
  const honest = [1, 2, 3].map((s) => asUpdate(`h${s}`, randomDelta(s), 10));
  const evil = asUpdate('x', randomDelta(9, 10), 1_000_000);
  const bounded = boundInfluence([...honest, evil], 2, 4);
  const medianNorm = [...honest, evil].map((u) => l2Norm(Object.values(u.delta))).sort((a, b) => a - b);
  closeFloats([l2Norm(Object.values(bounded[3].delta))], [medianNorm[1] + medianNorm[2]], { rel: 1e-5 }, 'clipped to 2x median');
  assert.is(bounded[3].numSamples, 40, 'weight capped at 4x the median');
  sameTensors(bounded[0].delta, honest[0].delta, 'honest updates untouched');
  const values = [5, -1, 100, 2, 3];
  const ups = values.map((v, i) =>
    asUpdate(`u${i}`, Object.fromEntries(specs.map((s) => [s.name, new Float32Array(g[s.name].length).fill(v)])), 1),
  );
  const plain = { normClip: 0, sampleWeightCap: Infinity };
  const med = aggregate(g, specs, ups, { ...plain, aggregator: { kind: 'median' } });
  const trim = aggregate(g, specs, ups, { ...plain, aggregator: { kind: 'trimmed-mean', trim: 0.2 } });
  for (const s of specs) {
    closeFloats(
      med[s.name],
      g[s.name].map((w) => w + 3),
      { abs: 1e-6 },
      `median ${s.name}`,
    );
    closeFloats(
      trim[s.name],
      g[s.name].map((w) => w + (2 + 3 + 5) / 3),
      { abs: 1e-6 },
      `trimmed ${s.name}`,
    );
  }
  const even = aggregate(g, specs, ups.slice(0, 4), { ...plain, aggregator: { kind: 'median' } });
  closeFloats(
    even[specs[0].name].subarray(0, 3),
    g[specs[0].name].subarray(0, 3).map((w) => w + 3.5),
    { abs: 1e-6 },
    'even count',
  );
});

/**
 * Ten clients, each with 400 of the bundled MNIST train rows, fine-tune the bundled
 * model (93.95 %) through a real server. Client c0 first claims numSamples = 2^53 - 1
 * (refused), then sends the sign-flipped direction of its honest update scaled to
 * just under the default norm bound, with the largest numSamples accepted. Per round,
 * the server's model is compared with FedAvg of the nine honest updates (what the
 * round would have given without c0) and with plain FedAvg of all ten.
 */
async function poisoned(options: Partial<FederatedServerOptions>, rounds: number): Promise<void> {
  const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const clientTokens = Object.fromEntries(ids.map((id) => [id, `token-${id}-0123456789`]));
  const parts = partition(sliceRows(train, 0, 4000), 10, undefined, 1);
  const test = mnistTest();
  const server = new FederatedServer({ model: defaultModel(), clients: clientTokens, rounds, minClients: 10, ...options });
  const url = await server.listen(0);
  const accuracy = (g: Graph, t: Tensors) => evaluateModel(writeParams(g, t), test).accuracy * 100;
  try {
    for (let round = 1; round <= rounds; round++) {
      const global = server.model;
      const before = readParams(global);
      const bound = server.updateNormBound;
      if (!options.maxUpdateNormRatio)
        assert.ok(Math.abs(bound - 20 * l2Norm(Object.values(before))) < 1e-6 * bound, 'default bound: 20x the weights');
      const honest: ClientUpdate[] = [];
      let evil: ClientUpdate | null = null;
      for (const [i, id] of ids.entries()) {
        assert.is((await task(url, clientTokens[id])).meta.status, 'fit');
        const u = await new FederatedLearningClient(id)
          .setModel(global)
          .addData(parts[i])
          .trainLocal({ epochs: 1, lr: 0.05, seed: round * 100 + i });
        if (i > 0) {
          honest.push(u);
          continue;
        }
        const norm = l2Norm(Object.values(u.delta));
        const flipped = Object.fromEntries(Object.entries(u.delta).map(([k, d]) => [k, d.map((v) => (-0.99 * bound * v) / norm)]));
        const frame = (numSamples: number) =>
          encodeFrame(
            { round, numSamples, metrics: {} },
            f32Tensors(flipped, Object.fromEntries(paramSpecs(global).map((s) => [s.name, s.shape]))),
          );
        assert.is((await call(url, clientTokens[id], 'POST', '/v1/update', frame(2 ** 53 - 1))).status, 400, 'numSamples over the cap');
        evil = { clientId: id, numSamples: 1_000_000, delta: flipped, metrics: {} };
      }
      for (const [i, u] of [...honest, evil!].entries()) {
        const frame = encodeFrame(
          { round, numSamples: u.numSamples, metrics: {} },
          f32Tensors(u.delta, Object.fromEntries(paramSpecs(global).map((s) => [s.name, s.shape]))),
        );
        assert.is((await call(url, clientTokens[u.clientId], 'POST', '/v1/update', frame)).status, 200, `update ${i}`);
      }
      assert.is(server.round, round);
      const specsG = paramSpecs(global);
      const withoutEvil = accuracy(global, fedAvg(before, specsG, honest));
      const undefended = accuracy(global, fedAvg(before, specsG, [evil!, ...honest]));
      const got = accuracy(global, readParams(server.model));
      assert.ok(undefended < withoutEvil - 20, `the attack is real: plain FedAvg gives ${undefended} % against ${withoutEvil} %`);
      assert.ok(Math.abs(got - withoutEvil) <= 2, `round ${round}: ${got} % with the attacker, ${withoutEvil} % without`);
    }
  } finally {
    await server.close();
  }
}

test('model poisoning: one malicious client of ten moves accuracy by at most 2 points with the defaults', async () => {
  await poisoned({}, 2);
});

test("model poisoning: the same with aggregator 'median'", async () => {
  await poisoned({ aggregator: 'median' }, 1);
});

test('the default norm bound accepts honest first-round updates from a random init (3x the weights here)', async () => {
  const { server, url } = await startServer({ rounds: 1, minClients: 2 });
  try {
    for (const [i, tok] of [tokens.a, tokens.b].entries()) {
      const t = await task(url, tok);
      assert.is(t.meta.status, 'fit');
      const u = await new FederatedLearningClient(`h${i}`)
        .setModel(small)
        .addData(sliceRows(train, i * 4000, (i + 1) * 4000))
        .trainLocal({ epochs: 1, lr: 0.05, seed: i });
      assert.ok(l2Norm(Object.values(u.delta)) > l2Norm(Object.values(readParams(small))), 'the update outweighs the model');
      const frame = encodeFrame({ round: 1, numSamples: u.numSamples, metrics: u.metrics }, f32Tensors(u.delta, shapes));
      assert.is((await call(url, tok, 'POST', '/v1/update', frame)).status, 200);
    }
  } finally {
    await server.close();
  }
});

/** Resolves when the server closes the socket; rejects when it stays open past `ms`. */
function closedWithin(socket: net.Socket, ms: number, what: string): Promise<void> {
  return within(ms, what, new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))));
}

test('slow and greedy peers: a 10 GB declared body is 413 at once, a stalled body and endless headers are cut off', async () => {
  const { server, url } = await startServer({ idleTimeoutMs: 300, headersTimeoutMs: 400 });
  const { port } = new URL(url);
  try {
    await task(url, tokens.a);
    const status = await within(
      3000,
      'a reply to the 10 GB upload',
      new Promise<number>((resolve, reject) => {
        const req = http.request(`${url}/v1/update`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens.a}`, 'content-length': String(10 * 2 ** 30) },
        });
        req.on('response', (res) => (res.resume(), resolve(res.statusCode!)));
        req.on('error', reject);
        req.write(Buffer.from('EOFL'));
      }),
    );
    assert.is(status, 413);
    const stalled = net.connect(Number(port), '127.0.0.1');
    stalled.on('error', () => {});
    stalled.write(`POST /v1/update HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${tokens.b}\r\ncontent-length: 5000\r\n\r\nEOFL`);
    await closedWithin(stalled, 3000, 'a body that stalls after 4 bytes');
    const endless = net.connect(Number(port), '127.0.0.1');
    endless.on('error', () => {});
    const drip = setInterval(() => endless.write('x-pad: 1\r\n'), 100); // never idle, never done
    endless.write('GET /v1/task HTTP/1.1\r\n');
    try {
      await closedWithin(endless, 3000, 'headers that never end');
    } finally {
      clearInterval(drip);
    }
  } finally {
    await server.close();
  }
});

test('connections per address are capped, and /v1/status wants a token', async () => {
  const { server, url } = await startServer({ maxConnectionsPerAddress: 3 });
  const { port } = new URL(url);
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      sockets.push(s);
    }
    const refused = new Promise<string>((resolve) => server.once('connectionRefused', (e: { address: string }) => resolve(e.address)));
    const extra = net.connect(Number(port), '127.0.0.1');
    extra.on('error', () => {});
    await closedWithin(extra, 2000, 'the fourth connection');
    assert.match(await refused, /127\.0\.0\.1/);
    assert.ok(
      sockets.every((s) => !s.destroyed),
      'the first three stay open',
    );
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 50));
    assert.is((await fetch(`${url}/v1/status`)).status, 401);
    const r = await call(url, tokens.a, 'GET', '/v1/status');
    assert.is(r.status, 200);
    assert.equal(JSON.parse(r.bytes.toString()), { round: 0, rounds: 2, done: false, open: 1, checkpoint: null, calibrating: false });
  } finally {
    sockets.forEach((s) => s.destroy());
    await server.close();
  }
});

test('robustness options are checked', () => {
  const base = { model: small, clients: tokens, rounds: 1 };
  throwsCode(() => new FederatedServer({ ...base, aggregator: 'mode' }), 'E_ARGUMENT', /aggregator/);
  throwsCode(() => new FederatedServer({ ...base, aggregator: 'trimmed-mean:0.5' }), 'E_ARGUMENT', /aggregator/);
  throwsCode(() => new FederatedServer({ ...base, aggregator: 'median', dp: { clipNorm: 1 } }), 'E_ARGUMENT', /dp/);
  throwsCode(() => new FederatedServer({ ...base, normClip: -1 }), 'E_ARGUMENT', /normClip/);
  throwsCode(() => new FederatedServer({ ...base, sampleWeightCap: 0.5 }), 'E_ARGUMENT', /sampleWeightCap/);
  throwsCode(() => new FederatedServer({ ...base, maxSamples: 0 }), 'E_ARGUMENT', /maxSamples/);
  throwsCode(() => new FederatedServer({ ...base, idleTimeoutMs: NaN }), 'E_ARGUMENT', /idleTimeoutMs/);
});

test.run();
