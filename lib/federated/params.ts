/**
 * Model parameters as named float32 tensors (the unit FedAvg averages and
 * updates carry): read from and written back into a trainable Graph (Dense
 * chains and CNNs). BatchNormalization running statistics travel with the
 * trained tensors and are averaged like them — plain FedAvg over the whole
 * model state, as averaging PyTorch state_dicts does (not FedBN, which would
 * keep them local and leave the global model without usable statistics).
 */
import { EdgeOptError } from '../errors';
import { cloneGraph, type Graph } from '../model/graph';
import { Network } from '../train/network';

export type Tensors = Record<string, Float32Array>;

export interface ParamSpec {
  name: string;
  shape: number[];
  mask?: Uint8Array;
  /** A BatchNorm running statistic: averaged, but not a gradient step (no server momentum). */
  statistic?: boolean;
}

/** The trainable tensors of a model, in layer order, with their masks, then the running statistics. */
export function paramSpecs(model: Graph): ParamSpec[] {
  const net = Network.fromGraph(model);
  return [
    ...net.params.map((p) => ({ name: p.name, shape: p.shape, mask: p.mask })),
    ...net.buffers.map((p) => ({ name: p.name, shape: p.shape, mask: p.mask, statistic: true })),
  ];
}

/** Copies of the trainable tensors of a model. */
export function readParams(model: Graph): Tensors {
  const net = Network.fromGraph(model);
  return Object.fromEntries([...net.params, ...net.buffers].map((p) => [p.name, p.data]));
}

/** A new graph with these tensor values; masked entries are forced to zero. */
export function writeParams(model: Graph, values: Tensors): Graph {
  const g = cloneGraph(model);
  for (const [name, data] of Object.entries(values)) {
    const t = g.tensors[name];
    if (!t || t.data?.length !== data.length)
      throw new EdgeOptError('E_SHAPE', `model '${model.name}' has no tensor '${name}' of ${data.length} values`);
    const copy = Float32Array.from(data);
    if (t.mask) for (let i = 0; i < copy.length; i++) if (!t.mask[i]) copy[i] = 0;
    g.tensors[name] = { ...t, data: copy };
  }
  return g;
}

/** a - b, tensor by tensor. */
export function subtract(a: Tensors, b: Tensors): Tensors {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.map((x, i) => x - b[k][i])]));
}
