import type { Command } from 'commander';
import { formatDemo, runDemo } from '../demo';

export function register(program: Command): void {
  program
    .command('demo')
    .description('quantize the bundled MNIST MLP to int8 and compare size, accuracy and latency (fp32 vs int8, native vs TS)')
    .option('--json', 'print the results as JSON')
    .action((opts: { json?: boolean }) => {
      const result = runDemo();
      console.log(opts.json ? JSON.stringify(result, null, 2) : formatDemo(result));
    });
}
