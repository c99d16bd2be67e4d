import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../../errors';
import { loadModelArg } from './optimize';
import { readNpy } from '../../data/npy';
import { toFloat32 } from '../../data/dataset';
import { EdgeInferenceEngine, type Device } from '../../engine/engine';
import { argmaxRows } from '../../optimizer/evaluate';

interface RunOptions {
  input: string;
  device: Device;
  npuPlugin?: string;
  strict?: boolean;
  outputs?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('run <model>')
    .description('run a model (.eom, .onnx or a weights folder) on an .npy input and show the outputs (or argmax) and where every node ran')
    .requiredOption('--input <npy>', 'input rows as .npy (uint8 images are scaled to [0, 1]); first dim = batch')
    .option('--device <device>', 'auto | npu | cpu | ts', 'auto')
    .option(
      '--npu-plugin <path>',
      'NPU plugin shared library, resolved against the working directory (default with --device npu: EDGEOPT_NPU_PLUGIN)',
    )
    .option('--strict', 'fail instead of falling back')
    .option('--outputs', 'print every output value, not just the argmax per row')
    .option('--json', 'print { placement, shape, argmax, outputs? } as JSON')
    .action(async (model: string, opts: RunOptions, cmd: Command) => {
      // Naming a plugin asks for it: a missing file is an error unless --device auto was given explicitly.
      const explicitAuto = opts.device === 'auto' && cmd.getOptionValueSource('device') === 'cli';
      if (opts.npuPlugin && !explicitAuto && !fs.existsSync(opts.npuPlugin)) {
        throw new EdgeOptError(
          'E_NOT_FOUND',
          `--npu-plugin ${opts.npuPlugin}: no such file (give --device auto to fall back to the CPU instead)`,
        );
      }
      const npy = readNpy(opts.input);
      // A path typed on the command line is the user's own: resolve it here, explicitly.
      const npuPlugin = opts.npuPlugin === undefined ? undefined : path.resolve(opts.npuPlugin);
      const engine = new EdgeInferenceEngine({ device: opts.device, npuPlugin, strict: opts.strict });
      const { inputShape } = await engine.loadModel('model', loadModelArg(model));
      const features = inputShape.reduce((a, d) => a * d, 1);
      const data = toFloat32(npy, opts.input);
      const rows = data.length / features;
      const out = await engine.infer('model', { data, shape: [rows, ...inputShape] });
      const placement = engine.placement('model');
      const argmax = Array.from(argmaxRows(out.data, rows));
      if (opts.json) {
        console.log(JSON.stringify({ placement, shape: out.shape, argmax, ...(opts.outputs ? { outputs: Array.from(out.data) } : {}) }));
        return;
      }
      console.log('placement:');
      for (const p of placement)
        console.log(`  ${p.node.padEnd(16)} ${p.op.padEnd(8)} ${p.backend.padEnd(7)}${p.reason ? ` ${p.reason}` : ''}`);
      console.log(`output shape: [${out.shape.join(', ')}]`);
      for (let r = 0; r < rows; r++) {
        const row = out.data.subarray(r * out.shape[1], (r + 1) * out.shape[1]);
        console.log(opts.outputs ? `row ${r}: ${Array.from(row, (v) => v.toPrecision(6)).join(' ')}` : `row ${r}: argmax ${argmax[r]}`);
      }
    });
}
