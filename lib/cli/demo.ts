/**
 * The main job (`npm start`, `edgeopt demo`): the bundled PyTorch-trained MNIST
 * MLP, quantized to int8 per channel, and the bundled CNN (mobilenet-mini, fp32
 * and static int8 calibrated on 500 train digits), measured on the 2000 bundled
 * test digits: file size, top-1 accuracy and latency, native vs TypeScript (the
 * int8 CNN natively only: its TS twin is the slow reference).
 */
import { backendInfo } from '../backends';
import { defaultCnn, defaultModel, mnistTest, mnistTrain } from '../data/bundled';
import { sliceRows, type Dataset } from '../data/dataset';
import { EdgeInferenceEngine, type Device } from '../engine/engine';
import type { Graph } from '../model/graph';
import { modelFileSize } from '../model';
import { argmaxRows } from '../optimizer/evaluate';
import { quantizeGraph } from '../optimizer/quantize';
import { timeSync } from '../util/timing';

export interface DemoRow {
  model: string;
  backend: string;
  fileBytes: number;
  accuracy: number;
  /** Test rows whose prediction differs from fp32 on the same backend. */
  changedVsFp32: number;
  /** Median latency of one single-row inference. */
  latencyBatch1Us: number;
  /** Rows per second inferring the whole test split as one batch. */
  throughputRowsPerSec: number;
}

export interface DemoResult {
  model: string;
  testRows: number;
  backend: ReturnType<typeof backendInfo>;
  rows: DemoRow[];
}

function measure(
  label: string,
  graph: Graph,
  device: Device,
  backend: string,
  test: Dataset,
  fp32Predictions?: Int32Array,
): DemoRow & { predictions: Int32Array } {
  const engine = new EdgeInferenceEngine({ device });
  engine.loadModelSync(label, graph);
  const rows = test.shape[0];
  // Plain Float32Arrays: rows of 784 values fit both the MLP's [784] and the CNN's [1, 28, 28] input.
  const all = engine.inferSync(label, test.data);
  const predictions = argmaxRows(all.data, rows);
  let correct = 0;
  let changed = 0;
  for (let i = 0; i < rows; i++) {
    if (predictions[i] === test.labels![i]) correct++;
    if (fp32Predictions && predictions[i] !== fp32Predictions[i]) changed++;
  }
  const one = sliceRows(test, 0, 1);
  const batch1 = timeSync(() => engine.inferSync(label, one.data), { minMs: 300 });
  const full = timeSync(() => engine.inferSync(label, test.data), { minRuns: 3, minMs: 300 });
  engine.dispose();
  return {
    model: label,
    backend,
    fileBytes: modelFileSize(graph),
    accuracy: correct / rows,
    changedVsFp32: changed,
    latencyBatch1Us: batch1.medianMs * 1000,
    throughputRowsPerSec: rows / (full.medianMs / 1000),
    predictions,
  };
}

export function runDemo(): DemoResult {
  const info = backendInfo();
  const fp32 = defaultModel();
  const int8 = quantizeGraph(fp32, { bits: 8, granularity: 'channel' });
  const test = mnistTest();
  const backends: Array<[Device, string]> = info.native
    ? [
        ['cpu', `native (${info.kernel})`],
        ['ts', 'typescript'],
      ]
    : [['ts', 'typescript']];
  const rows: DemoRow[] = [];
  const cnn = defaultCnn();
  const cnnInt8 = info.native ? quantizeGraph(cnn, { activations: 'static', calibration: sliceRows(mnistTrain(), 0, 500) }) : undefined;
  for (const [device, backend] of backends) {
    const { predictions, ...f } = measure('fp32', fp32, device, backend, test);
    const { predictions: _, ...q } = measure('int8 per-channel', int8, device, backend, test, predictions);
    const { predictions: cnnPredictions, ...c } = measure(`${cnn.name} fp32`, cnn, device, backend, test);
    rows.push(f, q, c);
    if (cnnInt8 && device === 'cpu') {
      const { predictions: _q, ...ci } = measure(`${cnn.name} int8 static`, cnnInt8, device, backend, test, cnnPredictions);
      rows.push(ci);
    }
  }
  return { model: fp32.name, testRows: test.shape[0], backend: info, rows };
}

export function formatDemo(r: DemoResult): string {
  const head = ['model', 'backend', 'file bytes', 'top-1 acc', 'changed', 'latency b=1', `rows/s b=${r.testRows}`];
  const body = r.rows.map((x) => [
    x.model,
    x.backend,
    x.fileBytes.toLocaleString('en-US'),
    `${(x.accuracy * 100).toFixed(2)} %`,
    x.model.endsWith('fp32') ? '-' : String(x.changedVsFp32),
    `${x.latencyBatch1Us.toFixed(1)} us`,
    Math.round(x.throughputRowsPerSec).toLocaleString('en-US'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const native = r.backend.native
    ? `native kernels: ${r.backend.kernel} (cpu: ${r.backend.isa.join(' ') || 'baseline'})`
    : `TypeScript only: ${r.backend.reason}`;
  return [
    `edgeopt demo: ${r.model} (int8 and fp32) and the CNN mobilenet-mini-1x28x28 (fp32 and int8) on ${r.testRows} MNIST test digits`,
    native,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    "'changed' counts test rows whose prediction differs from fp32 on the same backend.",
    'The int8 CNN is calibrated on 500 train digits (static per-tensor activations, per-channel weights); it runs natively only.',
  ].join('\n');
}
