/**
 * Weight quantization: Dense -> QDense with int8-stored symmetric weights
 * (per output channel by default, or per tensor), `bits` 2..8. Activations are
 * quantized dynamically per row at run time. Pruned zeros stay zero
 * (round(0 / s) = 0).
 */
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import { cloneGraph, denseWeight, type Graph } from '../model/graph';
import type { Pass } from './pass';

export interface QuantizeOptions {
  bits?: number;
  granularity?: 'channel' | 'tensor';
}

export function quantizeGraph(graph: Graph, options: QuantizeOptions = {}): Graph {
  const bits = options.bits ?? 8;
  const granularity = options.granularity ?? 'channel';
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new EdgeOptError('E_ARGUMENT', `quantize: bits must be an integer in 2..8, got ${bits}`);
  if (granularity !== 'channel' && granularity !== 'tensor') {
    throw new EdgeOptError('E_ARGUMENT', `quantize: granularity must be 'channel' or 'tensor', got '${String(granularity)}'`);
  }
  const g = cloneGraph(graph);
  const k = kernels();
  for (const node of g.nodes) {
    if (node.op !== 'Dense') continue;
    const w = denseWeight(g, node);
    const [n, kIn] = w.shape as number[];
    const { q, scales } = k.quantizeSymmetric(w.data as Float32Array, n, kIn, bits, granularity === 'channel');
    g.tensors[w.name] = { ...w, dtype: 'int8', data: q, quant: { bits, scheme: 'symmetric', axis: 0, scale: scales } };
    node.op = 'QDense';
    node.attrs = { ...node.attrs, activationQuant: 'dynamic' };
  }
  g.metadata.quantization = `int${bits} symmetric per-${granularity} weights, dynamic per-row uint8 activations`;
  return g;
}

export function quantize(options: QuantizeOptions = {}): Pass {
  return (graph) => quantizeGraph(graph, options);
}
