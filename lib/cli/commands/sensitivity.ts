import type { Command } from 'commander';
import { LatencyTable } from '../../optimizer/latency';
import { analyzeSensitivity, type SensitivityTable } from '../../optimizer/sensitivity';
import { defaultCalibration, loadSplits, progressBar } from '../budget';
import { loadModelArg } from './optimize';

interface SensitivityCliOptions {
  validation?: string;
  validationRows?: string;
  latency?: boolean;
  json?: boolean;
}

export function formatSensitivity(t: SensitivityTable): string {
  const lines = [
    `sensitivity of ${t.model}: one layer at a time, the others float32, on ${t.validationRows} validation rows`,
    `float32: ${t.reference.bytes.toLocaleString('en-US')} bytes, validation accuracy ${(t.reference.accuracy * 100).toFixed(2)} %${t.reference.latencyUs !== undefined ? `, ${t.reference.latencyUs.toFixed(2)} us per call` : ''}`,
  ];
  const head = ['setting', 'model bytes', 'vs fp32', 'drop', 'changed', 'logit err', 'max |err|', 'layer us'];
  for (const l of t.layers) {
    lines.push(
      '',
      `${l.node} ${l.op} [${l.shape.join(', ')}]${l.latencyShare !== undefined ? `, ${(l.latencyShare * 100).toFixed(0)} % of the float model's latency` : ''}`,
    );
    const body = [...l.candidates]
      .sort((a, b) => a.modelBytes - b.modelBytes || a.logitError - b.logitError)
      .map((c) => [
        c.key,
        c.modelBytes.toLocaleString('en-US'),
        `${(c.modelBytes / t.reference.bytes).toFixed(3)}`,
        c.accuracyDrop.toFixed(2),
        String(c.changedPredictions),
        c.logitError.toExponential(2),
        c.maxAbsLogitError.toFixed(3),
        c.latencyUs === undefined ? '-' : c.latencyUs.toFixed(2),
      ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const line = (cells: string[]) => '  ' + cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
    lines.push(line(head), ...body.map(line));
  }
  lines.push(
    '',
    'drop: validation accuracy points below float32; logit err: mean squared logit error / mean squared float logit; keys: int4/g32 = 4-bit, a scale per 32 along K (ch: per channel), u0.6 = 60 % of weights pruned, n0.25 = 25 % of units pruned, f0.25 = 25 % of the filters of the channel space the layer starts',
  );
  if (t.layers.some((l) => l.op === 'Conv'))
    lines.push(
      "a CNN's layers are static int8 or float32 (int8 activations calibrated on the training rows before the validation rows); its 'layer us' is the whole model's with only that layer changed",
    );
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('sensitivity <model>')
    .description(
      'per-layer sensitivity: each layer alone at every bit width, granularity and sparsity the budget search tries; accuracy drop, logit error, bytes and latency',
    )
    .requiredOption(
      '--validation <dir-or-npy>',
      'labelled validation data; a folder gives the last --validation-rows rows of its train split',
    )
    .option('--validation-rows <n>', 'with a folder: validation rows at the end of the train split (default 1000)')
    .option('--no-latency', 'do not time the layers')
    .option('--json', 'print the table as JSON')
    .action(async (input: string, o: SensitivityCliOptions) => {
      const { validation, fineTuneData } = loadSplits(o);
      const model = loadModelArg(input);
      const bar = progressBar(!o.json);
      const table = await analyzeSensitivity(model, {
        data: validation,
        calibration: defaultCalibration(model, fineTuneData),
        latency: o.latency === false ? false : new LatencyTable(),
        onProgress: (p) => bar.update({ ...p, message: p.layer }),
      }).finally(() => bar.stop());
      console.log(o.json ? JSON.stringify(table, null, 2) : formatSensitivity(table));
    });
}
