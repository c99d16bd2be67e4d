#!/usr/bin/env node
/** The `edgeopt` command: subcommands live in ./commands, one file each. */
import { Command } from 'commander';
import { EdgeOptError } from '../errors';
import { commands } from './commands';

const program = new Command();
program.name('edgeopt').description('Optimize small neural networks and run them on edge devices').showHelpAfterError();
for (const c of commands) c.register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof EdgeOptError) {
    console.error(`edgeopt: ${err.code}: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
