#!/usr/bin/env node
/** The `edgeopt` command. */
import { Command } from 'commander';
import { backendInfo } from '../backends';
import { EdgeOptError } from '../errors';
import { formatDemo, runDemo } from './demo';

const program = new Command();
program.name('edgeopt').description('Optimize small neural networks and run them on edge devices').showHelpAfterError();

program
  .command('demo')
  .description('quantize the bundled MNIST MLP to int8 and compare size, accuracy and latency (fp32 vs int8, native vs TS)')
  .option('--json', 'print the results as JSON')
  .action((opts: { json?: boolean }) => {
    const result = runDemo();
    console.log(opts.json ? JSON.stringify(result, null, 2) : formatDemo(result));
  });

program
  .command('info')
  .description('show the backend in use: native or TypeScript, kernel table, CPU features')
  .option('--json', 'print backendInfo() as JSON')
  .action((opts: { json?: boolean }) => {
    const info = backendInfo();
    if (opts.json) return console.log(JSON.stringify(info));
    console.log(`backend:  ${info.native ? 'native' : 'typescript'}`);
    console.log(`kernel:   ${info.kernel}`);
    console.log(`kernels:  ${info.kernels.join(', ')}`);
    console.log(`cpu isa:  ${info.isa.join(', ') || '(none detected)'}`);
    if (info.reason) console.log(`reason:   ${info.reason}`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof EdgeOptError) {
    console.error(`edgeopt: ${err.code}: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
