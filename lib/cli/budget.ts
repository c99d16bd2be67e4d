/**
 * `edgeopt optimize <model> --budget <points>`: the budget search from the command line,
 * with a progress bar, Ctrl-C (nothing is written when the search is stopped), the report
 * as a table (float32, uniform int8, best uniform and chosen side by side), JSON and SVG.
 */
import * as cliProgress from 'cli-progress';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataSource } from '../data/source';
import { sliceRows, type Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { saveModel } from '../model';
import type { Graph } from '../model/graph';
import { isCnn } from '../optimizer/cnn-layers';
import { autoOptimize, type AutoOptimizeProgress, type AutoOptimizeReport, type ModelSummary } from '../optimizer/auto-optimize';
import { LatencyTable } from '../optimizer/latency';
import { paretoSvg } from '../optimizer/pareto-svg';
import type { Target } from '../optimizer/target';
import { writeFileAtomic } from '../util/atomic-write';
import { checkOutputPath, numIn } from './options';

export interface BudgetCliOptions {
  output: string;
  budget: string;
  objective?: string;
  validation?: string;
  validationRows?: string;
  fineTune?: string;
  report?: string;
  seed?: string;
  latency?: boolean;
  latencyTable?: string;
  eval?: string;
  evalLabels?: string;
  calibration?: string;
  activations?: string;
  compress?: boolean;
  json?: boolean;
}

/** Validation rows (and, from a folder, the training rows before them for fine-tuning). */
export function loadSplits(o: Pick<BudgetCliOptions, 'validation' | 'validationRows' | 'fineTune'>): {
  validation: Dataset;
  fineTuneData?: Dataset;
} {
  if (!o.validation)
    throw new EdgeOptError('E_ARGUMENT', '--budget needs --validation <dir-or-npy> (data from training, never the test split)');
  const isDir = fs.existsSync(o.validation) && fs.statSync(o.validation).isDirectory();
  if (!isDir) {
    if (o.validationRows !== undefined) throw new EdgeOptError('E_ARGUMENT', '--validation-rows applies to a folder; a file is used whole');
    if (o.fineTune !== undefined)
      throw new EdgeOptError(
        'E_ARGUMENT',
        '--fine-tune needs --validation <folder> (it trains on the train rows before the validation rows)',
      );
    return { validation: loadDataSource(o.validation, { needLabels: true }) };
  }
  const train = loadDataSource(o.validation, { split: 'train' });
  const n = train.shape[0];
  if (n < 2)
    throw new EdgeOptError(
      'E_ARGUMENT',
      `--validation ${o.validation}: the train split has ${n} rows; validation needs at least 1 more than it`,
    );
  const rows = o.validationRows === undefined ? Math.min(1000, n - 1) : numIn(o.validationRows, '--validation-rows', 1, n - 1, true);
  return { validation: sliceRows(train, n - rows, n), fineTuneData: sliceRows(train, 0, n - rows) };
}

export function progressBar(enabled: boolean): {
  update(p: Pick<AutoOptimizeProgress, 'phase' | 'done' | 'total' | 'message'>): void;
  stop(): void;
} {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: 'budget {phase} [{bar}] {value}/{total} {status}', hideCursor: true, stream: process.stderr, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let phase = '';
  bar.start(1, 0, { phase: '', status: '' });
  return {
    update(p) {
      if (p.phase !== phase) {
        phase = p.phase;
        bar.setTotal(p.total);
      }
      bar.update(p.done, { phase: p.phase.padEnd(11), status: p.message ?? '' });
    },
    stop: () => bar.stop(),
  };
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(2)} %`);
const us = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${x.toFixed(2)} us`);

export function formatBudgetReport(r: AutoOptimizeReport): string {
  const rows: Array<[string, ModelSummary | null]> = [
    ['float32', r.reference],
    ['uniform int8', r.uniformInt8],
    [`best uniform (${r.bestUniform ? Object.values(r.bestUniform.description)[0] : 'none'})`, r.bestUniform],
    ['chosen (per layer)', r.chosen],
  ];
  const head = ['model', 'bytes', 'vs fp32', 'val acc', 'drop', 'test acc', 'drop', 'est. latency', 'measured'];
  const body = rows
    .filter(([, s]) => s)
    .map(([name, s]) => [
      name,
      s!.bytes.toLocaleString('en-US'),
      `${(r.reference.bytes / s!.bytes).toFixed(2)}x`,
      pct(s!.validationAccuracy),
      s!.accuracyDrop.toFixed(2),
      pct(s!.testAccuracy),
      s!.testDrop === undefined ? '-' : s!.testDrop.toFixed(2),
      us(s!.latencyUs),
      us(s!.measuredLatencyUs),
    ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const shares = r.sensitivity.layers
    .map(
      (l) => `${l.node} [${l.shape.join(', ')}]${l.latencyShare !== undefined ? ` ${(l.latencyShare * 100).toFixed(0)} % of latency` : ''}`,
    )
    .join(', ');
  const chosenKeys = r.points[r.chosen.point].settings;
  const chosenRows = Object.keys(r.chosen.settings).map((node) => {
    const alone = r.sensitivity.layers.find((l) => l.node === node)?.candidates.find((c) => c.key === chosenKeys[node]);
    const detail = alone
      ? ` (this layer alone: drop ${alone.accuracyDrop.toFixed(2)} points, logit error ${alone.logitError.toExponential(1)})`
      : '';
    return `  ${node.padEnd(8)} ${r.chosen.description[node]}${detail}`;
  });
  const unit = r.objective === 'size' ? 'smaller' : 'faster';
  return [
    `budget search: ${r.model}, objective ${r.objective}, at most ${r.maxAccuracyDrop} points below float32 on ${r.validationRows} validation rows (seed ${r.seed}${r.fineTune ? `, fine-tuning ${r.fineTune.epochs} epoch(s) on ${r.fineTune.rows} rows` : ''})`,
    `layers: ${shares}`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    r.gainOverUniform !== null
      ? `chosen is ${r.gainOverUniform.toFixed(2)}x ${unit} than the best uniform setting within the budget`
      : 'no uniform setting is within the budget',
    'chosen settings:',
    ...chosenRows,
    `${r.verifications} models verified in ${r.seconds.toFixed(1)} s; 'drop' is in points below float32; test rows are never seen by the search`,
  ].join('\n');
}

/** Rows a CNN's int8 layers are calibrated on when --calibration is not given: the last training rows before the validation rows. */
const CALIBRATION_ROWS = 256;

export function defaultCalibration(model: Graph, train: Dataset | undefined): Dataset | undefined {
  if (!isCnn(model)) return undefined;
  if (!train)
    throw new EdgeOptError('E_ARGUMENT', `${model.name} is a CNN: its int8 layers need --calibration <data>, or --validation <folder>`);
  const n = train.shape[0];
  return sliceRows(train, Math.max(0, n - CALIBRATION_ROWS), n);
}

export async function runBudget(
  model: Graph,
  o: BudgetCliOptions & { quantize?: string; granularity?: string; prune?: string },
  target: Target | undefined,
): Promise<void> {
  if (o.quantize || o.granularity || o.prune !== undefined)
    throw new EdgeOptError(
      'E_ARGUMENT',
      '--budget chooses bits, granularity and pruning per layer itself: drop --quantize, --granularity and --prune',
    );
  const maxAccuracyDrop = numIn(o.budget, '--budget', 0, 100);
  const objective = o.objective ?? 'size';
  if (objective !== 'size' && objective !== 'latency')
    throw new EdgeOptError('E_ARGUMENT', `--objective must be size or latency, got '${objective}'`);
  if (o.report && !/\.(svg|json)$/i.test(o.report))
    throw new EdgeOptError('E_ARGUMENT', `--report must name an .svg or .json file, got '${o.report}'`);
  if (o.report) checkOutputPath(o.report, '--report');
  if (o.latencyTable) checkOutputPath(o.latencyTable, '--latency-table');
  const seed = o.seed === undefined ? undefined : numIn(o.seed, '--seed', 0, 2 ** 32 - 1, true);
  const { validation, fineTuneData } = loadSplits(o);
  const epochs = o.fineTune === undefined ? undefined : numIn(o.fineTune, '--fine-tune', 1, 1000, true);
  let latency: LatencyTable | false | undefined = o.latency === false ? false : undefined;
  if (o.latencyTable && latency !== false && fs.existsSync(o.latencyTable)) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(o.latencyTable, 'utf8'));
    } catch (err) {
      throw new EdgeOptError('E_FORMAT', `${o.latencyTable}: not JSON (${(err as Error).message})`);
    }
    latency = LatencyTable.fromJSON(json as Parameters<typeof LatencyTable.fromJSON>[0]);
  } else if (o.latencyTable && latency !== false) latency = new LatencyTable({ seed });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = progressBar(!o.json);
  if (!o.json && !process.stderr.isTTY)
    console.error(`budget search on ${model.name} started (Ctrl-C stops it; nothing is written until it ends)`);
  let result: Awaited<ReturnType<typeof autoOptimize>>;
  try {
    result = await autoOptimize(model, {
      validation,
      maxAccuracyDrop,
      objective,
      target,
      seed,
      latency,
      fineTune: epochs === undefined ? undefined : { data: fineTuneData!, epochs },
      test: o.eval ? loadDataSource(o.eval, { labels: o.evalLabels, needLabels: true }) : undefined,
      calibration: o.calibration ? loadDataSource(o.calibration, { split: 'train' }) : defaultCalibration(model, fineTuneData),
      activations: o.activations as 'dynamic' | 'static' | undefined,
      signal: controller.signal,
      onProgress: (p) => bar.update(p),
    });
  } catch (err) {
    if ((err as Error)?.name !== 'AbortError') throw err;
    console.error('edgeopt: stopped; nothing was written');
    process.exitCode = 130;
    return;
  } finally {
    bar.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const { model: out, report } = result;
  const bytes = saveModel(out, o.output, { compress: o.compress === true });
  const written = [o.output];
  if (o.report) {
    const json = o.report.replace(/\.svg$/i, '.json');
    writeFileAtomic(json, Buffer.from(JSON.stringify(report, null, 2)));
    written.push(json);
    if (/\.svg$/i.test(o.report)) {
      writeFileAtomic(o.report, Buffer.from(paretoSvg(report)));
      written.push(o.report);
    }
  }
  if (o.latencyTable && latency instanceof LatencyTable) {
    writeFileAtomic(o.latencyTable, Buffer.from(JSON.stringify(latency.toJSON())));
    written.push(o.latencyTable);
  }
  if (o.json) return console.log(JSON.stringify({ output: path.resolve(o.output), bytes, report }, null, 2));
  console.log(`${formatBudgetReport(report)}\nwrote ${written.join(', ')}`);
}
