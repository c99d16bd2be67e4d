/**
 * SCAFFOLD: the trainer's drift correction (offset added to every step, mean loss gradient
 * collected), the client's control variate c_i, and the server's c on the wire, in the
 * aggregate and in checkpoints.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sliceRows } from '../lib/data/dataset';
import { FederatedLearningClient } from '../lib/federated/client';
import { encodeFrame, f32Tensors } from '../lib/federated/codec';
import { readCheckpoint } from '../lib/federated/checkpoint';
import { paramSpecs, readParams, type Tensors } from '../lib/federated/params';
import { CONTROL_PREFIX, encodeControls, splitControls, zeroControls } from '../lib/federated/scaffold';
import { FederatedServer } from '../lib/federated/server';
import { simulate } from '../lib/federated/simulate';
import { mobileNetMini } from '../lib/model/builder';
import { softmaxCrossEntropy } from '../lib/train/loss';
import { Network } from '../lib/train/network';
import { train as trainModel } from '../lib/train/trainer';
import { call, randomDelta, shapes, small, specs, startServer, task, tokens, train } from './fl-helpers';
import { closeFloats, randomF32, rng, sameFloats, throwsCode } from './helpers';

const rows = sliceRows(train, 0, 64);
const trainable = specs.filter((s) => !s.statistic);
const names = trainable.map((s) => s.name);
const sizes = trainable.map((s) => s.shape.reduce((a, b) => a * b, 1));

/** The mean cross-entropy gradient of `model` over all of `data` in one batch. */
function fullGradient(data = rows): Float32Array[] {
  const net = Network.fromGraph(small);
  const n = data.shape[0];
  const { logits, cache } = net.forward(data.data, n);
  return net.backward(cache, softmaxCrossEntropy(logits, data.labels!, n).grad);
}

function controlFrame(round: number, delta: Tensors, controls: Tensors): Buffer {
  return encodeFrame({ round, numSamples: 10, metrics: {} }, [...f32Tensors(delta, shapes), ...encodeControls(controls, shapes)]);
}

const asTensors = (arrays: Float32Array[]): Tensors => Object.fromEntries(names.map((n, k) => [n, arrays[k]]));

test('controlVariate: the offset shifts a plain-SGD step by -lr x offset; meanGradient is the mean loss gradient of the steps', () => {
  const r = rng(3);
  const offset = sizes.map((n) => randomF32(n, r, 0.5));
  const opts = { epochs: 1, batchSize: 64, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, seed: 1 };
  const plain = readParams(trainModel(small, rows, opts).model);
  const meanGradient = sizes.map((n) => new Float32Array(n));
  const corrected = readParams(trainModel(small, rows, { ...opts, controlVariate: { offset, meanGradient } }).model);
  names.forEach((n, k) => {
    closeFloats(
      corrected[n],
      plain[n].map((w, i) => w - 0.1 * offset[k][i]),
      { abs: 2e-6 },
      `${n}: step`,
    );
    closeFloats(meanGradient[k], fullGradient()[k], { abs: 1e-6 }, `${n}: one step's gradient`);
  });
  // Two batches of 32 at a vanishing lr: the weights stay, and the mean of the two batch gradients is the full gradient.
  const twoSteps = sizes.map((n) => new Float32Array(n));
  const still = readParams(
    trainModel(small, rows, { ...opts, batchSize: 32, lr: 1e-30, controlVariate: { offset, meanGradient: twoSteps } }).model,
  );
  names.forEach((n, k) => {
    closeFloats(still[n], readParams(small)[n], { abs: 1e-20 }, `${n}: lr 1e-30`);
    closeFloats(twoSteps[k], fullGradient()[k], { abs: 1e-6 }, `${n}: mean over two steps`);
  });
});

test('a client keeps c_i = its mean gradient; once c_i is its gradient, its step follows -c, the federation direction', async () => {
  const client = new FederatedLearningClient('a').setModel(small).addData(rows);
  const c0 = zeroControls(specs);
  const still = { epochs: 1, batchSize: 64, lr: 1e-30, optimizer: 'sgd' as const, momentum: 0 };
  const first = await client.trainLocal({ ...still, control: c0 });
  names.forEach((n, k) => closeFloats(first.controlDelta![n], fullGradient()[k], { abs: 1e-6 }, `${n}: first Δc_i = gradient`));
  const again = await client.trainLocal({ ...still, control: c0 });
  names.forEach((n) =>
    assert.ok(
      again.controlDelta![n].every((v) => v === 0),
      `${n}: same gradient, Δc_i = 0`,
    ),
  );
  const c = asTensors(sizes.map((n, k) => randomF32(n, rng(10 + k), 0.2)));
  const step = await client.trainLocal({ ...still, lr: 0.05, control: c });
  // g - c_i + c with c_i = g: the step is -lr x c whatever the client's own data say.
  names.forEach((n) =>
    closeFloats(
      step.delta[n],
      c[n].map((v) => -0.05 * v),
      { abs: 2e-6 },
      `${n}: step along -c`,
    ),
  );
  assert.is(step.controlDelta && Object.keys(step.controlDelta).length, names.length);
  // Without a control the update carries none.
  assert.is((await client.trainLocal({ ...still })).controlDelta, undefined);
});

test('BatchNorm running statistics get no control variate', () => {
  const cnn = paramSpecs(mobileNetMini({ seed: 1 }));
  const controls = zeroControls(cnn);
  assert.ok(cnn.some((s) => s.statistic));
  assert.equal(
    Object.keys(controls),
    cnn.filter((s) => !s.statistic).map((s) => s.name),
  );
});

test('a SCAFFOLD server sends c with each task, moves it by |S|/N x the mean Δc_i, refuses bad control tensors with 400', async () => {
  // Three known clients, two per round: c moves by 2/3 of the round's mean Δc_i.
  const { server, url } = await startServer({ scaffold: true, fractionFit: 0.5 });
  try {
    const t = await task(url, tokens.a);
    assert.is((t.meta.config as { scaffold?: boolean }).scaffold, true);
    const { params, controls } = splitControls(t.tensors);
    assert.equal(
      params.map((p) => p.name),
      specs.map((s) => s.name),
    );
    assert.equal(
      controls.map((p) => p.name),
      names,
    );
    assert.ok(controls.every((p) => p.data.every((v) => v === 0)));
    const delta = randomDelta(1);
    const bad: Array<[string, Buffer]> = [
      ['missing', encodeFrame({ round: 1, numSamples: 10 }, f32Tensors(delta, shapes))],
      [
        'shape',
        encodeFrame({ round: 1, numSamples: 10 }, [
          ...f32Tensors(delta, shapes),
          ...encodeControls(randomDelta(2), shapes).map((e, i) => (i ? e : { ...e, shape: [e.shape.reduce((a, b) => a * b, 1)] })),
        ]),
      ],
      ['non-finite', controlFrame(1, delta, { ...randomDelta(2), [names[0]]: new Float32Array(sizes[0]).fill(NaN) })],
      [
        'unknown',
        encodeFrame({ round: 1, numSamples: 10 }, [
          ...f32Tensors(delta, shapes),
          ...encodeControls(randomDelta(2), shapes),
          { name: `${CONTROL_PREFIX}nope`, shape: [1], encoding: 'f32', parts: [new Float32Array(1)] },
        ]),
      ],
    ];
    for (const [what, frame] of bad) {
      const r = await call(url, tokens.a, 'POST', '/v1/update', frame);
      assert.is(r.status, 400, what);
    }
    assert.is(server.round, 0, 'nothing was stored');
    const ca = randomDelta(3, 0.1);
    const cb = randomDelta(4, 0.1);
    await task(url, tokens.b);
    assert.is((await call(url, tokens.a, 'POST', '/v1/update', controlFrame(1, delta, ca))).status, 200);
    assert.is((await call(url, tokens.b, 'POST', '/v1/update', controlFrame(1, delta, cb))).status, 200);
    assert.is(server.round, 1);
    const next = Object.fromEntries(splitControls((await task(url, tokens.a)).tensors).controls.map((p) => [p.name, p.data]));
    for (const n of names)
      closeFloats(
        next[n],
        ca[n].map((v, i) => (v + cb[n][i]) / 3),
        { abs: 1e-7 },
        `${n}: c after round 1`,
      );
  } finally {
    await server.close();
  }
});

test('a server without SCAFFOLD refuses control tensors (400); scaffold with dp is E_ARGUMENT', async () => {
  const { server, url } = await startServer();
  try {
    await task(url, tokens.a);
    const r = await call(url, tokens.a, 'POST', '/v1/update', controlFrame(1, randomDelta(1), randomDelta(2)));
    assert.is(r.status, 400);
    assert.match(r.bytes.toString(), /SCAFFOLD/);
  } finally {
    await server.close();
  }
  throwsCode(
    () => new FederatedServer({ model: small, clients: tokens, rounds: 1, scaffold: true, dp: { clipNorm: 1 } }),
    'E_ARGUMENT',
    /scaffold/,
  );
});

test('the checkpoint keeps c; a resumed server sends the same c', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-scaffold-'));
  const file = path.join(dir, 'fl.eom');
  const clients = { a: tokens.a, b: tokens.b };
  const ca = randomDelta(5, 0.1);
  try {
    const { server, url } = await startServer({ clients, scaffold: true, checkpoint: file });
    try {
      await task(url, tokens.a);
      await task(url, tokens.b);
      const saved = new Promise<void>((resolve) => server.once('checkpoint', () => resolve()));
      for (const token of [tokens.a, tokens.b])
        assert.is((await call(url, token, 'POST', '/v1/update', controlFrame(1, randomDelta(1), ca))).status, 200);
      await saved;
    } finally {
      await server.close();
    }
    const state = readCheckpoint(file)!;
    for (const n of names) sameFloats(state.control![n], ca[n], `${n}: checkpointed c`);
    assert.ok(!Object.keys(state.model.tensors).some((k) => k.startsWith('fl_control::')));
    const resumed = await startServer({ clients, scaffold: true, checkpoint: file });
    try {
      const controls = splitControls((await task(resumed.url, tokens.a)).tensors).controls;
      for (const p of controls) sameFloats(p.data, ca[p.name], `${p.name}: resumed c`);
    } finally {
      await resumed.server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fl simulate with scaffold: clients upload Δc_i over HTTP (twice the bytes of plain FedAvg)', async () => {
  const data = sliceRows(train, 0, 400);
  const test_ = sliceRows(train, 400, 600);
  const run = (scaffold: boolean) =>
    simulate({ clients: 2, rounds: 2, nonIid: 5, data, test: test_, hidden: [16], scaffold, fit: { epochs: 1 } });
  const [plain, corrected] = [await run(false), await run(true)];
  for (const r of [0, 1]) {
    const ratio = corrected.rounds[r].bytesSent / plain.rounds[r].bytesSent;
    assert.ok(ratio > 1.9 && ratio < 2.1, `round ${r + 1}: upload ratio ${ratio}`);
  }
  assert.ok(corrected.finalAccuracy > 0.2, `accuracy ${corrected.finalAccuracy}`);
});

test.run();
