/**
 * Federated learning with CNNs: the client trains mobilenet-mini (BatchNorm in training mode), the
 * update carries the BN running statistics, FedAvg averages them with the weights, conv weights are
 * int8-compressed per output channel and top-k compressed with error feedback, and the simulation
 * runs end to end over HTTP.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernels } from '../lib/backends';
import { mnistTest, mnistTrain } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { FederatedLearningClient } from '../lib/federated/client';
import { decodeFrame, encodeFrame } from '../lib/federated/codec';
import { DeltaCompressor, parseCompression } from '../lib/federated/compress';
import { paramSpecs, readParams } from '../lib/federated/params';
import { simulate } from '../lib/federated/simulate';
import { mobileNetMini } from '../lib/model/builder';
import { FederatedServer } from '../lib/federated/server';
import { call, task, tokens, updateFrame } from './fl-helpers';
import { closeFloats, randomF32, rng, rejectsCode, sameFloats } from './helpers';

const model = mobileNetMini({ seed: 1 });
const specs = paramSpecs(model);
const shapes = Object.fromEntries(specs.map((s) => [s.name, s.shape]));

test('a CNN client trains locally; its update carries weights and BatchNorm running statistics', async () => {
  const client = new FederatedLearningClient('cnn-a').addData(sliceRows(mnistTrain(), 0, 96));
  client.setModel(model);
  const update = await client.trainLocal({ epochs: 1, batchSize: 32, lr: 0.05 });
  assert.is(update.numSamples, 96);
  for (const s of specs)
    assert.is(
      update.delta[s.name].length,
      s.shape.reduce((a, b) => a * b, 1),
      s.name,
    );
  assert.ok(
    specs.some((s) => s.name.endsWith('.mean')),
    'running means are part of the state',
  );
  const mean = update.delta['bn2.mean'];
  assert.ok(
    mean.some((v) => v !== 0),
    'the stem BN running mean moved during local training',
  );
  assert.ok(update.delta['conv1.weight'].some((v) => v !== 0));
});

test("restrictSoftmax: a client holding two classes leaves the other classes' output rows exactly where they were", async () => {
  const all = sliceRows(mnistTrain(), 0, 400);
  const rows = [...all.labels!.keys()].filter((i) => all.labels![i] === 3 || all.labels![i] === 7).slice(0, 64);
  const size = 784;
  const data = Float32Array.from(rows.flatMap((i) => [...all.data.subarray(i * size, (i + 1) * size)]));
  const local = { data, shape: [rows.length, size], labels: Int32Array.from(rows, (i) => all.labels![i]) };
  const g = mobileNetMini({ seed: 4, batchNorm: false });
  const fc = paramSpecs(g).filter((s) => s.name.startsWith('fc'));
  for (const restrictSoftmax of [true, false]) {
    const client = new FederatedLearningClient('two-classes').addData(local);
    client.setModel(g);
    const { delta } = await client.trainLocal({ epochs: 1, batchSize: 32, lr: 0.01, optimizer: 'adam', restrictSoftmax });
    const [w, b] = fc.map((s) => delta[s.name]);
    for (let c = 0; c < 10; c++) {
      const row = [...w.subarray(c * 64, (c + 1) * 64), b[c]];
      const moved = row.some((v) => v !== 0);
      assert.is(moved, !restrictSoftmax || c === 3 || c === 7, `class ${c}, restrictSoftmax ${restrictSoftmax}`);
    }
  }
});

test('mobilenet-mini without BatchNorm: Convs carry biases, the update has no running statistics', () => {
  const g = mobileNetMini({ seed: 1, batchNorm: false });
  assert.is(g.nodes.filter((n) => n.op === 'BatchNormalization').length, 0);
  assert.ok(g.nodes.filter((n) => n.op === 'Conv').every((n) => g.tensors[n.inputs[2]]?.data));
  assert.not.ok(paramSpecs(g).some((s) => s.statistic));
});

test("fl simulate with norm 'group': GroupNormalization scales and shifts are averaged, nothing is a statistic", async () => {
  const g = mobileNetMini({ seed: 2, norm: 'group' });
  assert.is(g.nodes.filter((n) => n.op === 'BatchNormalization').length, 0);
  assert.not.ok(paramSpecs(g).some((s) => s.statistic));
  const result = await simulate({
    clients: 2,
    rounds: 1,
    model: 'mobilenet-mini',
    norm: 'group',
    data: sliceRows(mnistTrain(), 0, 128),
    test: sliceRows(mnistTest(), 0, 100),
    fit: { epochs: 1, batchSize: 32 },
    seed: 2,
  });
  assert.ok(result.finalAccuracy >= 0 && result.finalAccuracy <= 1);
  const before = readParams(mobileNetMini({ classes: 10, seed: 2, norm: 'group' }));
  const after = readParams(result.model);
  assert.ok(
    after['gn2.scale'].some((v, i) => v !== before['gn2.scale'][i]),
    'averaged GroupNorm scales reach the global model',
  );
});

test('int8 updates quantize conv weights per output channel; top-k keeps error feedback', () => {
  const r = rng(3);
  const delta = Object.fromEntries(
    specs.map((s) => [
      s.name,
      randomF32(
        s.shape.reduce((a, b) => a * b, 1),
        r,
        0.01,
      ),
    ]),
  );
  // One channel of the stem conv is 100x larger: a per-tensor scale would flatten the others to zero.
  delta['conv1.weight'].subarray(0, 9).forEach((_, i) => (delta['conv1.weight'][i] *= 100));
  const encoded = new DeltaCompressor().compress(delta, shapes, parseCompression('int8'));
  const stem = encoded.find((t) => t.name === 'conv1.weight')!;
  assert.is(stem.encoding, 'int8');
  assert.is(stem.parts[0].length, 16, 'one scale per output channel of [16, 1, 3, 3]');
  const { tensors } = decodeFrame(encodeFrame({}, encoded), kernels().dequantizeS8);
  const back = tensors.find((t) => t.name === 'conv1.weight')!.data;
  closeFloats(back.subarray(9), delta['conv1.weight'].subarray(9), { abs: 0.01 / 127 + 1e-9 }, 'small channels keep their precision');
  const topk = new DeltaCompressor();
  const first = topk.compress(delta, shapes, parseCompression('topk:0.1'));
  const kept = first.find((t) => t.name === 'conv1.weight')!;
  assert.is(kept.encoding, 'topk');
  assert.is(kept.parts[0].length, Math.ceil(144 * 0.1));
  // Error feedback: a zero delta next round still sends what the first round left out.
  const zero = Object.fromEntries(Object.entries(delta).map(([k, v]) => [k, new Float32Array(v.length)]));
  const second = topk.compress(zero, shapes, parseCompression('topk:0.1'));
  assert.ok((second.find((t) => t.name === 'conv1.weight')!.parts[1] as Float32Array).some((v) => v !== 0));
});

test('fl simulate with mobilenet-mini: two clients, one round over HTTP; FedAvg moves weights and BN statistics; SCAFFOLD by default', async () => {
  const run = (scaffold?: boolean) =>
    simulate({
      clients: 2,
      rounds: 1,
      model: 'mobilenet-mini',
      data: sliceRows(mnistTrain(), 0, 128),
      test: sliceRows(mnistTest(), 0, 100),
      compress: 'int8',
      fit: { epochs: 1, batchSize: 32, lr: 0.05 },
      seed: 2,
      scaffold,
    });
  const result = await run();
  assert.is(result.rounds.length, 1);
  assert.ok(result.finalAccuracy >= 0 && result.finalAccuracy <= 1);
  const before = readParams(mobileNetMini({ classes: 10, seed: 2 }));
  const after = readParams(result.model);
  assert.ok(
    after['bn2.mean'].some((v, i) => v !== before['bn2.mean'][i]),
    'averaged running means reach the global model',
  );
  assert.ok(after['conv1.weight'].some((v, i) => v !== before['conv1.weight'][i]));
  // mobilenet-mini runs SCAFFOLD by default: each update also carries Δc_i as float32 (4x the int8 delta).
  const plain = await run(false);
  assert.ok(result.rounds[0].bytesSent > 3 * plain.rounds[0].bytesSent, `${result.rounds[0].bytesSent} vs ${plain.rounds[0].bytesSent}`);
});

test('server momentum moves the weights, and BatchNorm running statistics take the plain average', async () => {
  // Both clients send the same delta each round: weights by 0.01-scale noise, every running variance by -0.25.
  // Plain FedAvg walks a variance 1 -> 0.75 -> 0.5 -> 0.25; a velocity of 0.9 would take it below zero.
  const clients = { a: tokens.a, b: tokens.b };
  const server = new FederatedServer({ model, clients, rounds: 4, minClients: 2, roundTimeoutMs: 10_000, serverMomentum: 0.9 });
  const url = await server.listen(0);
  try {
    const start = readParams(model);
    const r = rng(5);
    const delta = Object.fromEntries(
      specs.map((s) => {
        const n = s.shape.reduce((a, b) => a * b, 1);
        return [s.name, s.statistic ? new Float32Array(n).fill(s.name.endsWith('.var') ? -0.25 : 0.125) : randomF32(n, r, 0.01)];
      }),
    );
    for (let round = 1; round <= 3; round++) {
      for (const token of Object.values(clients)) {
        await task(url, token);
        assert.is((await call(url, token, 'POST', '/v1/update', updateFrame(round, delta, 10, shapes))).status, 200, `round ${round}`);
      }
    }
    const global = Object.fromEntries((await task(url, tokens.a)).tensors.map((t) => [t.name, t.data]));
    const statistics = specs.filter((s) => s.statistic);
    assert.ok(statistics.length > 0 && specs.some((s) => !s.statistic));
    for (const s of statistics) {
      let want = start[s.name];
      for (let round = 0; round < 3; round++) want = want.map((v, i) => v + delta[s.name][i]);
      sameFloats(global[s.name], want, `${s.name}: plain FedAvg`);
    }
    for (const v of statistics.filter((s) => s.name.endsWith('.var')))
      assert.ok(
        global[v.name].every((x) => x > 0),
        v.name,
      );
    // The weights did go faster than plain FedAvg: 1 + 1.9 + 2.71 steps after three rounds.
    const w = 'conv1.weight';
    closeFloats(
      global[w].map((v, i) => v - start[w][i]),
      delta[w].map((d) => 5.61 * d),
      { abs: 1e-5 },
      'FedAvgM steps',
    );
  } finally {
    await server.close();
  }
});

test('fl simulate refuses an unknown model and data that is not 28x28 for mobilenet-mini', async () => {
  await rejectsCode(simulate({ clients: 1, rounds: 1, model: 'resnet' as never }), 'E_ARGUMENT', /model/);
  const flat = sliceRows(mnistTrain(), 0, 20);
  const wrong = { ...flat, data: flat.data.subarray(0, 20 * 100), shape: [20, 100] };
  await rejectsCode(simulate({ clients: 1, rounds: 1, model: 'mobilenet-mini', data: wrong, test: wrong }), 'E_SHAPE', /784/);
});

test.run();
