/** Fresh models: an MLP with PyTorch's nn.Linear initialization, from a seed. */
import { EdgeOptError } from '../errors';
import { denseGraph, type DenseLayerSpec } from '../model/build';
import type { Graph } from '../model/graph';
import { seededRandom } from './random';

export interface MlpOptions {
  seed?: number;
  name?: string;
}

/**
 * sizes = [in, hidden..., out]; ReLU after every layer but the last (logits out).
 * Weights and biases ~ U(-1/√fan_in, 1/√fan_in): kaiming_uniform(a=√5), as nn.Linear does.
 */
export function mlp(sizes: number[], options: MlpOptions = {}): Graph {
  if (sizes.length < 2 || sizes.some((s) => !(Number.isInteger(s) && s > 0))) {
    throw new EdgeOptError('E_ARGUMENT', `mlp: sizes must be at least two positive integers, got [${sizes}]`);
  }
  const random = seededRandom(options.seed ?? 0);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * bound);
  const layers: DenseLayerSpec[] = [];
  for (let i = 1; i < sizes.length; i++) {
    const [inF, out] = [sizes[i - 1], sizes[i]];
    const bound = 1 / Math.sqrt(inF);
    layers.push({
      weight: uniform(out * inF, bound),
      bias: uniform(out, bound),
      inFeatures: inF,
      outFeatures: out,
      activation: i < sizes.length - 1 ? 'relu' : 'none',
    });
  }
  return denseGraph(options.name ?? `mlp-${sizes.join('-')}`, layers);
}
