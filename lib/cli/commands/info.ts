import type { Command } from 'commander';
import { backendInfo } from '../../backends';

export function register(program: Command): void {
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
      for (const t of info.unavailable) console.log(`not here: ${t.name} (the CPU lacks ${t.missing.join(', ')})`);
      for (const n of info.notes) console.log(`note:     ${n}`);
      if (info.reason) console.log(`reason:   ${info.reason}`);
    });
}
