/**
 * The budget search on CNNs (graphs with a Conv): what one Conv or Dense node may become and
 * how a set of per-node settings becomes a model.
 *
 * - Precision: static int8 (quantize-cnn.ts, TFLite's scheme: calibrated activation grids) or
 *   float32, per node. Narrower widths are not offered: the int8 CNN path stores and runs one
 *   byte per weight whatever the width, so they could only cost accuracy.
 * - Filter pruning (prune-filters.ts): a fraction of the filters of a channel space. The first
 *   node producing a space carries the setting; residual Adds tie spaces, so the setting prunes
 *   every producer of that space alike.
 * - Element-wise, pooling and residual nodes run int8 only when every activation they read
 *   comes from an int8 node: a float32 Conv is not wrapped in extra quantize/dequantize pairs.
 *
 * Int8 and float32 nodes of a CNN interact (each int8 island pays a quantize and a dequantize at
 * its edges), so the search times a node's setting on the whole model with only that node changed,
 * and times every verified model whole (auto-optimize.ts).
 */
import type { Dataset } from '../data/dataset';
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode } from '../model/graph';
import { filterSpaces } from './prune-filters';
import { quantizeCnn } from './quantize-cnn';

/** A graph the search treats as a CNN: it has a convolution. */
export const isCnn = (g: Graph): boolean => g.nodes.some((n) => n.op === 'Conv');

/** Nodes whose precision the search chooses in a CNN. */
export const isCnnLayer = (node: GraphNode): boolean => node.op === 'Conv' || node.op === 'Dense';

/** The producers of the filter-prunable channel space `node` starts (it is the space's first producer), if any. */
export function filterSpaceOf(g: Graph, node: string): string[] | undefined {
  return filterSpaces(g).find((producers) => producers[0] === node);
}

/** The producers of the prunable channel space `node` writes, if any (for applying a setting). */
export function filterSpaceWith(g: Graph, node: string): string[] {
  const space = filterSpaces(g).find((producers) => producers.includes(node));
  if (!space) throw new EdgeOptError('E_ARGUMENT', `filter pruning: the channels of node '${node}' cannot be pruned`);
  return space;
}

const VIEW_OPS = new Set(['Flatten', 'Reshape', 'Identity', 'Dropout', 'Transpose']);

/**
 * The nodes to keep float32 when exactly `int8` of the Conv/Dense nodes run int8: every other
 * Conv/Dense, and every other node unless all the activations it reads come from int8 nodes.
 */
export function cnnFloatNodes(g: Graph, int8: ReadonlySet<string>): string[] {
  const int8Tensors = new Set<string>();
  const floats: string[] = [];
  for (const node of g.nodes) {
    const acts = node.inputs.filter((name) => name && !g.tensors[name]?.data);
    // A view passes its input's precision on; it is never excluded (quantize-cnn.ts gives it its input's grid).
    const runsInt8 = isCnnLayer(node) ? int8.has(node.name) : acts.length > 0 && acts.every((a) => int8Tensors.has(a));
    if (runsInt8) for (const out of node.outputs) int8Tensors.add(out);
    else if (!VIEW_OPS.has(node.op)) floats.push(node.name);
  }
  return floats;
}

/** Static int8 for the nodes whose setting is 8 bits, float32 for the rest (see cnnFloatNodes). */
export function quantizeCnnLayers(
  g: Graph,
  bitsPerNode: ReadonlyArray<[string, number]>,
  options: { calibration?: Dataset; requantize?: boolean; activations?: 'dynamic' | 'static' },
): Graph {
  const bad = bitsPerNode.find(([, bits]) => bits !== 8 && bits !== 32);
  if (bad)
    throw new EdgeOptError('E_ARGUMENT', `node '${bad[0]}': a CNN's layers are int8 or float32 (static int8 CNNs), not ${bad[1]}-bit`);
  const int8 = new Set(bitsPerNode.filter(([, bits]) => bits === 8).map(([node]) => node));
  if (!int8.size) return g;
  if (options.activations === 'dynamic')
    throw new EdgeOptError('E_ARGUMENT', "a CNN's int8 layers take static activations from calibration data, not 'dynamic'");
  if (!options.calibration) throw new EdgeOptError('E_ARGUMENT', "a CNN's int8 layers need calibration rows (static activation grids)");
  return quantizeCnn(g, {
    bits: 8,
    calibration: options.calibration,
    exclude: cnnFloatNodes(g, int8),
    requantize: options.requantize,
  });
}
