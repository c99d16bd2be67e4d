import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadLinearStack } from '../../data/bundled';
import { loadDataSource } from '../../data/source';
import { EdgeOptError } from '../../errors';
import { loadModel, saveModel } from '../../model';
import type { Graph } from '../../model/graph';
import { EdgeModelOptimizer, type OptimizeReport } from '../../optimizer/optimizer';
import { PRUNE_MODES, prune, type PruneMode } from '../../optimizer/prune';
import { parseObserver } from '../../optimizer/observe';
import type { QatOptions } from '../../optimizer/qat';
import { parseGranularity, quantize } from '../../optimizer/quantize';
import { type Dataset, sliceRows } from '../../data/dataset';
import { inputNormalization } from '../../optimizer/input-normalization';
import type { Target } from '../../optimizer/target';
import { runBudget, type BudgetCliOptions } from '../budget';
import { checkOutputPath, num, numIn } from '../options';

interface Options extends Partial<BudgetCliOptions> {
  output: string;
  quantize?: string;
  granularity?: string;
  activations?: string;
  calibration?: string;
  calibrationRows?: string;
  observer?: string;
  exclude?: string;
  qatEpochs?: string;
  qatLr?: string;
  prune?: string;
  pruneMode?: string;
  pruneNorm?: string;
  eval?: string;
  evalLabels?: string;
  target?: string;
  uint8Input?: boolean;
  inputDivisor?: string;
  inputMean?: string;
  inputStd?: string;
  json?: boolean;
}

function numbers(value: string, flag: string): number[] {
  return value.split(',').map((v) => num(v, flag));
}

/** An .eom/.onnx file, or a folder of PyTorch Linear weights (fc1.weight.npy, fc1.bias.npy, ...). */
export function loadModelArg(input: string): Graph {
  if (fs.existsSync(input) && fs.statSync(input).isDirectory()) return loadLinearStack(input);
  return loadModel(input);
}

function bitsOf(q: string): number {
  const m = /^int([2-8])$/.exec(q);
  if (!m) throw new EdgeOptError('E_ARGUMENT', `--quantize must be int8, int4, int2 (or int3..int7), got '${q}'`);
  return Number(m[1]);
}

function parseTarget(t: string | undefined): Target | undefined {
  if (!t) return undefined;
  if (t === 'cpu' || t === 'npu') return t;
  const m = /^mcu:(\d+)[kK]?,(\d+)[kK]?$/.exec(t);
  if (m) {
    const kb = (s: string, i: number) => Number(m[i]) * (/[kK]/.test(s) ? 1024 : 1);
    const [ram, flash] = t.slice(4).split(',');
    return { kind: 'mcu', ramBytes: kb(ram, 1), flashBytes: kb(flash, 2) };
  }
  throw new EdgeOptError('E_ARGUMENT', `--target must be cpu, npu or mcu:<ram>,<flash> (bytes, or with a k suffix), got '${t}'`);
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

export function formatReport(r: OptimizeReport): string {
  const lines = [`target: ${r.target}`];
  const layerLine = (l: OptimizeReport['layersBefore'][number]) =>
    `  ${l.node.padEnd(10)} ${l.op.padEnd(7)} [${l.shape.join(', ')}]`.padEnd(36) +
    `${String(l.bits).padStart(2)}-bit  sparsity ${pct(l.sparsity).padStart(8)}  ${l.bytes.toLocaleString('en-US').padStart(10)} B${l.activations ? `  ${l.activations} activations` : ''}${l.float32Reason ? `  float32: ${l.float32Reason}` : ''}`;
  lines.push(
    `before: ${r.bytesBefore.toLocaleString('en-US')} bytes, ${r.paramsBefore.toLocaleString('en-US')} params${r.accuracyBefore !== undefined ? `, top-1 ${pct(r.accuracyBefore)}` : ''}`,
  );
  r.layersBefore.forEach((l) => lines.push(layerLine(l)));
  for (const p of r.passes) {
    const acc = p.after
      ? `, top-1 ${pct(p.after.accuracy)}, ${p.after.changedPredictions} rows changed, logit error max ${p.after.maxAbsLogitError.toFixed(4)} mean ${p.after.meanAbsLogitError.toFixed(5)}`
      : '';
    lines.push(`after ${p.name}: ${p.bytesAfter.toLocaleString('en-US')} bytes, ${p.paramsAfter.toLocaleString('en-US')} params${acc}`);
    p.layers.forEach((l) => lines.push(layerLine(l)));
  }
  lines.push(
    `compression: ${r.compression.toFixed(2)}x (${r.bytesBefore.toLocaleString('en-US')} -> ${r.bytesAfter.toLocaleString('en-US')} bytes)`,
  );
  if (r.targetIssues.length) {
    lines.push(`does not fit ${r.target}:`);
    r.targetIssues.forEach((i) => lines.push(`  ${i.node ?? 'model'}: ${i.reason}`));
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('optimize <in>')
    .description('prune and/or quantize a model (.eom, .onnx, or a folder of fc<N>.weight/bias .npy files) and report size and accuracy')
    .requiredOption('-o, --output <out.eom>', 'where to write the optimized model')
    .option('--quantize <int8|int4|int2>', 'weight bit width (int2..int8)')
    .option(
      '--granularity <channel|tensor|global|group:N>',
      'weight scales per output channel (default), per tensor, one global min/max grid, or per group of N along K',
    )
    .option('--activations <dynamic|static>', 'activation quantization: per row at run time (default) or static from --calibration')
    .option('--calibration <dir-or-npy>', 'calibration data for static activations (an MNIST-style folder uses its train split)')
    .option('--calibration-rows <n>', 'use the first n calibration rows (default all)')
    .option('--observer <minmax|entropy|percentile:P>', 'how static activation ranges are observed (default minmax)')
    .option('--exclude <node,...>', 'static int8 CNNs: keep these nodes in float32 (quantize/dequantize around them)')
    .option(
      '--qat-epochs <n>',
      'static int8 CNNs: quantization-aware training for n epochs on all labelled --calibration rows (seeded by --seed)',
    )
    .option('--qat-lr <x>', 'with --qat-epochs: Adam learning rate (default 0.0001, cosine to 0)')
    .option('--prune <sparsity>', 'fraction of weights (or hidden units / channels for --prune-mode neurons / filters) to remove')
    .option('--prune-mode <mode>', `one of ${PRUNE_MODES.join(', ')} (default unstructured; 2:4 needs no --prune)`)
    .option('--prune-norm <l1|l2>', 'with --prune-mode filters: rank channels by the L1 (default) or L2 norm of their filters')
    .option('--eval <dir-or-npy>', 'labelled data to measure accuracy before and after each pass (a folder uses its test split)')
    .option('--eval-labels <npy>', 'labels for --eval when it is an images .npy file')
    .option('--target <cpu|npu|mcu:ram,flash>', 'check the model against a device profile (sets pass defaults)')
    .option('--uint8-input', 'fold the input normalization into the first layer: the model then takes raw uint8 bytes')
    .option('--input-divisor <n>', 'with --uint8-input: raw bytes are divided by this first', '255')
    .option('--input-mean <v[,v...]>', 'with --uint8-input: mean subtracted after the division (one value or one per channel)')
    .option('--input-std <v[,v...]>', 'with --uint8-input: std divided by after the mean (one value or one per channel)')
    .option('--compress', 'write the compressed .eom (brotli; smaller, no longer a safetensors file; edgeopt reads both)')
    .option('--json', 'print the report as JSON')
    .option(
      '--budget <points>',
      'optimize to a budget: choose bits, granularity and sparsity per layer so validation accuracy drops at most this many points',
    )
    .option('--objective <size|latency>', 'with --budget: minimize .eom bytes (default) or latency measured on this machine')
    .option(
      '--validation <dir-or-npy>',
      'with --budget: labelled validation data; a folder gives the last --validation-rows rows of its train split',
    )
    .option('--validation-rows <n>', 'with --budget and a folder: validation rows at the end of the train split (default 1000)')
    .option('--fine-tune <epochs>', 'with --budget and a folder: fine-tune pruned models on the train rows before the validation rows')
    .option('--report <file.svg|file.json>', 'with --budget: write the Pareto report (an .svg path writes the .json beside it too)')
    .option(
      '--seed <n>',
      'with --budget: seeds fine-tuning and the timing inputs (default 1); with --qat-epochs: the batch order (default 0)',
    )
    .option('--no-latency', 'with --budget and --objective size: do not time layers (faster; no latency in the report)')
    .option('--latency-table <file.json>', 'with --budget: reuse this latency table if it exists (same choices every run) and save it')
    .action(async (input: string, o: Options) => {
      checkOutputPath(o.output);
      const mode = (o.pruneMode ?? 'unstructured') as PruneMode;
      if (!PRUNE_MODES.includes(mode))
        throw new EdgeOptError('E_ARGUMENT', `--prune-mode must be one of ${PRUNE_MODES.join(', ')}, got '${o.pruneMode}'`);
      if (o.pruneMode && mode !== '2:4' && o.prune === undefined)
        throw new EdgeOptError('E_ARGUMENT', `--prune-mode ${mode} prunes a fraction of the weights: give it with --prune <sparsity>`);
      const sparsity = o.prune === undefined ? undefined : numIn(o.prune, '--prune', 0, 0.999999);
      if (o.pruneNorm !== undefined && mode !== 'filters')
        throw new EdgeOptError('E_ARGUMENT', '--prune-norm goes with --prune-mode filters');
      if (o.pruneNorm !== undefined && o.pruneNorm !== 'l1' && o.pruneNorm !== 'l2')
        throw new EdgeOptError('E_ARGUMENT', `--prune-norm must be l1 or l2, got '${o.pruneNorm}'`);
      const norm = o.pruneNorm as 'l1' | 'l2' | undefined;
      if (o.qatLr !== undefined && o.qatEpochs === undefined) throw new EdgeOptError('E_ARGUMENT', '--qat-lr goes with --qat-epochs');
      if (o.qatEpochs !== undefined && (o.activations !== 'static' || !o.calibration))
        throw new EdgeOptError('E_ARGUMENT', '--qat-epochs needs --activations static and labelled --calibration data');
      if (o.qatEpochs !== undefined && o.budget !== undefined)
        throw new EdgeOptError('E_ARGUMENT', '--qat-epochs does not go with --budget');
      const model = loadModelArg(input);
      if (o.budget !== undefined) return runBudget(model, { ...o, budget: o.budget }, parseTarget(o.target));
      const optimizer = new EdgeModelOptimizer();
      if (sparsity !== undefined || mode === '2:4') {
        optimizer.addOptimization(
          `prune ${mode}${mode === '2:4' ? '' : ` ${sparsity}`}`,
          prune({ sparsity, mode, ...(norm ? { norm } : {}) }),
        );
      }
      if (o.uint8Input) {
        optimizer.addOptimization(
          'uint8 input',
          inputNormalization({
            divisor: num(o.inputDivisor ?? '255', '--input-divisor'),
            ...(o.inputMean ? { mean: numbers(o.inputMean, '--input-mean') } : {}),
            ...(o.inputStd ? { std: numbers(o.inputStd, '--input-std') } : {}),
          }),
        );
      } else if (o.inputMean || o.inputStd) {
        throw new EdgeOptError('E_ARGUMENT', '--input-mean and --input-std go with --uint8-input');
      }
      if (o.quantize || o.granularity || o.activations) {
        const bits = bitsOf(o.quantize ?? 'int8');
        optimizer.addOptimization(
          `quantize int${bits}`,
          quantize({
            bits,
            ...(o.granularity ? { granularity: parseGranularity(o.granularity) } : {}),
            ...(o.activations ? { activations: o.activations as 'dynamic' | 'static' } : {}),
            ...(o.observer ? { observer: parseObserver(o.observer) } : {}),
            ...(o.exclude ? { exclude: o.exclude.split(',').map((name) => name.trim()) } : {}),
            ...(o.qatEpochs !== undefined ? { qat: qatOptions(o) } : {}),
          }),
        );
      }
      const { model: out, report } = await optimizer.optimize(model, {
        target: parseTarget(o.target),
        calibration: o.calibration ? calibrationRows(loadDataSource(o.calibration, { split: 'train' }), o.calibrationRows) : undefined,
        evaluation: o.eval ? loadDataSource(o.eval, { labels: o.evalLabels, needLabels: true }) : undefined,
      });
      const bytes = saveModel(out, o.output, { compress: o.compress === true });
      if (o.json) console.log(JSON.stringify({ output: path.resolve(o.output), bytes, report }, null, 2));
      else console.log(`${formatReport(report)}\nwrote ${o.output} (${bytes.toLocaleString('en-US')} bytes)`);
    });
}

/** --qat-epochs, --qat-lr and --seed: training on every labelled row of the --calibration source. */
function qatOptions(o: Options): QatOptions {
  const epochs = numIn(o.qatEpochs!, '--qat-epochs', 1, 10000, true);
  return {
    data: loadDataSource(o.calibration!, { split: 'train', needLabels: true }),
    epochs,
    ...(o.qatLr !== undefined ? { lr: numIn(o.qatLr, '--qat-lr', 1e-9, 1) } : {}),
    ...(o.seed !== undefined ? { seed: numIn(o.seed, '--seed', 0, 2 ** 32 - 1, true) } : {}),
  };
}

/** The first --calibration-rows rows of the calibration data (all of them without the option). */
function calibrationRows(data: Dataset, rows: string | undefined): Dataset {
  if (rows === undefined) return data;
  const n = numIn(rows, '--calibration-rows', 1, Number.MAX_SAFE_INTEGER);
  if (!Number.isInteger(n)) throw new EdgeOptError('E_ARGUMENT', `--calibration-rows must be a whole number, got '${rows}'`);
  return sliceRows(data, 0, Math.min(n, data.shape[0]));
}
