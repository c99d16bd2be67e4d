/**
 * EdgeModelOptimizer: a pipeline of named passes. Every pass is reported with
 * per-layer storage, model bytes (as an .eom file) and parameters, and, given
 * evaluation data, accuracy before/after, changed predictions and logit error
 * against the original model; the optimized model is checked against a target.
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import { loadModel, modelFileSize, type ModelSource } from '../model';
import type { Graph } from '../model/graph';
import { evaluateModel } from './evaluate';
import type { Pass } from './pass';
import { pruneGraph, type PruneOptions } from './prune';
import { quantizeGraph } from './quantize';
import { type AccuracyReport, compareTo, layerReports, type LayerReport } from './report';
import { checkTarget, type Target, type TargetIssue, targetName } from './target';

export interface PassReport {
  name: string;
  bytesBefore: number;
  bytesAfter: number;
  paramsAfter: number;
  layers: LayerReport[];
  /** With evaluation data: the model after this pass, against the original model. */
  after?: AccuracyReport;
}

export interface OptimizeReport {
  target: string;
  /** Why layers will not fit the target (empty when everything fits). */
  targetIssues: TargetIssue[];
  bytesBefore: number;
  bytesAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  compression: number;
  layersBefore: LayerReport[];
  /** With evaluation data: the original model's accuracy. */
  accuracyBefore?: number;
  passes: PassReport[];
}

export interface OptimizeOptions {
  target?: Target;
  calibration?: Dataset;
  evaluation?: Dataset;
}

const params = (layers: LayerReport[]) => layers.reduce((s, l) => s + l.params, 0);

export class EdgeModelOptimizer {
  private readonly passes: Array<{ name: string; pass: Pass }> = [];

  addOptimization(name: string, pass: Pass): this {
    if (typeof name !== 'string' || !name) throw new EdgeOptError('E_ARGUMENT', 'addOptimization: name must be a non-empty string');
    if (typeof pass !== 'function')
      throw new EdgeOptError('E_ARGUMENT', `addOptimization('${name}'): pass must be a function (graph, ctx) => graph`);
    this.passes.push({ name, pass });
    return this;
  }

  async optimize(model: ModelSource, options: OptimizeOptions = {}): Promise<{ model: Graph; report: OptimizeReport }> {
    const original = loadModel(model);
    const reference = options.evaluation ? evaluateModel(original, options.evaluation) : undefined;
    const layersBefore = layerReports(original);
    const passes: PassReport[] = [];
    let graph = original;
    for (const { name, pass } of this.passes) {
      const bytesBefore = modelFileSize(graph);
      let next: Graph;
      try {
        next = loadModel(await pass(graph, { ...options }));
      } catch (err) {
        if (err instanceof EdgeOptError) throw new EdgeOptError(err.code, `pass '${name}': ${err.message}`, { cause: err });
        throw err;
      }
      const layers = layerReports(next);
      const report: PassReport = { name, bytesBefore, bytesAfter: modelFileSize(next), paramsAfter: params(layers), layers };
      if (reference) report.after = compareTo(reference, evaluateModel(next, options.evaluation!));
      passes.push(report);
      graph = next;
    }
    const bytesBefore = modelFileSize(original);
    const bytesAfter = modelFileSize(graph);
    return {
      model: graph,
      report: {
        target: targetName(options.target),
        targetIssues: checkTarget(graph, options.target),
        bytesBefore,
        bytesAfter,
        paramsBefore: params(layersBefore),
        paramsAfter: params(layerReports(graph)),
        compression: bytesBefore / bytesAfter,
        layersBefore,
        ...(reference ? { accuracyBefore: reference.accuracy } : {}),
        passes,
      },
    };
  }

  /** The seed's direct method: symmetric per-channel weights of `bits` bits. */
  quantizeModel(model: ModelSource, bits = 8): Graph {
    return quantizeGraph(loadModel(model), { bits });
  }

  /** The seed's direct method: per-layer unstructured magnitude pruning. */
  pruneModel(model: ModelSource, sparsity: number, options: Omit<PruneOptions, 'sparsity'> = {}): Graph {
    return pruneGraph(loadModel(model), { ...options, sparsity });
  }
}
