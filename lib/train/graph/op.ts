/**
 * One trainable node of a graph: forward in NCHW float32 over a batch, and backward giving the
 * gradients of its activation inputs and accumulating those of its parameters. The ops follow
 * the graph IR (ONNX semantics, per-image shapes from lib/model/shapes.ts).
 */
import type { GraphNode } from '../../model/graph';
import type { Param } from '../network';

export interface TrainContext {
  /** Batch statistics for BatchNormalization, active Dropout. */
  training: boolean;
  /** Seeded uniform [0, 1) (Dropout masks). */
  random: () => number;
}

export interface Forward {
  y: Float32Array;
  /** Whatever backward needs besides the inputs and the output. */
  saved?: unknown;
}

export interface TrainOp {
  readonly node: GraphNode;
  /** Names of the activation inputs, in the order forward receives them. */
  readonly inputs: string[];
  readonly params: Param[];
  /** State that is not trained by gradients but travels with the model (BN running statistics). */
  readonly buffers: Param[];
  forward(xs: Float32Array[], n: number, ctx: TrainContext): Forward;
  /** Gradients for `inputs` (null: not needed); parameter gradients are added to `paramGrads` (same order as params). */
  backward(gy: Float32Array, xs: Float32Array[], f: Forward, n: number, paramGrads: Float32Array[]): Array<Float32Array | null>;
}

/** A trainable copy of an initializer. */
export function paramOf(name: string, shape: readonly (number | null)[], data: Float32Array, mask?: Uint8Array): Param {
  return { name, shape: shape as number[], data: Float32Array.from(data), ...(mask ? { mask: Uint8Array.from(mask) } : {}) };
}

/** The fields of an op with one activation input and nothing to train. */
export function stateless(node: GraphNode): Pick<TrainOp, 'node' | 'inputs' | 'params' | 'buffers'> {
  return { node, inputs: [node.inputs[0]], params: [], buffers: [] };
}
