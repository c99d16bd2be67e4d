/**
 * Federated learning: codec and compression, FedAvg, local training, and a real
 * server on 127.0.0.1 under faults (bad token, NaN and wrong-shape updates, a
 * client dying mid-upload, the server killed with SIGKILL and restarted). Each
 * fault test checks that the aggregate equals FedAvg of the good updates alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernels } from '../lib/backends';
import { sliceRows } from '../lib/data/dataset';
import { fedAvg } from '../lib/federated/aggregate';
import { readCheckpoint, writeCheckpoint } from '../lib/federated/checkpoint';
import { FederatedLearningClient } from '../lib/federated/client';
import { decodeFrame, encodeFrame, f32Tensors } from '../lib/federated/codec';
import { DeltaCompressor, parseCompression } from '../lib/federated/compress';
import { paramSpecs, readParams } from '../lib/federated/params';
import { partition } from '../lib/federated/simulate';
import { FederatedServer } from '../lib/federated/server';
import type { Graph } from '../lib/model/graph';
import { pruneGraph } from '../lib/optimizer/prune';
import { l2Norm } from '../lib/train/linalg';
import {
  asUpdate,
  call,
  dequant,
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
import { closeFloats, rng, throwsCode } from './helpers';

test('codec: f32, int8 and top-k frames round-trip; malformed frames are E_FORMAT', () => {
  const delta = randomDelta(1);
  const back = decodeFrame(updateFrame(3, delta), dequant);
  assert.is(back.meta.round, 3);
  sameTensors(Object.fromEntries(back.tensors.map((t) => [t.name, t.data])), delta, 'f32');
  for (const spec of ['int8', 'topk:0.1']) {
    const enc = new DeltaCompressor().compress(delta, shapes, parseCompression(spec));
    const dec = decodeFrame(encodeFrame({}, enc), dequant).tensors;
    dec.forEach((t) =>
      closeFloats(
        t.data,
        delta[t.name].map((v) => (spec === 'int8' || t.data.includes(v) ? v : 0)),
        { abs: spec === 'int8' ? 1e-4 : 0 },
        spec,
      ),
    );
  }
  const frame = updateFrame(1, delta);
  throwsCode(() => decodeFrame(frame.subarray(0, frame.length - 3), dequant), 'E_FORMAT', /past the end/);
  throwsCode(() => decodeFrame(Buffer.from('not a frame at all'), dequant), 'E_FORMAT', /magic/);
  throwsCode(() => decodeFrame(Buffer.concat([frame, Buffer.alloc(4)]), dequant), 'E_FORMAT', /trailing/);
  const bad = encodeFrame({}, [{ name: 'fc2.bias', shape: [10], encoding: 'topk', parts: [Uint32Array.of(99), Float32Array.of(1)] }]);
  throwsCode(() => decodeFrame(bad, dequant), 'E_FORMAT', /index 99/);
  throwsCode(() => parseCompression('topk:2'), 'E_ARGUMENT');
  const raw = (json: string) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x4c464f45, 0);
    head.writeUInt32LE(Buffer.byteLength(json), 4);
    return Buffer.concat([head, Buffer.from(json)]);
  };
  throwsCode(() => decodeFrame(raw('{"meta":{"round":1},"meta":{"round":2},"tensors":[]}'), dequant), 'E_FORMAT', /repeats the key "meta"/);
  throwsCode(() => decodeFrame(raw(`{"meta":${'['.repeat(100_000)}}`), dequant), 'E_FORMAT', /nests deeper/);
});

test('compression: int8 is the optimizer quantizer, ~0.25x the bytes; error feedback carries what top-k dropped', () => {
  const delta = randomDelta(2);
  const f32Bytes = encodeFrame({}, f32Tensors(delta, shapes)).length;
  const int8 = new DeltaCompressor().compress(delta, shapes, { kind: 'int8' });
  const q = kernels().quantizeSymmetric(delta['fc1.weight'], 8, 784, 8, true);
  assert.equal(Array.from(int8[0].parts[1] as Int8Array), Array.from(q.q));
  assert.ok(encodeFrame({}, int8).length < 0.27 * f32Bytes);
  const c = new DeltaCompressor();
  const sent = new Float32Array(10);
  let total = new Float32Array(10);
  for (let round = 0; round < 12; round++) {
    const d = randomDelta(10 + round);
    total = total.map((v, i) => v + d['fc2.bias'][i]);
    const enc = c.compress({ 'fc2.bias': d['fc2.bias'] }, shapes, { kind: 'topk', fraction: 0.2 });
    decodeFrame(encodeFrame({}, enc), dequant).tensors[0].data.forEach((v, i) => (sent[i] += v));
  }
  // What was sent plus what is still held back equals everything: the residual is bounded by one round's worth.
  const residual = total.map((v, i) => v - sent[i]);
  assert.ok(l2Norm([residual]) < 0.6 * l2Norm([total]) + 0.05, `residual ${l2Norm([residual])} of ${l2Norm([total])}`);
});

test('FedAvg weights by sample count, clips with DP, and keeps masked weights at zero', () => {
  const g = readParams(small);
  const u1 = asUpdate('a', randomDelta(3), 30);
  const u2 = asUpdate('b', randomDelta(4), 10);
  const avg = fedAvg(g, specs, [u1, u2]);
  for (const s of specs)
    closeFloats(
      avg[s.name],
      g[s.name].map((w, i) => w + 0.75 * u1.delta[s.name][i] + 0.25 * u2.delta[s.name][i]),
      { abs: 1e-6 },
      s.name,
    );
  const clipped = fedAvg(g, specs, [asUpdate('a', randomDelta(5, 1))], { clipNorm: 0.5 });
  const moved = Object.fromEntries(specs.map((s) => [s.name, clipped[s.name].map((v, i) => v - g[s.name][i])]));
  assert.ok(Math.abs(l2Norm(Object.values(moved)) - 0.5) < 1e-3);
  const noisy = (seed: number) => fedAvg(g, specs, [u1], { clipNorm: 1, noiseMultiplier: 1 }, rng(seed));
  sameTensors(noisy(9), noisy(9), 'seeded noise');
  const pruned = pruneGraph(small, { sparsity: 0.5 });
  const pSpecs = paramSpecs(pruned);
  const out = fedAvg(readParams(pruned), pSpecs, [u1]);
  pSpecs[0].mask!.forEach((keep, i) => keep || assert.is(out['fc1.weight'][i], 0));
});

test('trainLocal: delta = local - global, sample count, masks kept, FedProx pulls toward the global model', async () => {
  const pruned = pruneGraph(small, { sparsity: 0.5 });
  const client = new FederatedLearningClient('x')
    .setModel(pruned)
    .addData(sliceRows(train, 0, 60))
    .addData(sliceRows(train, 60, 100));
  const u = await client.trainLocal({ epochs: 1, batchSize: 20, lr: 0.1 });
  assert.is(u.numSamples, 100);
  assert.is(u.clientId, 'x');
  assert.ok(u.metrics.loss > 0);
  const mask = pruned.tensors['fc1.weight'].mask!;
  u.delta['fc1.weight'].forEach((d, i) => mask[i] || assert.is(d, 0));
  const prox = await client.trainLocal({ epochs: 1, batchSize: 20, lr: 0.1, proxMu: 2 });
  assert.ok(l2Norm(Object.values(prox.delta)) < l2Norm(Object.values(u.delta)), 'proximal term shrinks the update');
  throwsCode(() => new FederatedLearningClient(''), 'E_ARGUMENT');
});

test('partition: IID covers every row once; non-IID gives each client only its k classes', () => {
  const ds = sliceRows(train, 0, 1000);
  const iid = partition(ds, 10, undefined, 1);
  assert.is(
    iid.reduce((s, p) => s + p.shape[0], 0),
    1000,
  );
  const skew = partition(ds, 10, 2, 1);
  assert.is(
    skew.reduce((s, p) => s + p.shape[0], 0),
    1000,
  );
  skew.forEach((p) => assert.ok(new Set(p.labels).size <= 2));
});

test('a bad token gets 401 and nothing is recorded: the aggregate is FedAvg of the good updates', async () => {
  const { server, url } = await startServer();
  try {
    const before = readParams(server.model);
    assert.is((await call(url, 'wrong-token-000000', 'GET', '/v1/task')).status, 401);
    assert.is((await call(url, 'wrong-token-000000', 'POST', '/v1/update', updateFrame(1, randomDelta(6, 1)))).status, 401);
    assert.is((await fetch(url + '/v1/task')).status, 401);
    const da = randomDelta(7);
    const db = randomDelta(8);
    for (const [tok, d] of [
      [tokens.a, da],
      [tokens.b, db],
      [tokens.c, db],
    ] as const) {
      await task(url, tok);
      assert.is((await call(url, tok, 'POST', '/v1/update', updateFrame(1, d))).status, 200);
    }
    assert.is(server.round, 1);
    sameTensors(readParams(server.model), fedAvg(before, specs, [asUpdate('a', da), asUpdate('b', db), asUpdate('c', db)]), 'aggregate');
  } finally {
    await server.close();
  }
});

test('NaN, wrong-shape, unknown-tensor, oversized and garbage updates get 400 and leave the aggregate alone', async () => {
  const { server, url } = await startServer({ maxUpdateNorm: 10 });
  const rejected: number[] = [];
  server.on('rejected', (e: { status: number }) => rejected.push(e.status));
  try {
    const before = readParams(server.model);
    await task(url, tokens.a);
    const nan = randomDelta(9);
    nan['fc1.weight'][5] = NaN;
    const wrong = { ...randomDelta(9), 'fc2.weight': new Float32Array(10 * 7) };
    const extra = { ...randomDelta(9), 'fc9.weight': new Float32Array(4) };
    const bads = [
      updateFrame(1, nan),
      updateFrame(1, wrong, 10, { ...shapes, 'fc2.weight': [10, 7] }),
      updateFrame(1, extra, 10, { ...shapes, 'fc9.weight': [2, 2] }),
      updateFrame(1, randomDelta(9, 1)),
      updateFrame(1, randomDelta(9), -5),
      Buffer.from('garbage'),
    ];
    for (const body of bads) assert.is((await call(url, tokens.a, 'POST', '/v1/update', body)).status, 400);
    const da = randomDelta(10);
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', updateFrame(1, da))).status, 200, 'the client may still send a good update');
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', updateFrame(1, da))).status, 409, 'but only one');
    const db = randomDelta(11);
    for (const tok of [tokens.b, tokens.c]) {
      await task(url, tok);
      assert.is((await call(url, tok, 'POST', '/v1/update', updateFrame(1, db))).status, 200);
    }
    assert.is(server.round, 1);
    assert.is(server.history[0].rejected, 6);
    sameTensors(readParams(server.model), fedAvg(before, specs, [asUpdate('a', da), asUpdate('b', db), asUpdate('c', db)]), 'aggregate');
  } finally {
    await server.close();
  }
});

/** Sends headers and half an update, then destroys the socket: a client killed mid-upload. */
function dieMidUpload(url: string, token: string, body: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url + '/v1/update', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-length': body.length },
    });
    req.on('error', () => resolve());
    req.write(body.subarray(0, body.length >> 1), () => setTimeout(() => (req.destroy(), resolve()), 20));
  });
}

test('a client killed mid-round does not stall it: the round closes at the deadline with the others', async () => {
  const { server, url } = await startServer({ roundTimeoutMs: 300 });
  try {
    const before = readParams(server.model);
    for (const tok of Object.values(tokens)) assert.is((await task(url, tok)).meta.status, 'fit');
    await dieMidUpload(url, tokens.c, updateFrame(1, randomDelta(12)));
    const da = randomDelta(13);
    const db = randomDelta(14);
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', updateFrame(1, da))).status, 200);
    assert.is((await call(url, tokens.b, 'POST', '/v1/update', updateFrame(1, db, 30))).status, 200);
    assert.is(server.round, 0, 'still waiting for c');
    await server.waitForRound(1, 3000);
    assert.is(server.history[0].dropped, 1);
    assert.equal(server.history[0].clients, ['a', 'b']);
    sameTensors(readParams(server.model), fedAvg(before, specs, [asUpdate('a', da), asUpdate('b', db, 30)]), 'aggregate');
    assert.is((await task(url, tokens.c)).meta.round, 2, 'the dead client may rejoin the next round');
  } finally {
    await server.close();
  }
});

test('real clients over HTTP: 2 rounds with int8 updates at < 0.27x the bytes, the loss going down', async () => {
  const { server, url } = await startServer({ fit: { epochs: 1, batchSize: 20, lr: 0.1, compress: 'int8' } });
  try {
    const loops = Object.entries(tokens).map(([id, token], i) =>
      new FederatedLearningClient(id)
        .addData(sliceRows(train, i * 100, i * 100 + 100))
        .connect(url, { token, timeoutMs: 20_000, maxPolls: 2000 }),
    );
    const results = await Promise.all(loops);
    assert.equal(
      results.map((r) => r.rounds),
      [2, 2, 2],
    );
    const h = server.history;
    assert.is(h.length, 2);
    const f32Bytes = encodeFrame({}, f32Tensors(readParams(small), shapes)).length;
    assert.ok(h[1].bytesUp < 0.27 * 3 * f32Bytes, `${h[1].bytesUp} bytes up vs ${3 * f32Bytes}`);
    assert.ok(h[1].metrics.loss < h[0].metrics.loss, `loss ${h[0].metrics.loss} -> ${h[1].metrics.loss}`);
    assert.equal(
      await new FederatedLearningClient('a').connect(url, { token: tokens.a, maxPolls: 3 }),
      { rounds: 0 },
      'done: returns at once',
    );
  } finally {
    await server.close();
  }
  const bad = new FederatedLearningClient('z').addData(sliceRows(train, 0, 10));
  const { server: s2, url: u2 } = await startServer();
  try {
    await bad.connect(u2, { token: 'no-such-token-0000', maxPolls: 5 }).then(
      () => assert.unreachable('401 must throw'),
      (e) => assert.match(e.message, /401/),
    );
  } finally {
    await s2.close();
  }
});

function startChild(checkpoint: string): Promise<{ child: ChildProcess; url: string; round: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'fixtures', 'fl-server.ts'), checkpoint, JSON.stringify(tokens)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error('server child did not start in 20 s'))), 20_000);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      resolve({ child, ...JSON.parse(out) });
    });
    child.on('exit', (code) => reject(new Error(`server child exited with ${code}`)));
  });
}

test('a server killed with SIGKILL between rounds resumes from its checkpoint: same round count, no lost update', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-fl-'));
  const ckpt = path.join(dir, 'global.eom');
  let child: ChildProcess | null = null;
  try {
    let s = await startChild(ckpt);
    child = s.child;
    assert.is(s.round, 0);
    const da = randomDelta(15);
    const db = randomDelta(16);
    const dc = randomDelta(17);
    for (const [tok, d] of [
      [tokens.a, da],
      [tokens.b, db],
      [tokens.c, dc],
    ] as const) {
      await task(s.url, tok);
      assert.is((await call(s.url, tok, 'POST', '/v1/update', updateFrame(1, d))).status, 200);
    }
    const expected = fedAvg(readParams(small), specs, [asUpdate('a', da), asUpdate('b', db), asUpdate('c', dc)]);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    assert.equal(fs.readdirSync(dir), ['global.eom'], 'no temp file left behind');
    const saved = readCheckpoint(ckpt)!;
    assert.is(saved.round, 1);
    sameTensors(readParams(saved.model as Graph), expected, 'checkpointed aggregate');
    s = await startChild(ckpt);
    child = s.child;
    assert.is(s.round, 1, 'resumes at the same round count');
    const t = await task(s.url, tokens.a);
    assert.is(t.meta.round, 2);
    sameTensors(Object.fromEntries(t.tensors.map((x) => [x.name, x.data])), expected, 'the resumed global model');
  } finally {
    child?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checkpoints carry the FedAvgM velocity and strip it from the model', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-ckpt-'));
  try {
    const file = path.join(dir, 'c.eom');
    const velocity = randomDelta(20);
    writeCheckpoint(file, { model: small, round: 4, history: [], velocity });
    const back = readCheckpoint(file)!;
    assert.is(back.round, 4);
    sameTensors(back.velocity!, velocity, 'velocity');
    assert.equal(Object.keys(back.model.tensors).sort(), Object.keys(small.tensors).sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('server options are checked', () => {
  throwsCode(() => new FederatedServer({ model: small, clients: tokens, rounds: 1, serverMomentum: 1 }), 'E_ARGUMENT', /serverMomentum/);
  throwsCode(() => new FederatedServer({ model: small, clients: {}, rounds: 1 }), 'E_ARGUMENT', /clients/);
  throwsCode(() => new FederatedServer({ model: small, clients: { a: 'short' }, rounds: 1 }), 'E_ARGUMENT', /token/);
  throwsCode(() => new FederatedServer({ model: small, clients: tokens, rounds: 1, minClients: 4 }), 'E_ARGUMENT', /minClients/);
  throwsCode(() => new FederatedServer({ model: small, clients: tokens, rounds: 0 }), 'E_ARGUMENT', /rounds/);
});

test('lrSchedule: cosine anneals the lr each task carries over the rounds; a bad schedule is E_ARGUMENT', async () => {
  const clients = { a: tokens.a, b: tokens.b };
  const { server, url } = await startServer({ clients, rounds: 4, fit: { lr: 0.01 }, lrSchedule: { kind: 'cosine' } });
  try {
    for (let round = 1; round <= 3; round++) {
      const lr = ((await task(url, tokens.a)).meta.config as { lr: number }).lr;
      assert.ok(Math.abs(lr - (0.01 * (1 + Math.cos((Math.PI * (round - 1)) / 4))) / 2) < 1e-12, `round ${round}: lr ${lr}`);
      await task(url, tokens.b);
      for (const token of [tokens.a, tokens.b])
        assert.is((await call(url, token, 'POST', '/v1/update', updateFrame(round, randomDelta(round)))).status, 200);
    }
  } finally {
    await server.close();
  }
  throwsCode(
    () => new FederatedServer({ model: small, clients: tokens, rounds: 2, lrSchedule: { kind: 'step', every: 0 } }),
    'E_ARGUMENT',
    /every/,
  );
});

test.run();
