/** A federation short of clients says so (events, a reason, a timeout) instead of hanging silently. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FederatedLearningClient, FederatedServer, mlp, mnistTrain, sliceRows, type ClientEvent, type WaitingEvent } from '../lib';
import { rejectsCode } from './helpers';

test('minClients 2 with one client: the server emits waiting, the client reports it and times out with the reason', async () => {
  const server = new FederatedServer({
    model: mlp([784, 8, 10], { seed: 1 }),
    clients: { alice: 'alice-token', bob: 'bob-token' },
    rounds: 1,
    minClients: 2,
    roundTimeoutMs: 200,
    pollMs: 20,
    fit: { epochs: 1, batchSize: 32, lr: 0.05 },
  });
  const serverWaits: WaitingEvent[] = [];
  server.on('waiting', (e: WaitingEvent) => serverWaits.push(e));
  const url = await server.listen(0);
  const events: ClientEvent[] = [];
  try {
    const alice = new FederatedLearningClient('alice').addData(sliceRows(mnistTrain(), 0, 64));
    await rejectsCode(
      alice.connect(url, { token: 'alice-token', timeoutMs: 4000, onEvent: (e) => events.push(e) }),
      'E_TIMEOUT',
      /gave up after timeoutMs \(4000 ms\).*round 1 has 1 of the 2 updates/,
    );
  } finally {
    await server.close();
  }
  assert.equal(
    events.map((e) => e.type),
    ['trained', 'sent', 'waiting'],
    'one waiting event per change of reason, not one per poll',
  );
  assert.match(events[2].detail!, /1 of 2 known clients are taking part/);
  assert.ok(serverWaits.length >= 2, `the server said it was waiting at each deadline (${serverWaits.length})`);
  const last = serverWaits[serverWaits.length - 1];
  assert.equal([last.round, last.reported, last.minClients, last.connected], [1, 1, 2, 1]);
  assert.match(last.reason, /round 1 has 1 of the 2 updates/);
});

test.run();
