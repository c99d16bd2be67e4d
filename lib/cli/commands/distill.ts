import type { Command } from 'commander';
import { defaultModel } from '../../data/bundled';
import { EdgeOptError } from '../../errors';
import { loadModel, modelFileSize, saveModel } from '../../model';
import type { Graph } from '../../model/graph';
import { distill } from '../../optimizer/distill';
import { evaluateModel } from '../../optimizer/evaluate';
import { mlp } from '../../train/init';
import { train } from '../../train/trainer';
import { checkOutputPath, dataOptions, intList, num, numIn, outputOption, trainingData, widths } from '../options';

interface DistillCliOptions {
  teacher?: string;
  hidden: string;
  temperature: string;
  alpha: string;
  epochs: string;
  lr: string;
  seed: string;
  data?: string;
  eval?: string;
  output?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('distill')
    .description(
      'distill a teacher (default: the bundled mlp-784-128-10) into a small MLP on the bundled MNIST train split, against the same student trained on labels only',
    )
    .option('--teacher <model>', 'teacher model (.eom or .onnx)')
    .option('--hidden <sizes>', 'student hidden layer sizes', '32')
    .option('--temperature <T>', 'softening temperature', '4')
    .option('--alpha <a>', 'weight of the teacher term', '0.9')
    .option('--epochs <n>', 'epochs', '5')
    .option('--lr <rate>', 'SGD learning rate (momentum 0.9)', '0.05')
    .option('--seed <n>', 'seed for the student init and batch order (both students)', '1')
    .option('--json', 'print the results as JSON');
  outputOption(dataOptions(cmd), 'save the distilled student (.eom)').action((o: DistillCliOptions) => {
    if (o.output) checkOutputPath(o.output);
    const { train: data, test } = trainingData(o);
    if (!test)
      throw new EdgeOptError(
        'E_ARGUMENT',
        `distill compares models on labelled data: give --eval (the folder ${o.data} has no test split)`,
      );
    const teacher = o.teacher ? loadModel(o.teacher) : defaultModel();
    const seed = num(o.seed, '--seed');
    const { features, classes } = widths(data);
    const student = mlp([features, ...intList(o.hidden, '--hidden'), classes], { seed, name: 'student' });
    const common = { epochs: numIn(o.epochs, '--epochs', 1, 100_000, true), lr: num(o.lr, '--lr'), batchSize: 32, seed };
    const row = (name: string, g: Graph) => ({ name, bytes: modelFileSize(g), accuracy: evaluateModel(g, test).accuracy });
    const temperature = numIn(o.temperature, '--temperature', 1e-3, 1e3);
    const alpha = numIn(o.alpha, '--alpha', 0, 1);
    const distilled = distill({ teacher, student, data, temperature, alpha, ...common }).model;
    const rows = [
      row(`teacher ${teacher.name}`, teacher),
      row(`student ${student.name.replace('student', o.hidden)} distilled (T=${temperature}, alpha=${alpha})`, distilled),
      row(`student ${o.hidden} hard labels only (same seed)`, train(student, data, common).model),
    ];
    const saved = o.output ? { file: o.output, bytes: saveModel(distilled, o.output) } : undefined;
    if (o.json)
      return console.log(JSON.stringify({ models: rows, testRows: test.shape[0], ...common, temperature, alpha, saved }, null, 2));
    for (const r of rows) console.log(`${r.name.padEnd(52)} ${String(r.bytes).padStart(8)} bytes  ${(r.accuracy * 100).toFixed(2)}%`);
    if (saved) console.log(`saved the distilled student to ${saved.file} (${saved.bytes} bytes)`);
  });
}
