import * as cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { EdgeOptError } from '../../errors';
import { saveModel } from '../../model';
import { mobileNetMini } from '../../model/builder';
import { evaluateModel } from '../../optimizer/evaluate';
import { mlp, trainAsync, type TrainOptions } from '../../train';
import { checkOutputPath, dataOptions, intList, num, numIn, outputOption, trainingData, widths } from '../options';

interface TrainCliOptions {
  model: string;
  schedule?: string;
  shift?: string;
  hidden: string;
  epochs: string;
  batchSize: string;
  lr?: string;
  optimizer: string;
  seed: string;
  output: string;
  data?: string;
  eval?: string;
  json?: boolean;
}

/** A progress bar only for people watching a terminal: never in --json output or when piped. */
export function progressBar(
  enabled: boolean,
  total: number,
  label: string,
): { update(v: number, info: Record<string, string>): void; stop(): void } {
  if (!enabled || !process.stdout.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {status}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { status: '' });
  return { update: (v, info) => bar.update(v, info), stop: () => bar.stop() };
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'train an MLP or the mobilenet-mini CNN from a seeded init (default data: the bundled MNIST train split, 8000 rows) and save it as .eom',
    )
    .option('--model <mlp|mobilenet-mini>', 'what to train: an MLP (--hidden) or mobilenet-mini (1x28x28 input, BatchNorm)', 'mlp')
    .option('--hidden <sizes>', 'hidden layer sizes, comma-separated', '128')
    .option('--schedule <constant|cosine>', 'learning-rate schedule over the run', 'constant')
    .option('--shift <pixels>', 'mobilenet-mini: seeded random shifts of up to this many pixels (augmentation)', '0')
    .option('--epochs <n>', 'epochs', '5')
    .option('--batch-size <n>', 'mini-batch size', '32')
    .option('--lr <rate>', 'learning rate (default 0.05 for sgd, 0.001 for adam)')
    .option('--optimizer <name>', 'sgd (momentum 0.9) or adam', 'sgd')
    .option('--seed <n>', 'seed for init and shuffling', '1')
    .option('--json', 'print the results as JSON (no progress bar)');
  outputOption(dataOptions(cmd), 'where to save the model (default: mnist-mlp.eom)').action(async (o: TrainCliOptions) => {
    if (o.optimizer !== 'sgd' && o.optimizer !== 'adam')
      throw new EdgeOptError('E_ARGUMENT', `--optimizer must be sgd or adam, got '${o.optimizer}'`);
    const output = checkOutputPath(o.output ?? 'mnist-mlp.eom');
    const { train: data, test } = trainingData(o);
    const seed = num(o.seed, '--seed');
    const { features, classes } = widths(data);
    if (o.model !== 'mlp' && o.model !== 'mobilenet-mini')
      throw new EdgeOptError('E_ARGUMENT', `--model must be mlp or mobilenet-mini, got '${o.model}'`);
    if (o.schedule !== undefined && o.schedule !== 'constant' && o.schedule !== 'cosine')
      throw new EdgeOptError('E_ARGUMENT', `--schedule must be constant or cosine, got '${o.schedule}'`);
    if (o.model === 'mobilenet-mini' && features !== 784)
      throw new EdgeOptError('E_SHAPE', `--model mobilenet-mini takes 1x28x28 images (784 values per row), the data has ${features}`);
    const shift = numIn(o.shift ?? '0', '--shift', 0, 8, true);
    if (shift && o.model !== 'mobilenet-mini')
      throw new EdgeOptError('E_ARGUMENT', '--shift augments images: use it with --model mobilenet-mini');
    const model =
      o.model === 'mlp' ? mlp([features, ...intList(o.hidden, '--hidden'), classes], { seed }) : mobileNetMini({ classes, seed });
    const options: TrainOptions = {
      epochs: numIn(o.epochs, '--epochs', 1, 100_000, true),
      batchSize: numIn(o.batchSize, '--batch-size', 1, 1 << 20, true),
      optimizer: o.optimizer,
      lr: o.lr !== undefined ? num(o.lr, '--lr') : o.optimizer === 'sgd' ? 0.05 : 1e-3,
      seed,
      ...(o.schedule === 'cosine' ? { schedule: { kind: 'cosine' as const } } : {}),
      ...(shift ? { augment: { shift } } : {}),
    };
    const bar = progressBar(!o.json, options.epochs * Math.ceil(data.shape[0] / options.batchSize!), 'train');
    const started = performance.now();
    const { model: trained, history } = await trainAsync(model, data, {
      ...options,
      onStep: (s) => bar.update(s.step + 1, { status: `epoch ${s.epoch} loss ${s.loss.toFixed(4)}` }),
    }).finally(() => bar.stop());
    const seconds = (performance.now() - started) / 1000;
    const accuracy = test ? evaluateModel(trained, test).accuracy : null;
    const bytes = saveModel(trained, output);
    const result = { model: trained.name, epochs: history, testAccuracy: accuracy, seconds, file: output, bytes, options };
    if (o.json) return console.log(JSON.stringify(result, null, 2));
    for (const h of history) console.log(`epoch ${h.epoch}: loss ${h.loss.toFixed(4)}, train accuracy ${(h.accuracy * 100).toFixed(2)}%`);
    const measured = test
      ? `test accuracy ${(accuracy! * 100).toFixed(2)}% on ${test.shape[0]} rows`
      : 'no --eval data: test accuracy not measured';
    console.log(`${trained.name}: ${measured}, ${seconds.toFixed(1)} s; saved ${output} (${bytes} bytes)`);
  });
}
