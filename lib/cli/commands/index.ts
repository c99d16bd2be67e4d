/** Every `edgeopt` subcommand: one file each, registered in this order. */
import type { Command } from 'commander';
import * as demo from './demo';
import * as exportOnnx from './export';
import * as distill from './distill';
import * as fl from './fl';
import * as info from './info';
import * as optimize from './optimize';
import * as run from './run';
import * as sensitivity from './sensitivity';
import * as serve from './serve';
import * as train from './train';

export const commands: Array<{ register(program: Command): void }> = [
  demo,
  info,
  optimize,
  sensitivity,
  run,
  serve,
  train,
  distill,
  fl,
  exportOnnx,
];
