/**
 * EdgeModelOptimizer: a pipeline of named passes, each reported with model
 * size (as an .eom file) and, given evaluation data, accuracy before/after.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { loadModel, modelFileSize, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { evaluateModel } from './evaluate';
import type { Pass } from './pass';
import { pruneGraph } from './prune';
import { quantizeGraph } from './quantize';

export interface PassReport {
  name: string;
  bytesBefore: number;
  bytesAfter: number;
  accuracyBefore?: number;
  accuracyAfter?: number;
  /** Evaluation rows whose prediction changed in this pass. */
  changedPredictions?: number;
}

export interface OptimizeReport {
  passes: PassReport[];
  bytesBefore: number;
  bytesAfter: number;
  compression: number;
}

export class EdgeModelOptimizer {
  private readonly passes: Array<{ name: string; pass: Pass }> = [];

  addOptimization(name: string, pass: Pass): this {
    if (typeof name !== 'string' || !name) throw new EdgeOptError('E_ARGUMENT', 'addOptimization: name must be a non-empty string');
    if (typeof pass !== 'function') throw new EdgeOptError('E_ARGUMENT', `addOptimization('${name}'): pass must be a function (graph, ctx) => graph`);
    this.passes.push({ name, pass });
    return this;
  }

  async optimize(model: ModelSource, options: { calibration?: Dataset; evaluation?: Dataset } = {}): Promise<{ model: Graph; report: OptimizeReport }> {
    let graph = loadModel(model);
    const first = modelFileSize(graph);
    let before = options.evaluation ? evaluateModel(graph, options.evaluation) : undefined;
    const reports: PassReport[] = [];
    for (const { name, pass } of this.passes) {
      const bytesBefore = modelFileSize(graph);
      const next = loadModel(await pass(graph, { ...options }));
      const report: PassReport = { name, bytesBefore, bytesAfter: modelFileSize(next) };
      if (options.evaluation && before) {
        const after = evaluateModel(next, options.evaluation);
        report.accuracyBefore = before.accuracy;
        report.accuracyAfter = after.accuracy;
        report.changedPredictions = after.predictions.reduce((c, p, i) => c + (p !== before!.predictions[i] ? 1 : 0), 0);
        before = after;
      }
      reports.push(report);
      graph = next;
    }
    const last = modelFileSize(graph);
    return { model: graph, report: { passes: reports, bytesBefore: first, bytesAfter: last, compression: first / last } };
  }

  /** The seed's direct method: symmetric per-channel weights of `bits` bits. */
  quantizeModel(model: ModelSource, bits = 8): Graph {
    return quantizeGraph(loadModel(model), { bits });
  }

  /** The seed's direct method: per-layer unstructured magnitude pruning. */
  pruneModel(model: ModelSource, sparsity: number): Graph {
    return pruneGraph(loadModel(model), { sparsity });
  }
}
