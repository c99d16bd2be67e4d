/**
 * Trainable views of a Graph. Parameters are copied out of the graph, updated in place by an
 * optimizer, and written back into a new graph by toGraph(). A chain of Dense layers (ReLU fused
 * or as Relu nodes, an optional final Softmax that training skips: losses take logits) keeps its
 * own short path (DenseChain, below); any other graph of the supported ops is a GraphNetwork.
 */
import { EdgeOptError } from '../errors';
import { cloneGraph, denseBias, denseWeight, type Graph } from '../model/graph';
import { GraphNetwork } from './graph-network';
import { matmulABt, matmulAtB, sumRows, transpose } from './linalg';

/** One trainable tensor (a weight [out, in] or a bias [out]). */
export interface Param {
  /** The tensor name in the graph ('fc1.weight'). */
  name: string;
  shape: number[];
  data: Float32Array;
  /** Pruning keep-mask: entries with 0 stay exactly zero. */
  mask?: Uint8Array;
}

interface Layer {
  weight: Param;
  bias: Param | null;
  inFeatures: number;
  outFeatures: number;
  relu: boolean;
}

/** What forward() keeps for backward() (each implementation keeps more). */
export interface ForwardCache {
  rows: number;
}

interface ChainCache extends ForwardCache {
  inputs: Float32Array[];
  outputs: Float32Array[];
}

/** What the trainer, fine-tuning, distillation and the federated client train. */
export interface Network {
  /** Trained tensors (weights, biases, BN scales and shifts), in graph order. */
  readonly params: Param[];
  /** Tensors that travel with the model but are not trained by gradients (BN running statistics). */
  readonly buffers: Param[];
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Per-image input dims ([C, H, W] for images). */
  readonly inputDims?: readonly number[];
  /** Logits [rows, outFeatures]; `training` (default true): BN batch statistics, active Dropout. */
  forward(x: Float32Array, rows: number, training?: boolean): { logits: Float32Array; cache: ForwardCache };
  /** Gradients of every param (same order as `params`) given dLoss/dLogits. Masked entries get 0. */
  backward(cache: ForwardCache, gradLogits: Float32Array): Float32Array[];
  /** A new graph with the trained values (masks kept); the source graph is untouched. */
  toGraph(): Graph;
  /** Zeroes masked entries (after an optimizer step, so momentum or decay cannot revive them). */
  applyMasks(): void;
}

export const Network = {
  /** Copies the trainable tensors of `graph`; the graph itself is never modified. */
  fromGraph(graph: Graph, options: { seed?: number } = {}): Network {
    if (graph.inputs.some((i) => i.dtype === 'uint8'))
      throw new EdgeOptError(
        'E_UNSUPPORTED_OP',
        `train: model '${graph.name}' takes raw uint8 input (its normalization is folded into the first layer); train the float model, then fold`,
      );
    const chain = graph.nodes.every((n, i) => n.op === 'Dense' || n.op === 'Relu' || (n.op === 'Softmax' && i === graph.nodes.length - 1));
    return chain ? DenseChain.fromGraph(graph) : new GraphNetwork(graph, options);
  },
};

class DenseChain implements Network {
  readonly params: Param[];
  readonly buffers: Param[] = [];
  private readonly layers: Layer[];

  private constructor(
    private readonly graph: Graph,
    layers: Layer[],
  ) {
    this.layers = layers;
    this.params = layers.flatMap((l) => (l.bias ? [l.weight, l.bias] : [l.weight]));
  }

  static fromGraph(graph: Graph): DenseChain {
    const layers: Layer[] = [];
    const outputOf = new Map<string, Layer>();
    graph.nodes.forEach((node, i) => {
      const last = i === graph.nodes.length - 1;
      if (node.op === 'Dense') {
        const w = denseWeight(graph, node);
        const [out, inF] = w.shape as number[];
        if (layers.length && layers[layers.length - 1].outFeatures !== inF) {
          throw new EdgeOptError(
            'E_SHAPE',
            `train: layer '${node.name}' takes ${inF} inputs, the previous layer gives ${layers[layers.length - 1].outFeatures}`,
          );
        }
        const bias = denseBias(graph, node);
        const layer: Layer = {
          weight: {
            name: w.name,
            shape: [out, inF],
            data: Float32Array.from(w.data as Float32Array),
            mask: w.mask ? Uint8Array.from(w.mask) : undefined,
          },
          bias: bias ? { name: node.inputs[2], shape: [out], data: Float32Array.from(bias) } : null,
          inFeatures: inF,
          outFeatures: out,
          relu: node.attrs.activation === 'relu',
        };
        layers.push(layer);
        outputOf.set(node.outputs[0], layer);
      } else if (node.op === 'Relu' && outputOf.has(node.inputs[0]) && layers[layers.length - 1] === outputOf.get(node.inputs[0])) {
        layers[layers.length - 1].relu = true;
        outputOf.set(node.outputs[0], layers[layers.length - 1]);
      } else if (!(node.op === 'Softmax' && last)) {
        const hint = node.op === 'QDense' ? ' (train before quantizing)' : '';
        throw new EdgeOptError(
          'E_UNSUPPORTED_OP',
          `train: model '${graph.name}' node '${node.name}' (${node.op}) is not trainable${hint}; a chain of Dense/Relu layers is`,
        );
      }
    });
    if (!layers.length) throw new EdgeOptError('E_ARGUMENT', `train: model '${graph.name}' has no Dense layer`);
    return new DenseChain(graph, layers);
  }

  get inFeatures(): number {
    return this.layers[0].inFeatures;
  }

  get outFeatures(): number {
    return this.layers[this.layers.length - 1].outFeatures;
  }

  /** Logits [rows, outFeatures] of x [rows, inFeatures]. */
  forward(x: Float32Array, rows: number): { logits: Float32Array; cache: ChainCache } {
    const cache: ChainCache = { rows, inputs: [], outputs: [] };
    let a = x;
    for (const l of this.layers) {
      cache.inputs.push(a);
      const z = matmulABt(a, rows, l.inFeatures, l.weight.data, l.outFeatures);
      const b = l.bias?.data;
      for (let r = 0; r < rows; r++) {
        const o = r * l.outFeatures;
        for (let j = 0; j < l.outFeatures; j++) {
          const v = b ? z[o + j] + b[j] : z[o + j];
          z[o + j] = l.relu && v < 0 ? 0 : v;
        }
      }
      cache.outputs.push(z);
      a = z;
    }
    return { logits: a, cache };
  }

  backward(forward: ForwardCache, gradLogits: Float32Array): Float32Array[] {
    const cache = forward as ChainCache;
    const grads: Float32Array[] = [];
    const rows = cache.rows;
    let g = gradLogits;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i];
      if (l.relu) {
        const y = cache.outputs[i];
        g = g.map((v, j) => (y[j] > 0 ? v : 0));
      }
      const gw = matmulAtB(g, rows, l.outFeatures, cache.inputs[i], l.inFeatures);
      const mask = l.weight.mask;
      if (mask) for (let j = 0; j < gw.length; j++) if (!mask[j]) gw[j] = 0;
      if (l.bias) grads.push(sumRows(g, rows, l.outFeatures));
      grads.push(gw);
      // dX = dZ · W: gemm with the transposed weight; the first layer's input needs no gradient.
      if (i > 0) g = matmulABt(g, rows, l.outFeatures, transpose(l.weight.data, l.outFeatures, l.inFeatures), l.inFeatures);
    }
    return grads.reverse();
  }

  toGraph(): Graph {
    const g = cloneGraph(this.graph);
    for (const p of this.params) {
      g.tensors[p.name] = { ...g.tensors[p.name], data: Float32Array.from(p.data), mask: p.mask ? Uint8Array.from(p.mask) : undefined };
      if (!p.mask) delete g.tensors[p.name].mask;
    }
    return g;
  }

  applyMasks(): void {
    for (const p of this.params) if (p.mask) for (let j = 0; j < p.data.length; j++) if (!p.mask[j]) p.data[j] = 0;
  }
}
