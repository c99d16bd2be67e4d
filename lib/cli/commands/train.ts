import * as cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { mnistTest, mnistTrain } from '../../data/bundled';
import { EdgeOptError } from '../../errors';
import { saveModel } from '../../model';
import { evaluateModel } from '../../optimizer/evaluate';
import { mlp, trainAsync, type TrainOptions } from '../../train';
import { intList, num } from '../options';

interface TrainCliOptions {
  hidden: string;
  epochs: string;
  batchSize: string;
  lr?: string;
  optimizer: string;
  seed: string;
  out: string;
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
  program
    .command('train')
    .description('train an MLP from a seeded init on the bundled MNIST train split (8000 rows) and save it as .eom')
    .option('--hidden <sizes>', 'hidden layer sizes, comma-separated', '128')
    .option('--epochs <n>', 'epochs', '5')
    .option('--batch-size <n>', 'mini-batch size', '32')
    .option('--lr <rate>', 'learning rate (default 0.05 for sgd, 0.001 for adam)')
    .option('--optimizer <name>', 'sgd (momentum 0.9) or adam', 'sgd')
    .option('--seed <n>', 'seed for init and shuffling', '1')
    .option('--out <file>', 'where to save the model', 'mnist-mlp.eom')
    .option('--json', 'print the results as JSON (no progress bar)')
    .action(async (o: TrainCliOptions) => {
      if (o.optimizer !== 'sgd' && o.optimizer !== 'adam')
        throw new EdgeOptError('E_ARGUMENT', `--optimizer must be sgd or adam, got '${o.optimizer}'`);
      const data = mnistTrain();
      const seed = num(o.seed, '--seed');
      const model = mlp([784, ...intList(o.hidden, '--hidden'), 10], { seed });
      const options: TrainOptions = {
        epochs: num(o.epochs, '--epochs'),
        batchSize: num(o.batchSize, '--batch-size'),
        optimizer: o.optimizer,
        lr: o.lr !== undefined ? num(o.lr, '--lr') : o.optimizer === 'sgd' ? 0.05 : 1e-3,
        seed,
      };
      const bar = progressBar(!o.json, options.epochs * Math.ceil(data.shape[0] / options.batchSize!), 'train');
      const started = performance.now();
      const { model: trained, history } = await trainAsync(model, data, {
        ...options,
        onStep: (s) => bar.update(s.step + 1, { status: `epoch ${s.epoch} loss ${s.loss.toFixed(4)}` }),
      }).finally(() => bar.stop());
      const seconds = (performance.now() - started) / 1000;
      const accuracy = evaluateModel(trained, mnistTest()).accuracy;
      const bytes = saveModel(trained, o.out);
      const result = { model: trained.name, epochs: history, testAccuracy: accuracy, seconds, file: o.out, bytes, options };
      if (o.json) return console.log(JSON.stringify(result, null, 2));
      for (const h of history) console.log(`epoch ${h.epoch}: loss ${h.loss.toFixed(4)}, train accuracy ${(h.accuracy * 100).toFixed(2)}%`);
      console.log(
        `${trained.name}: test accuracy ${(accuracy * 100).toFixed(2)}% on ${mnistTest().shape[0]} rows, ${seconds.toFixed(1)} s; saved ${o.out} (${bytes} bytes)`,
      );
    });
}
