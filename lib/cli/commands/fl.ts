import type { Command } from 'commander';
import { simulate, type SimulatedRound } from '../../federated/simulate';
import { EdgeOptError } from '../../errors';
import { saveModel } from '../../model';
import type { LrSchedule } from '../../train/schedule';
import { checkOutputPath, dataOptions, intList, num, numIn, outputOption, trainingData } from '../options';

interface SimulateCliOptions {
  clients: string;
  rounds: string;
  nonIid?: string;
  compress: string;
  epochs: string;
  lr?: string;
  batchSize: string;
  proxMu: string;
  hidden: string;
  model: string;
  optimizer?: string;
  batchNorm: boolean;
  norm?: string;
  restrictSoftmax?: boolean;
  scaffold?: boolean;
  calibrate?: boolean;
  lrSchedule?: string;
  fractionFit: string;
  serverMomentum?: string;
  aggregator: string;
  seed: string;
  data?: string;
  eval?: string;
  output?: string;
  json?: boolean;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function lrSchedule(name: string | undefined): LrSchedule | null | undefined {
  if (name === undefined) return undefined;
  if (name === 'constant') return null;
  if (name === 'cosine') return { kind: 'cosine' };
  throw new EdgeOptError('E_ARGUMENT', `--lr-schedule must be constant or cosine, got '${name}'`);
}

export function register(program: Command): void {
  const fl = program.command('fl').description('federated learning');
  const cmd = fl
    .command('simulate')
    .description(
      'run a FedAvg server and clients over HTTP on 127.0.0.1 on the bundled MNIST train split; print test accuracy and bytes per round',
    )
    .option('--clients <n>', 'number of clients', '10')
    .option('--rounds <n>', 'number of rounds', '20')
    .option('--non-iid <k>', 'label skew: each client holds only k classes (default: IID)')
    .option('--compress <mode>', 'update compression: none, int8 or topk:<fraction>', 'none')
    .option('--epochs <n>', 'local epochs per round', '2')
    .option('--lr <rate>', 'local learning rate (default: 0.02 for the MLP, 0.003 for mobilenet-mini)')
    .option('--batch-size <n>', 'local mini-batch size', '32')
    .option('--prox-mu <mu>', 'FedProx proximal term (0: plain FedAvg)', '0')
    .option(
      '--model <mlp|mobilenet-mini>',
      'the global model: an MLP or the mobilenet-mini CNN (fresh, BatchNorm statistics averaged by FedAvg)',
      'mlp',
    )
    .option('--no-batch-norm', 'mobilenet-mini without BatchNormalization (Convs with biases)')
    .option(
      '--norm <batch|group|none>',
      'mobilenet-mini normalization after each Conv (default: batch; group: 8 groups, no batch statistics)',
    )
    .option('--restrict-softmax', 'clients take the softmax over their own classes only (FedRS, for label skew)')
    .option(
      '--scaffold',
      "SCAFFOLD control variates: correct each client's steps for the drift of its own data (label skew; default for mobilenet-mini)",
    )
    .option('--no-scaffold', 'plain FedAvg steps (default for the MLP)')
    .option(
      '--calibrate',
      "after the last round, retrain the classifier on virtual features drawn from the clients' per-class feature statistics (CCVR; default with --non-iid for mobilenet-mini)",
    )
    .option('--no-calibrate', 'no calibration after the last round')
    .option(
      '--lr-schedule <constant|cosine>',
      "the clients' learning rate over the rounds: cosine anneals it to 0 by the last round (default: cosine for mobilenet-mini, constant for the MLP)",
    )
    .option('--optimizer <sgd|adam>', 'local optimizer: SGD with momentum 0.9 (default for the MLP) or Adam (for mobilenet-mini)')
    .option('--hidden <sizes>', 'hidden layer sizes of the MLP', '128')
    .option('--fraction-fit <f>', 'fraction of clients per round', '1')
    .option('--server-momentum <beta>', 'FedAvgM server momentum, 0: plain FedAvg (default: 0.7 for the MLP, 0 for mobilenet-mini)')
    .option('--aggregator <kind>', 'fedavg, median or trimmed-mean:<fraction> (coordinate-wise, robust to hostile clients)', 'fedavg')
    .option('--seed <n>', 'seed for init, partition and shuffling', '1')
    .option('--json', 'print { rounds: [{ round, accuracy, bytesSent }], calibration?: { accuracy, bytesSent }, finalAccuracy } as JSON');
  outputOption(dataOptions(cmd), 'save the final global model (.eom)').action(async (o: SimulateCliOptions) => {
    if (o.output) checkOutputPath(o.output);
    if (o.model !== 'mlp' && o.model !== 'mobilenet-mini')
      throw new EdgeOptError('E_ARGUMENT', `--model must be mlp or mobilenet-mini, got '${o.model}'`);
    // The MLP keeps the settings its README figures were measured with; mobilenet-mini takes simulate()'s.
    if (o.model === 'mlp') {
      o.lr ??= '0.02';
      o.optimizer ??= 'sgd';
      o.serverMomentum ??= '0.7';
    }
    if (o.norm !== undefined && o.norm !== 'batch' && o.norm !== 'group' && o.norm !== 'none')
      throw new EdgeOptError('E_ARGUMENT', `--norm must be batch, group or none, got '${o.norm}'`);
    if (o.optimizer !== undefined && o.optimizer !== 'sgd' && o.optimizer !== 'adam')
      throw new EdgeOptError('E_ARGUMENT', `--optimizer must be sgd or adam, got '${o.optimizer}'`);
    const { train, test } = trainingData(o);
    if (!test)
      throw new EdgeOptError(
        'E_ARGUMENT',
        `the folder ${o.data} has no test split: give --eval <labelled data> for the per-round accuracy`,
      );
    // With --json, the rounds still show on stderr as they finish (stdout stays one JSON document).
    const log = (r: SimulatedRound) =>
      (o.json ? console.error : console.log)(
        `round ${String(r.round).padStart(3)}: test accuracy ${pct(r.accuracy)}, sent ${r.bytesSent} bytes, received ${r.bytesReceived} bytes`,
      );
    const result = await simulate({
      clients: numIn(o.clients, '--clients', 1, 1000, true),
      rounds: numIn(o.rounds, '--rounds', 1, 100_000, true),
      nonIid: o.nonIid !== undefined ? numIn(o.nonIid, '--non-iid', 1, 1000, true) : undefined,
      data: train,
      test,
      compress: o.compress,
      model: o.model,
      batchNorm: o.batchNorm,
      norm: o.norm as 'batch' | 'group' | 'none' | undefined,
      hidden: intList(o.hidden, '--hidden'),
      fractionFit: num(o.fractionFit, '--fraction-fit'),
      serverMomentum: o.serverMomentum === undefined ? undefined : num(o.serverMomentum, '--server-momentum'),
      aggregator: o.aggregator,
      scaffold: o.scaffold,
      calibrate: o.calibrate,
      lrSchedule: lrSchedule(o.lrSchedule),
      seed: num(o.seed, '--seed'),
      fit: {
        epochs: num(o.epochs, '--epochs'),
        lr: o.lr === undefined ? undefined : num(o.lr, '--lr'),
        batchSize: num(o.batchSize, '--batch-size'),
        proxMu: num(o.proxMu, '--prox-mu'),
        optimizer: o.optimizer as 'sgd' | 'adam' | undefined,
        restrictSoftmax: o.restrictSoftmax,
      },
      onRound: log,
      onCalibrated: (c) =>
        (o.json ? console.error : console.log)(
          `calibrated: test accuracy ${pct(c.accuracy)}, sent ${c.bytesSent} bytes of class statistics`,
        ),
    });
    const saved = o.output ? { file: o.output, bytes: saveModel(result.model, o.output) } : undefined;
    if (o.json) {
      const rounds = result.rounds.map(({ round, accuracy, bytesSent }) => ({ round, accuracy, bytesSent }));
      const calibration = result.calibration ? { calibration: result.calibration } : {};
      return console.log(JSON.stringify({ rounds, ...calibration, finalAccuracy: result.finalAccuracy, ...(saved ? { saved } : {}) }));
    }
    if (saved) console.log(`saved the global model to ${saved.file} (${saved.bytes} bytes)`);
    const sent = result.rounds.reduce((s, r) => s + r.bytesSent, 0);
    console.log(
      `final test accuracy ${pct(result.finalAccuracy)} after ${result.rounds.length} rounds${result.calibration ? ' and calibration' : ''}; ${sent} update bytes sent (${result.compress}); ${result.seconds.toFixed(1)} s`,
    );
  });
}
