/**
 * The int32 grid of a static int8 Conv's bias. An int8 Conv (int8 in and out, symmetric per-channel
 * int8 weights: lib/engine/lower-int8.ts) adds its bias to the int32 accumulator as
 * biasQ[c] = quantizeBias(bias[c], inputScale, weightScale[c]), so only that integer matters. Static
 * quantization snaps the float32 bias onto it (bias[c] = fround(biasQ[c] * inputScale * weightScale[c]),
 * the same integers), and the .eom writer stores a bias that sits exactly on its grid as those int32
 * values, as TFLite and ONNX QDQ files do: they are small integers, which compress to about half the
 * float32 bytes. The reader multiplies back and gets the same float32 bits.
 */
import { quantizeBias } from '../backends/ts/requantize';
import type { Graph, GraphNode } from './graph';

/** Beyond this magnitude fround(biasQ * step) may no longer round back to biasQ: such a bias is left alone. */
const MAX_EXACT_BIAS_Q = 2 ** 22;

/** The tensors that define a bias's grid: the Conv's input activation and its weight. */
export interface BiasGridRefs {
  input: string;
  weight: string;
}

/** The grid references of `node`'s bias when the node is an int8 Conv with a float32 bias, else undefined. */
function int8ConvBias(g: Graph, node: GraphNode): BiasGridRefs | undefined {
  const [input, weight, bias] = node.inputs;
  const grids = g.activationQuant;
  if (node.op !== 'Conv' || !bias || !grids?.[input] || !node.outputs.every((o) => grids[o])) return undefined;
  const w = g.tensors[weight];
  const b = g.tensors[bias];
  const q = w?.quant;
  if (w?.dtype !== 'int8' || q?.scheme !== 'symmetric' || q.groupSize || q.zeroPoint) return undefined;
  if (!(b?.data instanceof Float32Array) || b.mask || b.quant) return undefined;
  return { input, weight };
}

/** The float32 biases of int8 Convs that no other node reads, with their grid references. */
export function int8ConvBiases(g: Graph): Array<{ bias: string; refs: BiasGridRefs }> {
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  const found: Array<{ bias: string; refs: BiasGridRefs }> = [];
  for (const node of g.nodes) {
    const refs = int8ConvBias(g, node);
    if (refs && uses.get(node.inputs[2]) === 1) found.push({ bias: node.inputs[2], refs });
  }
  return found;
}

/** Channel c's grid step, inputScale * weightScale[c] (in double, as quantizeBias divides by it). */
export function biasStep(inputScale: number, weightScale: Float32Array): (c: number) => number {
  return (c) => inputScale * weightScale[weightScale.length === 1 ? 0 : c];
}

/** biasStep of the grid `refs` names in `g`. */
export function gridStep(g: Graph, refs: BiasGridRefs): (c: number) => number {
  return biasStep(g.activationQuant![refs.input].scale, g.tensors[refs.weight].quant!.scale);
}

/** The integer of `b` on grid step `s` and the float32 it stands for; undefined when that would not round-trip. */
function gridPoint(b: number, s: number): { q: number; value: number } | undefined {
  const q = quantizeBias(b, s, 1);
  const value = Math.fround(q * s);
  return Math.abs(q) < MAX_EXACT_BIAS_Q && quantizeBias(value, s, 1) === q ? { q, value } : undefined;
}

/** The int32 values of `bias` on its grid when every value sits exactly on it, else undefined. */
export function biasOnGrid(bias: Float32Array, step: (c: number) => number): Int32Array | undefined {
  const q = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const point = gridPoint(bias[c], step(c));
    if (!point || !Object.is(point.value, bias[c])) return undefined;
    q[c] = point.q;
  }
  return q;
}

/** The float32 bias that int32 grid values stand for. */
export function biasFromGrid(q: Int32Array, step: (c: number) => number): Float32Array {
  return Float32Array.from(q, (v, c) => v * step(c));
}

/**
 * Moves every int8 Conv's float32 bias onto its int32 grid (new arrays: tensor data may be shared
 * with the graph `g` was cloned from; values whose integer is too large to round-trip stay as they
 * are). The integers the int8 kernels add do not change.
 */
export function snapInt8ConvBiases(g: Graph): void {
  for (const { bias: name, refs } of int8ConvBiases(g)) {
    const t = g.tensors[name];
    const step = gridStep(g, refs);
    const bias = Float32Array.from(t.data as Float32Array, (b, c) => gridPoint(b, step(c))?.value ?? b);
    g.tensors[name] = { ...t, data: bias };
  }
}
