#!/usr/bin/env node
/** The `edgeopt` command: subcommands live in ./commands, one file each. */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../backends/native/addon';
import { EdgeOptError } from '../errors';
import { commands } from './commands';

const program = new Command();
const { version } = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
program
  .name('edgeopt')
  .description('Optimize small neural networks and run them on edge devices')
  .version(version, '-V, --version', 'print the edgeopt version')
  .showHelpAfterError();
for (const c of commands) c.register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof EdgeOptError) {
    console.error(`edgeopt: ${err.code}: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
