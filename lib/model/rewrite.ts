/**
 * Graph rewrites shared by ONNX import and lowering: BatchNormalization as a
 * per-channel affine map, folded into the Conv/Dense before it.
 */
import type { Graph, GraphNode, Tensor } from './graph';

/** y = x * mul + add per channel: mul = scale / sqrt(var + eps), add = bias - mean * mul (float32, as onnxruntime). */
export function batchNormAffine(
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  epsilon: number,
): { mul: Float32Array; add: Float32Array } {
  const f = Math.fround;
  const mul = Float32Array.from(scale, (s, c) => f(s / f(Math.sqrt(f(variance[c] + epsilon)))));
  const add = Float32Array.from(bias, (b, c) => f(b - f(mean[c] * mul[c])));
  return { mul, add };
}

/** The affine map of an IR BatchNormalization node (its parameters are initializers). */
export function batchNormOf(g: Pick<Graph, 'tensors'>, bn: GraphNode): { mul: Float32Array; add: Float32Array } {
  const [scale, bias, mean, variance] = bn.inputs.slice(1).map((n) => g.tensors[n].data as Float32Array);
  return batchNormAffine(scale, bias, mean, variance, (bn.attrs.epsilon as number | undefined) ?? 1e-5);
}

/**
 * Folds y = x * mul + add (per output channel) into a Conv or Dense: each output
 * channel's weights scale by mul, its bias becomes bias * mul + add. Returns the
 * new weight and bias tensors (the inputs are left untouched).
 */
export function foldAffine(
  tensors: Record<string, Tensor>,
  node: GraphNode,
  mul: Float32Array,
  add: Float32Array,
): { weight: Tensor; bias: Tensor } {
  const w = tensors[node.inputs[1]];
  const outC = mul.length;
  const per = (w.data as Float32Array).length / outC;
  const data = Float32Array.from(w.data as Float32Array, (v, i) => Math.fround(v * mul[Math.floor(i / per)]));
  const old = node.inputs[2] ? (tensors[node.inputs[2]].data as Float32Array) : undefined;
  const bias = Float32Array.from(add, (a, c) => Math.fround((old ? Math.fround(old[c] * mul[c]) : 0) + a));
  return {
    weight: { ...w, data, mask: w.mask },
    bias: { name: node.inputs[2] ?? `${node.name}.bias`, dtype: 'float32', shape: [outC], data: bias },
  };
}
