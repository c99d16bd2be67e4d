/**
 * A trainable view of any graph of the supported ops (a DAG: residual branches, Concat, several
 * consumers of a tensor): forward in NCHW over a batch keeping every activation, backward in
 * reverse order summing the gradients of tensors read twice. The loss reads the model's output;
 * a final Softmax is skipped (losses take logits), as for Dense chains.
 */
import { EdgeOptError } from '../errors';
import { cloneGraph, type Graph, type GraphNode } from '../model/graph';
import { inferShapes, type ValueShape } from '../model/shapes';
import { batchNormOp } from './graph/batch-norm';
import { convOp } from './graph/conv';
import { groupNormOp } from './graph/group-norm';
import { concatOp, denseOp, transposeOp, viewOp } from './graph/layers';
import type { Forward, TrainContext, TrainOp } from './graph/op';
import { binaryOp, dropoutOp, UNARY_OPS, unaryOp } from './graph/pointwise';
import { globalAveragePoolOp, poolOp } from './graph/pool';
import type { ForwardCache, Network, Param } from './network';
import { seededRandom } from './random';

interface GraphCache extends ForwardCache {
  values: Map<string, Float32Array>;
  forwards: Forward[];
}

function compileOp(g: Graph, node: GraphNode, shapes: Map<string, ValueShape>): TrainOp {
  const x = shapes.get(node.inputs[0]);
  if (!x && node.op !== 'Add' && node.op !== 'Sub' && node.op !== 'Mul' && node.op !== 'Div')
    throw new EdgeOptError('E_UNSUPPORTED_OP', `train: node '${node.name}' (${node.op}) reads a constant as its data input`);
  switch (node.op) {
    case 'Conv':
      return convOp(g, node, x!);
    case 'Dense':
      return denseOp(g, node);
    case 'BatchNormalization':
      return batchNormOp(g, node, x!);
    case 'GroupNormalization':
      return groupNormOp(g, node, x!);
    case 'MaxPool':
    case 'AveragePool':
      return poolOp(node, x!);
    case 'GlobalAveragePool':
      return globalAveragePoolOp(node, x!);
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return binaryOp(g, node, shapes);
    case 'Concat':
      return concatOp(g, node, shapes);
    case 'Flatten':
    case 'Reshape':
      return viewOp(node);
    case 'Transpose':
      return transposeOp(node, x!);
    case 'Dropout':
      return dropoutOp(node);
    default:
      if (UNARY_OPS.has(node.op)) return unaryOp(node);
      throw new EdgeOptError(
        'E_UNSUPPORTED_OP',
        `train: model '${g.name}' node '${node.name}' (${node.op}) is not trainable${node.op === 'QDense' ? ' (train before quantizing)' : ''}`,
      );
  }
}

export class GraphNetwork implements Network {
  readonly params: Param[];
  readonly buffers: Param[];
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly inputDims: readonly number[];
  private readonly ops: TrainOp[];
  private readonly input: string;
  private readonly logits: string;
  private readonly random: () => number;

  constructor(
    private readonly graph: Graph,
    options: {
      seed?: number;
      /** Replaces each compiled op (quantization-aware training wraps ops in fake quantization). */
      wrapOp?: (op: TrainOp) => TrainOp;
    } = {},
  ) {
    if (graph.inputs.length !== 1 || graph.outputs.length !== 1)
      throw new EdgeOptError(
        'E_UNSUPPORTED_OP',
        `train: model '${graph.name}' has ${graph.inputs.length} inputs and ${graph.outputs.length} outputs; training takes one of each`,
      );
    const shapes = inferShapes(graph);
    let nodes = graph.nodes;
    const last = nodes[nodes.length - 1];
    this.logits = graph.outputs[0];
    if (last?.op === 'Softmax' && last.outputs[0] === this.logits) {
      nodes = nodes.slice(0, -1);
      this.logits = last.inputs[0];
    }
    this.ops = nodes.map((node) => {
      const op = compileOp(graph, node, shapes);
      return options.wrapOp ? options.wrapOp(op) : op;
    });
    this.params = this.ops.flatMap((op) => op.params);
    this.buffers = this.ops.flatMap((op) => op.buffers);
    this.input = graph.inputs[0].name;
    const size = (s: ValueShape) => s.dims.reduce((a, b) => a * b, 1);
    this.inFeatures = size(shapes.get(this.input)!);
    this.inputDims = shapes.get(this.input)!.dims;
    this.outFeatures = size(shapes.get(this.logits)!);
    this.random = seededRandom(options.seed ?? 0x5eed);
  }

  forward(x: Float32Array, rows: number, training = true): { logits: Float32Array; cache: ForwardCache } {
    const values = new Map<string, Float32Array>([[this.input, x]]);
    const ctx: TrainContext = { training, random: this.random };
    const forwards = this.ops.map((op) => {
      const f = op.forward(
        op.inputs.map((name) => values.get(name)!),
        rows,
        ctx,
      );
      values.set(op.node.outputs[0], f.y);
      return f;
    });
    const cache: GraphCache = { rows, values, forwards };
    return { logits: values.get(this.logits)!, cache };
  }

  backward(cache: ForwardCache, gradLogits: Float32Array): Float32Array[] {
    const { rows, values, forwards } = cache as GraphCache;
    const grads = new Map<string, Float32Array>([[this.logits, gradLogits]]);
    const paramGrads = new Map<Param, Float32Array>(this.params.map((p) => [p, new Float32Array(p.data.length)]));
    for (let i = this.ops.length - 1; i >= 0; i--) {
      const op = this.ops[i];
      const gy = grads.get(op.node.outputs[0]);
      if (!gy) continue; // does not reach the loss
      const xs = op.inputs.map((name) => values.get(name)!);
      const dxs = op.backward(
        gy,
        xs,
        forwards[i],
        rows,
        op.params.map((p) => paramGrads.get(p)!),
      );
      op.inputs.forEach((name, j) => {
        const d = dxs[j];
        if (!d || name === this.input) return;
        const sum = grads.get(name);
        if (!sum) grads.set(name, d);
        else for (let k = 0; k < d.length; k++) sum[k] += d[k];
      });
    }
    return this.params.map((p) => {
      const g = paramGrads.get(p)!;
      if (p.mask) for (let j = 0; j < g.length; j++) if (!p.mask[j]) g[j] = 0;
      return g;
    });
  }

  /** An activation tensor of a forward pass (by graph tensor name). */
  valueOf(cache: ForwardCache, name: string): Float32Array {
    const v = (cache as GraphCache).values.get(name);
    if (!v) throw new EdgeOptError('E_NOT_FOUND', `train: the forward pass computed no tensor '${name}'`);
    return v;
  }

  toGraph(): Graph {
    const g = cloneGraph(this.graph);
    for (const p of [...this.params, ...this.buffers]) {
      g.tensors[p.name] = { ...g.tensors[p.name], data: Float32Array.from(p.data), mask: p.mask ? Uint8Array.from(p.mask) : undefined };
      if (!p.mask) delete g.tensors[p.name].mask;
    }
    return g;
  }

  applyMasks(): void {
    for (const p of this.params) if (p.mask) for (let j = 0; j < p.data.length; j++) if (!p.mask[j]) p.data[j] = 0;
  }
}
