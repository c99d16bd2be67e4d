/** Accuracy of a model on labelled data, through the inference engine. */
import { modelRows, type Dataset } from '../data/dataset';
import { EdgeInferenceEngine, type Device } from '../engine/engine';
import { EdgeOptError } from '../errors';
import type { Graph } from '../model/graph';

export interface Evaluation {
  accuracy: number;
  predictions: Int32Array;
  logits: Float32Array;
}

export function argmaxRows(x: Float32Array, rows: number): Int32Array {
  const n = x.length / rows;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < n; j++) if (x[r * n + j] > x[r * n + best]) best = j;
    out[r] = best;
  }
  return out;
}

export function evaluateModel(model: Graph, ds: Dataset, options: { device?: Device } = {}): Evaluation {
  if (!ds.labels) throw new EdgeOptError('E_ARGUMENT', 'evaluation data needs labels');
  const engine = new EdgeInferenceEngine({ device: options.device ?? 'auto' });
  try {
    engine.loadModelSync('eval', model);
    const rows = ds.shape[0];
    // Rows may come as images ([N, 28, 28]) for a model that takes [N, 784]: only the row size must agree.
    const { data, shape } = engine.inferSync('eval', modelRows(ds, model));
    if (shape[0] !== rows)
      throw new EdgeOptError(
        'E_SHAPE',
        `evaluation data has ${rows} rows of ${ds.data.length / rows} values; the model reads ${ds.data.length / shape[0]} per row`,
      );
    const predictions = argmaxRows(data, rows);
    let correct = 0;
    for (let i = 0; i < rows; i++) if (predictions[i] === ds.labels[i]) correct++;
    return { accuracy: correct / rows, predictions, logits: data };
  } finally {
    engine.dispose();
  }
}
