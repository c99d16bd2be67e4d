/**
 * Shared command-line options: numeric parsing into checked values (EdgeOptError E_ARGUMENT on
 * bad input, quoting the text given), the one `-o, --output` option and the `--data` / `--eval`
 * data options every training command takes.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mnistTest, mnistTrain } from '../data/bundled';
import type { Dataset } from '../data/dataset';
import { loadDataSource } from '../data/source';
import { EdgeOptError } from '../errors';

export function num(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new EdgeOptError('E_ARGUMENT', `${flag} must be a number, got '${value}'`);
  return n;
}

export function intList(value: string, flag: string): number[] {
  return value.split(',').map((v) => {
    const n = num(v, flag);
    if (!(Number.isInteger(n) && n > 0)) throw new EdgeOptError('E_ARGUMENT', `${flag} takes positive integers, got '${v}'`);
    return n;
  });
}

/** A number in [min, max] (integer when asked), quoting the text on error. */
export function numIn(value: string, flag: string, min: number, max: number, integer = false): number {
  const n = num(value, flag);
  if (n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new EdgeOptError('E_ARGUMENT', `${flag} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got '${value}'`);
  }
  return n;
}

/**
 * Checks before any work is done that `file` can be written: its folder exists and is a folder,
 * so a long run never fails at its last step with a stack trace.
 */
export function checkOutputPath(file: string, flag = '--output'): string {
  const dir = path.dirname(path.resolve(file));
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new EdgeOptError('E_IO', `${flag} ${file}: the folder ${dir} does not exist`);
  return file;
}

/** `-o, --output <file>`: the one spelling of "where to write" on every command. */
export function outputOption(cmd: Command, what: string, required = false): Command {
  return required ? cmd.requiredOption('-o, --output <file>', what) : cmd.option('-o, --output <file>', what);
}

/** `--data` and `--eval`: training data and labelled evaluation data (folders in the MNIST layout or .npy files). */
export function dataOptions(cmd: Command): Command {
  return cmd
    .option(
      '--data <dir-or-npy>',
      'training data: a folder in the MNIST layout (its train split) or an images .npy with labels (default: the bundled 8000 MNIST train digits)',
    )
    .option(
      '--eval <dir-or-npy>',
      'labelled evaluation data (default: the test split of --data when it is a folder, else the bundled 2000 MNIST test digits)',
    );
}

/** The datasets --data / --eval name, flattened to [rows, features]. */
export function trainingData(o: { data?: string; eval?: string }): { train: Dataset; test: Dataset | undefined } {
  const flat = (d: Dataset): Dataset => ({ ...d, shape: [d.shape[0], d.data.length / d.shape[0]] });
  const train = o.data ? flat(loadDataSource(o.data, { split: 'train', needLabels: true })) : mnistTrain();
  if (!train.labels) throw new EdgeOptError('E_ARGUMENT', `--data ${o.data}: training needs labels`);
  let test: Dataset | undefined;
  if (o.eval) test = flat(loadDataSource(o.eval, { needLabels: true }));
  else if (!o.data) test = mnistTest();
  else if (fs.statSync(o.data).isDirectory()) {
    try {
      test = flat(loadDataSource(o.data, { split: 'test', needLabels: true }));
    } catch (err) {
      if (!(err instanceof EdgeOptError && err.code === 'E_NOT_FOUND')) throw err;
    }
  }
  return { train, test };
}

/** Input features and class count of a labelled [rows, features] dataset (for an MLP's first and last width). */
export function widths(d: Dataset): { features: number; classes: number } {
  let max = 0;
  for (const y of d.labels!) max = Math.max(max, y);
  return { features: d.shape[1], classes: max + 1 };
}
