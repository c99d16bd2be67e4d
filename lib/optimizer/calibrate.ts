/**
 * Static activation calibration: run the float model on calibration data,
 * observe the input of every Dense/QDense layer (min/max or a percentile
 * range), and record TFLite-style per-tensor int8 parameters on the layer:
 *   scale = (hi - lo) / 255, zeroPoint = clamp(-128 - round(lo / scale), -128, 127)
 * with lo <= 0 <= hi so zero is exact. NPUs need these static scales.
 */
import { clamp, f32, roundEven } from '../backends/ts/numerics';
import { modelRows, type Dataset } from '../data/dataset';
import { EdgeInferenceEngine } from '../engine/engine';
import { EdgeOptError } from '../errors';
import { cloneGraph, type Graph } from '../model/graph';

import type { Observer } from './observe';

export type { Observer } from './observe';

export interface ActivationRange {
  node: string;
  lo: number;
  hi: number;
  scale: number;
  zeroPoint: number;
}

function observe(values: Float32Array, observer: Observer): { lo: number; hi: number } {
  if (observer === 'minmax') {
    let lo = 0;
    let hi = 0;
    for (const v of values) {
      if (v < lo) lo = v;
      if (hi < v) hi = v;
    }
    return { lo, hi };
  }
  if (observer === 'entropy')
    throw new EdgeOptError(
      'E_ARGUMENT',
      "the entropy observer is for convolutional networks (quantize-cnn.ts); Dense layers take 'minmax' or { percentile }",
    );
  const p = observer.percentile;
  if (!(p > 50 && p <= 100)) throw new EdgeOptError('E_ARGUMENT', `calibration percentile must be in (50, 100], got ${p}`);
  const sorted = Float32Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((q / 100) * (sorted.length - 1))))];
  return { lo: Math.min(0, at(100 - p)), hi: Math.max(0, at(p)) };
}

export function int8Params(lo: number, hi: number): { scale: number; zeroPoint: number } {
  let scale = f32(f32(hi - lo) / 255);
  if (scale === 0) scale = 1;
  return { scale, zeroPoint: clamp(-128 - roundEven(f32(lo / scale)), -128, 127) };
}

/** The input range of every Dense/QDense node, observed on `data` with the float model. */
export function observeActivations(graph: Graph, data: Dataset, observer: Observer = 'minmax'): ActivationRange[] {
  if (!data?.data?.length) throw new EdgeOptError('E_ARGUMENT', 'calibration needs a non-empty dataset');
  const ranges: ActivationRange[] = [];
  const engine = new EdgeInferenceEngine();
  const rows = modelRows(data, graph);
  try {
    graph.nodes.forEach((node, i) => {
      if (node.op !== 'Dense' && node.op !== 'QDense') return;
      let values = rows;
      if (i > 0) {
        // The prefix of the graph that ends where this layer's input is produced.
        const prefix: Graph = { ...cloneGraph(graph), nodes: graph.nodes.slice(0, i), outputs: [node.inputs[0]] };
        engine.loadModelSync('prefix', prefix);
        values = engine.inferSync('prefix', rows).data;
      }
      const { lo, hi } = observe(values, observer);
      ranges.push({ node: node.name, lo, hi, ...int8Params(lo, hi) });
    });
  } finally {
    engine.dispose();
  }
  return ranges;
}

/** Marks every QDense node of `quantized` static with the ranges observed on `float`. */
export function applyStaticActivations(quantized: Graph, ranges: ActivationRange[]): Graph {
  const g = cloneGraph(quantized);
  for (const node of g.nodes) {
    if (node.op !== 'QDense') continue;
    const r = ranges.find((x) => x.node === node.name);
    if (!r) throw new EdgeOptError('E_ARGUMENT', `no calibration range for node '${node.name}'`);
    node.attrs = { ...node.attrs, activationQuant: 'static', inputScale: r.scale, inputZeroPoint: r.zeroPoint };
  }
  return g;
}

/**
 * Static int8 chains: a static QDense whose output feeds another static QDense
 * requantizes its int32 accumulators straight to that layer's int8 input grid
 * with an integer multiplier and shift (TFLite's scheme) instead of going
 * through float. Layers with group-wise or asymmetric weights, and the last
 * layer (whose output is the model's float result), keep the float epilogue.
 */
export function applyStaticOutputs(graph: Graph): Graph {
  const g = cloneGraph(graph);
  for (const node of g.nodes) {
    if (node.op !== 'QDense' || node.attrs.activationQuant !== 'static') continue;
    const next = g.nodes.find((n) => n.inputs[0] === node.outputs[0]);
    const w = g.tensors[node.inputs[1]].quant;
    if (!next || next.op !== 'QDense' || next.attrs.activationQuant !== 'static' || !w || w.groupSize || w.zeroPoint) continue;
    node.attrs = { ...node.attrs, outputScale: next.attrs.inputScale, outputZeroPoint: next.attrs.inputZeroPoint };
  }
  return g;
}
