import type { Command } from 'commander';
import { simulate, type SimulatedRound } from '../../federated/simulate';
import { intList, num } from '../options';

interface SimulateCliOptions {
  clients: string;
  rounds: string;
  nonIid?: string;
  compress: string;
  epochs: string;
  lr: string;
  batchSize: string;
  proxMu: string;
  hidden: string;
  fractionFit: string;
  serverMomentum: string;
  seed: string;
  json?: boolean;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function register(program: Command): void {
  const fl = program.command('fl').description('federated learning');
  fl.command('simulate')
    .description(
      'run a FedAvg server and clients over HTTP on 127.0.0.1 on the bundled MNIST train split; print test accuracy and bytes per round',
    )
    .option('--clients <n>', 'number of clients', '10')
    .option('--rounds <n>', 'number of rounds', '20')
    .option('--non-iid <k>', 'label skew: each client holds only k classes (default: IID)')
    .option('--compress <mode>', 'update compression: none, int8 or topk:<fraction>', 'none')
    .option('--epochs <n>', 'local epochs per round', '2')
    .option('--lr <rate>', 'local SGD learning rate (momentum 0.9)', '0.02')
    .option('--batch-size <n>', 'local mini-batch size', '32')
    .option('--prox-mu <mu>', 'FedProx proximal term (0: plain FedAvg)', '0')
    .option('--hidden <sizes>', 'hidden layer sizes of the MLP', '128')
    .option('--fraction-fit <f>', 'fraction of clients per round', '1')
    .option('--server-momentum <beta>', 'FedAvgM server momentum (0: plain FedAvg)', '0.7')
    .option('--seed <n>', 'seed for init, partition and shuffling', '1')
    .option('--json', 'print { rounds: [{ round, accuracy, bytesSent }], finalAccuracy } as JSON')
    .action(async (o: SimulateCliOptions) => {
      const log = (r: SimulatedRound) => {
        if (!o.json)
          console.log(
            `round ${String(r.round).padStart(3)}: test accuracy ${pct(r.accuracy)}, sent ${r.bytesSent} bytes, received ${r.bytesReceived} bytes`,
          );
      };
      const result = await simulate({
        clients: num(o.clients, '--clients'),
        rounds: num(o.rounds, '--rounds'),
        nonIid: o.nonIid !== undefined ? num(o.nonIid, '--non-iid') : undefined,
        compress: o.compress,
        hidden: intList(o.hidden, '--hidden'),
        fractionFit: num(o.fractionFit, '--fraction-fit'),
        serverMomentum: num(o.serverMomentum, '--server-momentum'),
        seed: num(o.seed, '--seed'),
        fit: {
          epochs: num(o.epochs, '--epochs'),
          lr: num(o.lr, '--lr'),
          batchSize: num(o.batchSize, '--batch-size'),
          proxMu: num(o.proxMu, '--prox-mu'),
        },
        onRound: log,
      });
      if (o.json) {
        const rounds = result.rounds.map(({ round, accuracy, bytesSent }) => ({ round, accuracy, bytesSent }));
        return console.log(JSON.stringify({ rounds, finalAccuracy: result.finalAccuracy }));
      }
      const sent = result.rounds.reduce((s, r) => s + r.bytesSent, 0);
      console.log(
        `final test accuracy ${pct(result.finalAccuracy)} after ${result.rounds.length} rounds; ${sent} update bytes sent (${result.compress}); ${result.seconds.toFixed(1)} s`,
      );
    });
}
