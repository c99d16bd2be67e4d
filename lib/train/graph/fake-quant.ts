/**
 * Fake quantization for quantization-aware training: a trainable op runs on the values its int8
 * form will see, in float32, with the straight-through estimator (STE) for the gradient.
 * - Activations: rounded onto their static per-tensor grid (the rounding and clamping of the int8
 *   quantize op); the gradient passes where the value lies inside the grid's range and is zero
 *   where the grid clamps it (PyTorch's and TensorFlow's STE).
 * - Weights: symmetric per output channel with the scale taken from the current weights at every
 *   step (max|w| / (2^(bits-1) - 1), as the final quantization will); the forward and the input
 *   gradient use the rounded weights, the weight gradient goes to the float weights unchanged
 *   (max|w| sets the scale, so no weight is ever clamped).
 * - Conv biases: rounded to the int32 grid of input scale x weight scale, as qconv adds them (the
 *   gradient passes unchanged). Without this, rounding flips one level in a few outputs per
 *   thousand, and the flips compound through the layers.
 */
import { kernels } from '../../backends';
import { clamp, f32, roundEven } from '../../backends/ts/numerics';
import { quantizeBias } from '../../backends/ts/requantize';
import type { ActivationQuant } from '../../model/graph';
import type { Param } from '../network';
import type { Forward, TrainOp } from './op';

/** Where an op meets int8: grids its inputs are quantized with, its output's grid, weights to round. */
export interface FakeQuantSpec {
  /** Per activation input (op.inputs order): the grid it is quantized onto before the op reads it. */
  inputs: Array<ActivationQuant | undefined>;
  /** The grid the op's output is written in. */
  output?: ActivationQuant;
  /** Weight tensor names (among op.params) quantized per output channel, with their bit width. */
  weights: Map<string, number>;
  /** A Conv's bias and weight (among op.params) and its input grid's scale: the bias goes onto the int32 grid. */
  bias?: { name: string; weight: string; inputScale: number };
}

/** x on grid q: the values and, per element, whether the gradient passes (inside the grid's range). */
export function fakeQuantize(x: Float32Array, q: ActivationQuant): { y: Float32Array; pass: Uint8Array } {
  const y = new Float32Array(x.length);
  const pass = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const level = roundEven(f32(x[i] / q.scale)) + q.zeroPoint;
    const kept = clamp(level, -128, 127);
    y[i] = f32((kept - q.zeroPoint) * q.scale);
    pass[i] = level === kept ? 1 : 0;
  }
  return { y, pass };
}

/** Weights [n, ...] rounded to their symmetric per-channel grid, as kernels().quantizeSymmetric rounds them. */
export function fakeQuantizeWeights(w: Float32Array, n: number, bits: number): Float32Array {
  return roundedWeights(w, n, bits).y;
}

function roundedWeights(w: Float32Array, n: number, bits: number): { y: Float32Array; scales: Float32Array } {
  const k = w.length / n;
  const { q, scales } = kernels().quantizeSymmetric(w, n, k, bits, true);
  const y = new Float32Array(w.length);
  for (let r = 0; r < n; r++) for (let i = r * k; i < (r + 1) * k; i++) y[i] = f32(q[i] * scales[r]);
  return { y, scales };
}

/** A bias on qconv's int32 grid (quantizeBias, as lowering computes it), back in float. */
export function fakeQuantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): Float32Array {
  return Float32Array.from(b, (v, c) => quantizeBias(v, inputScale, weightScales[c]) * inputScale * weightScales[c]);
}

function masked(g: Float32Array, pass: Uint8Array): Float32Array {
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) if (pass[i]) out[i] = g[i];
  return out;
}

interface Saved {
  inner: Forward;
  xs: Float32Array[];
  inputPass: Array<Uint8Array | undefined>;
  outputPass?: Uint8Array;
  weights: Array<{ param: Param; rounded: Float32Array }>;
}

/** Runs `body` with each param's values replaced by its rounded copy, then puts the float values back. */
function withRounded<T>(weights: Saved['weights'], body: () => T): T {
  const floats = weights.map(({ param }) => param.data.slice());
  weights.forEach(({ param, rounded }) => param.data.set(rounded));
  try {
    return body();
  } finally {
    weights.forEach(({ param }, i) => param.data.set(floats[i]));
  }
}

/** `op` with fake quantization where `spec` puts int8; params and buffers stay the op's own. */
export function fakeQuantOp(op: TrainOp, spec: FakeQuantSpec): TrainOp {
  const weightParams = op.params.filter((p) => spec.weights.has(p.name));
  const bias = spec.bias && op.params.find((p) => p.name === spec.bias!.name);
  const scales = new Map<string, Float32Array>();
  return {
    node: op.node,
    inputs: op.inputs,
    params: op.params,
    buffers: op.buffers,
    forward(xs0, n, ctx) {
      const inputPass: Saved['inputPass'] = [];
      const xs = xs0.map((x, j) => {
        const q = spec.inputs[j];
        if (!q) return x;
        const r = fakeQuantize(x, q);
        inputPass[j] = r.pass;
        return r.y;
      });
      const weights = weightParams.map((param) => {
        const r = roundedWeights(param.data, param.shape[0], spec.weights.get(param.name)!);
        scales.set(param.name, r.scales);
        return { param, rounded: r.y };
      });
      if (bias) weights.push({ param: bias, rounded: fakeQuantizeBias(bias.data, spec.bias!.inputScale, scales.get(spec.bias!.weight)!) });
      const inner = withRounded(weights, () => op.forward(xs, n, ctx));
      const saved: Saved = { inner, xs, inputPass, weights };
      if (!spec.output) return { y: inner.y, saved };
      const r = fakeQuantize(inner.y, spec.output);
      saved.outputPass = r.pass;
      return { y: r.y, saved };
    },
    backward(gy, _xs, f, n, paramGrads) {
      const s = f.saved as Saved;
      const g = s.outputPass ? masked(gy, s.outputPass) : gy;
      const dxs = withRounded(s.weights, () => op.backward(g, s.xs, s.inner, n, paramGrads));
      return dxs.map((d, j) => (d && s.inputPass[j] ? masked(d, s.inputPass[j]!) : d));
    },
  };
}
