// node examples/federated.mjs [--clients 2] [--rounds 2] [--timeout 60] [--checkpoint fl-global.eom]
// A FedAvg server on 127.0.0.1 and clients that train locally. With --clients 1 the server
// (minClients: 2) waits for a second client: both sides say so, and the client gives up at --timeout.
import { parseArgs } from 'node:util';
import { FederatedServer, FederatedLearningClient, mlp, mnistTrain, mnistTest, evaluateModel, sliceRows } from 'edgeopt';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '60' },
    checkpoint: { type: 'string' },
  },
});
const [clients, rounds, timeoutMs] = [Number(values.clients), Number(values.rounds), Number(values.timeout) * 1000];
const test = mnistTest();

const server = new FederatedServer({
  model: mlp([784, 128, 10], { seed: 1 }),
  clients: { alice: 'alice-secret-token', bob: 'bob-secret-token' }, // per-client bearer tokens
  rounds,
  minClients: 2,
  fractionFit: 1,
  roundTimeoutMs: 5_000, // a round closes when all report, or at the deadline once minClients have
  fit: { epochs: 1, batchSize: 32, lr: 0.05, compress: 'int8' }, // sent to the clients with each task
  serverMomentum: 0.7,
  checkpoint: values.checkpoint, // written after every round; a restarted server resumes from it
  evaluate: (model) => ({ accuracy: evaluateModel(model, test).accuracy }),
});
server.on('round', (r) => console.log(`round ${r.round}: test accuracy ${(r.evaluation.accuracy * 100).toFixed(2)} %`));
server.on('waiting', (w) => console.log(`server: ${w.reason}`));
// A checkpoint that cannot be written is retried while rounds go on; say so.
server.on('checkpointError', (f) => console.error(`checkpoint of round ${f.round}: ${f.error.message}; retry in ${f.retryInMs} ms`));
const url = await server.listen(0); // http://127.0.0.1:<port>

const train = mnistTrain();
const people = ['alice', 'bob'].slice(0, clients).map((id, i) => ({
  client: new FederatedLearningClient(id).addData(sliceRows(train, i * 2000, (i + 1) * 2000)), // each keeps its own rows
  token: `${id}-secret-token`,
}));
try {
  await Promise.all(
    people.map(({ client, token }) =>
      client.connect(url, {
        token,
        timeoutMs,
        onEvent: (e) => e.type === 'waiting' && console.log(`${client.clientId}: waiting: ${e.detail}`),
      }),
    ),
  );
  console.log(`done: ${server.round} rounds`);
} catch (err) {
  console.error(`${err.code}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await server.close();
}
