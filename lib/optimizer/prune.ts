/**
 * Magnitude pruning, unstructured per layer: exactly floor(n * sparsity)
 * weights of each Dense layer are zeroed (smallest |w|, ties by index) and a
 * keep-mask is recorded so later passes keep them at zero.
 */
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import { cloneGraph, denseWeight, type Graph } from '../model/graph';
import type { Pass } from './pass';

export interface PruneOptions {
  sparsity: number;
}

export function pruneGraph(graph: Graph, options: PruneOptions): Graph {
  const { sparsity } = options;
  if (typeof sparsity !== 'number' || !(sparsity >= 0 && sparsity < 1)) {
    throw new EdgeOptError('E_ARGUMENT', `prune: sparsity must be in [0, 1), got ${String(sparsity)}`);
  }
  const g = cloneGraph(graph);
  const k = kernels();
  for (const node of g.nodes) {
    if (node.op !== 'Dense') {
      if (node.op === 'QDense') throw new EdgeOptError('E_ARGUMENT', `prune: node '${node.name}' is already quantized; prune before quantizing`);
      continue;
    }
    const w = denseWeight(g, node);
    const values = w.data as Float32Array;
    const { keep } = k.pruneMask(values, Math.floor(values.length * sparsity));
    if (w.mask) for (let i = 0; i < keep.length; i++) keep[i] &= w.mask[i];
    const pruned = values.map((v, i) => (keep[i] ? v : 0));
    g.tensors[w.name] = { ...w, data: pruned, mask: keep };
  }
  g.metadata.pruning = `unstructured magnitude, ${sparsity} per layer`;
  return g;
}

export function prune(options: PruneOptions): Pass {
  return (graph) => pruneGraph(graph, options);
}
