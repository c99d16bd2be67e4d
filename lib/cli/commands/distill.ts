import type { Command } from 'commander';
import { defaultModel, mnistTest, mnistTrain } from '../../data/bundled';
import { loadModel, modelFileSize } from '../../model';
import type { Graph } from '../../model/graph';
import { distill } from '../../optimizer/distill';
import { evaluateModel } from '../../optimizer/evaluate';
import { mlp } from '../../train/init';
import { train } from '../../train/trainer';
import { intList, num } from '../options';

interface DistillCliOptions {
  teacher?: string;
  hidden: string;
  temperature: string;
  alpha: string;
  epochs: string;
  lr: string;
  seed: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
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
    .option('--json', 'print the results as JSON')
    .action((o: DistillCliOptions) => {
      const data = mnistTrain();
      const test = mnistTest();
      const teacher = o.teacher ? loadModel(o.teacher) : defaultModel();
      const seed = num(o.seed, '--seed');
      const student = mlp([784, ...intList(o.hidden, '--hidden'), 10], { seed, name: 'student' });
      const common = { epochs: num(o.epochs, '--epochs'), lr: num(o.lr, '--lr'), batchSize: 32, seed };
      const row = (name: string, g: Graph) => ({ name, bytes: modelFileSize(g), accuracy: evaluateModel(g, test).accuracy });
      const temperature = num(o.temperature, '--temperature');
      const alpha = num(o.alpha, '--alpha');
      const rows = [
        row(`teacher ${teacher.name}`, teacher),
        row(
          `student ${student.name.replace('student', o.hidden)} distilled (T=${temperature}, alpha=${alpha})`,
          distill({ teacher, student, data, temperature, alpha, ...common }).model,
        ),
        row(`student ${o.hidden} hard labels only (same seed)`, train(student, data, common).model),
      ];
      if (o.json) return console.log(JSON.stringify({ models: rows, testRows: test.shape[0], ...common, temperature, alpha }, null, 2));
      for (const r of rows) console.log(`${r.name.padEnd(52)} ${String(r.bytes).padStart(8)} bytes  ${(r.accuracy * 100).toFixed(2)}%`);
    });
}
