/**
 * Static int8 quantization of whole graphs (CNNs), TFLite's scheme:
 * - Conv weights symmetric int8 per output channel (axis 0), Dense weights too
 *   (QDense with a static input grid); an int8 Conv's bias is snapped onto
 *   its int32 grid (bias / (inputScale * weightScale), lib/model/bias-grid.ts):
 *   the integers the kernels add, and what the .eom file stores;
 * - every activation tensor an int8 node reads or writes gets a static
 *   per-tensor asymmetric grid from its observed range (observe.ts: min/max,
 *   percentile or entropy): scale = (hi - lo) / 255,
 *   zeroPoint = clamp(-128 - round(lo / scale)), zero exact;
 * - Conv, the activations (ReLU/ReLU6 as clamps, the others as lookup
 *   tables), Add/Mul of two same-shape activations, Max/Average/GlobalAverage
 *   pooling and Concat run in int8 (lib/engine/lower-int8.ts); pools keep
 *   their input's grid, as TFLite requires;
 * - a node the caller excludes, or one with no int8 form, stays float32, and
 *   lowering puts quantize/dequantize ops at the boundaries. The metadata
 *   `quantization.float32` lists those nodes with the reason (the report shows it).
 */
import { kernels } from '../backends';
import type { Dataset } from '../data/dataset';
import { foldConvBatchNorms } from '../engine/lower';
import { EdgeOptError } from '../errors';
import { snapInt8ConvBiases } from '../model/bias-grid';
import { type ActivationQuant, cloneGraph, type Graph, type GraphNode } from '../model/graph';
import { ACTIVATION_OPS } from '../model/op-schema';
import { inferShapes } from '../model/shapes';
import { applyStaticOutputs, int8Params } from './calibrate';
import { type Observer, observeTensors, type TensorRange } from './observe';

export interface CnnQuantizeOptions {
  bits: number;
  calibration: Dataset;
  observer?: Observer;
  /** Nodes kept in float32 (quantize/dequantize inserted around them). */
  exclude?: readonly string[];
  /** Chain static Dense layers by integer requantization (default true). */
  requantize?: boolean;
  /** Activation ranges observed before (quantization-aware training keeps its calibrated grids); calibration is not run again. */
  ranges?: ReadonlyMap<string, TensorRange>;
}

/** Ops that pass their input's values (and so its grid) through. */
export const VIEW_OPS = new Set(['Flatten', 'Reshape', 'Identity', 'Dropout', 'Transpose']);
const SAME_GRID_OPS = new Set(['MaxPool', 'AveragePool']);

/** Why `node` cannot run in int8 in `g`, or undefined when it can. */
function floatReason(g: Graph, node: GraphNode, excluded: Set<string>, shapes: Map<string, string>): string | undefined {
  if (excluded.has(node.name)) return 'excluded by the caller';
  const acts = node.inputs.filter((n) => n && !g.tensors[n]?.data);
  switch (node.op) {
    case 'Conv':
    case 'Dense':
      return g.tensors[node.inputs[1]].dtype === 'float32' ? undefined : `its weights are already ${g.tensors[node.inputs[1]].dtype}`;
    case 'Add':
    case 'Mul':
      if (acts.length !== 2) return `int8 ${node.op} takes two activations (one operand here is a constant)`;
      return shapes.get(acts[0]) === shapes.get(acts[1]) ? undefined : `int8 ${node.op} takes same-shape operands (this one broadcasts)`;
    case 'MaxPool':
    case 'AveragePool':
    case 'GlobalAveragePool':
    case 'Concat':
      return undefined;
    default:
      if (ACTIVATION_OPS.includes(node.op) && node.op !== 'Softmax') return undefined;
      return `no int8 kernel for ${node.op}`;
  }
}

export function quantizeCnn(graph: Graph, options: CnnQuantizeOptions): Graph {
  const { bits } = options;
  const excluded = new Set(options.exclude ?? []);
  const missing = [...excluded].filter((name) => !graph.nodes.some((n) => n.name === name));
  if (missing.length)
    throw new EdgeOptError('E_NOT_FOUND', `quantize: exclude names no node of '${graph.name}': ${missing.map((m) => `'${m}'`).join(', ')}`);
  const folded = foldConvBatchNorms(graph);
  const ranges = options.ranges ?? observeTensors(folded, options.calibration, options.observer);
  const g = cloneGraph(folded);
  const shapes = shapeKeys(g);
  const grids: Record<string, ActivationQuant> = {};
  const gridOf = (name: string): ActivationQuant => {
    if (!grids[name]) {
      const r = ranges.get(name)!;
      grids[name] = int8Params(r.lo, r.hi);
    }
    return grids[name];
  };
  const floats: Record<string, string> = {};
  const kt = kernels();
  for (const node of g.nodes) {
    if (VIEW_OPS.has(node.op)) {
      // A view keeps its input's values and so its grid (set if the producer was int8).
      if (grids[node.inputs[0]]) grids[node.outputs[0]] = grids[node.inputs[0]];
      continue;
    }
    const reason = floatReason(g, node, excluded, shapes);
    if (reason) {
      floats[node.name] = reason;
      continue;
    }
    const w = node.op === 'Conv' || node.op === 'Dense' ? g.tensors[node.inputs[1]] : undefined;
    if (w) {
      const n = w.shape[0] as number;
      const values = w.data as Float32Array;
      const r = kt.quantizeSymmetric(values, n, values.length / n, bits, true);
      g.tensors[w.name] = { ...w, dtype: 'int8', data: r.q, quant: { bits, scheme: 'symmetric', scale: r.scales, axis: 0 } };
    }
    if (node.op === 'Dense') {
      // The int8 Dense reads float32 and quantizes with its static input grid (the same grid, so an int8 producer's values pass exactly).
      const q = gridOf(node.inputs[0]);
      node.op = 'QDense';
      node.attrs = { ...node.attrs, activationQuant: 'static', inputScale: q.scale, inputZeroPoint: q.zeroPoint };
      continue;
    }
    for (const name of node.inputs) if (name && !g.tensors[name]?.data) gridOf(name);
    if (SAME_GRID_OPS.has(node.op)) grids[node.outputs[0]] = gridOf(node.inputs[0]);
    else for (const name of node.outputs) gridOf(name);
  }
  g.activationQuant = grids;
  const int8 = g.nodes.filter((n) => !floats[n.name] && !VIEW_OPS.has(n.op)).length;
  g.metadata.quantization = `int${bits} symmetric per-channel weights, static per-tensor int8 activations (${describeObserver(options.observer)}); ${int8} int8 nodes, ${Object.keys(floats).length} float32`;
  if (Object.keys(floats).length) g.metadata['quantization.float32'] = JSON.stringify(floats);
  else delete g.metadata['quantization.float32'];
  snapInt8ConvBiases(g);
  return options.requantize === false ? g : applyStaticOutputs(g);
}

function describeObserver(o: Observer | undefined): string {
  if (o === undefined || o === 'minmax') return 'min/max';
  return o === 'entropy' ? 'entropy' : `percentile ${o.percentile}`;
}

/** Each activation tensor's per-image shape as a string (equal strings: same shape). */
function shapeKeys(g: Graph): Map<string, string> {
  return new Map([...inferShapes(g)].map(([name, s]) => [name, `${s.dims.join('x')}${s.folded ? '/folded' : ''}`]));
}
