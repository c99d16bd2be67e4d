/**
 * Weight quantization: Dense -> QDense with int8-held weights of `bits` bits.
 *
 * - 'channel' (default): symmetric, scale = max|w| / (2^(bits-1) - 1) per output channel
 * - 'tensor':            symmetric, one scale per layer
 * - { group: g }:        symmetric, one (half-precision) scale per output channel per g weights along K
 * - 'global':            the seed's asymmetric min/max over all layers at once:
 *                        scale = (max - min) / (2^bits - 1), zero point = round(-min / scale),
 *                        q = clamp(round(w / scale) + zero point) (an integer zero point, so
 *                        the int8 kernels run it; q differs from round((w - min) / scale) by at
 *                        most one step)
 *
 * Rounding is half to even in float32 (PyTorch's). Activations are quantized
 * dynamically per row at run time, or statically per tensor from calibration
 * data (see calibrate.ts). Pruned zeros stay zero in every symmetric mode.
 * CNNs quantize statically (quantize-cnn.ts), optionally with quantization-aware training (qat.ts).
 */
import { kernels } from '../backends';
import { clamp, f32, roundEven } from '../backends/ts/numerics';
import { EdgeOptError } from '../errors';
import { roundToHalf } from '../util/float16';
import { cloneGraph, denseWeight, type Graph, type QuantParams } from '../model/graph';
import type { Dataset } from '../data/dataset';
import { selectLayers } from './select-layers';
import { applyStaticActivations, applyStaticOutputs, observeActivations } from './calibrate';
import type { Observer } from './observe';
import { type QatOptions, quantizeAwareTraining } from './qat';
import { quantizeCnn } from './quantize-cnn';
import type { Pass } from './pass';
import { targetQuantizeDefaults } from './target';

export type Granularity = 'channel' | 'tensor' | 'global' | { group: number };

export interface QuantizeOptions {
  bits?: number;
  granularity?: Granularity;
  /** 'dynamic' (default): per-row uint8 per call. 'static': per-tensor int8 scales from `calibration`. */
  activations?: 'dynamic' | 'static';
  calibration?: Dataset;
  observer?: Observer;
  /** Static activations: chain int8 layers by integer requantization (default true; see calibrate.ts). */
  requantize?: boolean;
  /** Quantize only these Dense nodes (default: all); the budget search sets a width per layer this way. */
  layers?: readonly string[];
  /** CNNs (static activations): nodes kept in float32, with quantize/dequantize around them. */
  exclude?: readonly string[];
  /** CNNs (static activations): quantization-aware training after calibration (see qat.ts). */
  qat?: QatOptions;
}

/** Parses 'channel' | 'tensor' | 'global' | 'group:32' | { group: 32 }. */
export function parseGranularity(g: unknown): Granularity {
  if (g === undefined) return 'channel';
  if (g === 'channel' || g === 'tensor' || g === 'global') return g;
  const size = typeof g === 'string' && g.startsWith('group:') ? Number(g.slice(6)) : (g as { group?: unknown })?.group;
  if (typeof size === 'number' && Number.isInteger(size) && size >= 1) return { group: size };
  throw new EdgeOptError(
    'E_ARGUMENT',
    `quantize: granularity must be 'channel', 'tensor', 'global' or { group: n }, got ${JSON.stringify(g)}`,
  );
}

function describe(g: Granularity): string {
  return typeof g === 'string' ? `per-${g}` : `group-${g.group}`;
}

/**
 * Symmetric quantization of each [channel][group] slice of W [n, k]. Group
 * scales are many (one per `group` weights), so they are rounded to half
 * precision — stored as F16, as GGML and MatMulNBits do — before the weights
 * are quantized with them.
 */
function quantizeGroups(w: Float32Array, n: number, k: number, bits: number, group: number): { q: Int8Array; scales: Float32Array } {
  const groups = Math.ceil(k / group);
  const qmax = 2 ** (bits - 1) - 1;
  const q = new Int8Array(n * k);
  const scales = new Float32Array(n * groups);
  const kt = kernels();
  for (let r = 0; r < n; r++) {
    for (let gi = 0; gi < groups; gi++) {
      const from = r * k + gi * group;
      const slice = w.subarray(from, from + Math.min(group, k - gi * group));
      const scale = roundToHalf(kt.quantizeSymmetric(slice, 1, slice.length, bits, false).scales[0]);
      for (let i = 0; i < slice.length; i++) q[from + i] = clamp(roundEven(f32(slice[i] / scale)), -qmax, qmax);
      scales[r * groups + gi] = scale;
    }
  }
  return { q, scales };
}

/** The seed's global min/max grid, shared by every layer. */
function globalGrid(values: Float32Array[], bits: number): { scale: number; zeroPoint: number } {
  let lo = 0;
  let hi = 0;
  for (const v of values)
    for (const x of v) {
      if (x < lo) lo = x;
      if (hi < x) hi = x;
    }
  const levels = 2 ** bits - 1;
  let scale = f32(f32(hi - lo) / levels);
  if (scale === 0) scale = 1;
  return { scale, zeroPoint: clamp(roundEven(f32(-lo / scale)), 0, levels) };
}

function quantizeAsymmetric(w: Float32Array, bits: number, grid: { scale: number; zeroPoint: number }): Int8Array {
  const levels = 2 ** bits - 1;
  const shift = 2 ** (bits - 1); // unsigned [0, 2^bits - 1] -> int8-held [-2^(bits-1), 2^(bits-1) - 1]
  return Int8Array.from(w, (x) => clamp(roundEven(f32(x / grid.scale)) + grid.zeroPoint, 0, levels) - shift);
}

export function quantizeGraph(graph: Graph, options: QuantizeOptions = {}): Graph {
  const bits = options.bits ?? 8;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8)
    throw new EdgeOptError('E_ARGUMENT', `quantize: bits must be an integer in 2..8, got ${bits}`);
  const granularity = parseGranularity(options.granularity);
  const activations = options.activations ?? 'dynamic';
  if (activations !== 'dynamic' && activations !== 'static')
    throw new EdgeOptError('E_ARGUMENT', `quantize: activations must be 'dynamic' or 'static', got '${String(activations)}'`);
  if (activations === 'static' && !options.calibration)
    throw new EdgeOptError('E_ARGUMENT', "quantize: activations 'static' needs calibration data");
  const conv = graph.nodes.find((n) => n.op === 'Conv');
  if (conv) {
    if (activations !== 'static' || granularity !== 'channel' || options.layers !== undefined)
      throw new EdgeOptError(
        'E_UNSUPPORTED_OP',
        `quantize: model '${graph.name}' has Conv layers (node '${conv.name}'); convolutional networks quantize with activations: 'static', calibration data and per-channel weights (use exclude to keep layers in float32)`,
      );
    const cnn = {
      bits,
      calibration: options.calibration!,
      observer: options.observer,
      exclude: options.exclude,
      requantize: options.requantize,
    };
    return options.qat === undefined ? quantizeCnn(graph, cnn) : quantizeAwareTraining(graph, cnn, options.qat);
  }
  if (options.qat !== undefined)
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `quantize: quantization-aware training applies to convolutional networks (static int8 CNNs); '${graph.name}' has no Conv layer`,
    );
  if (options.exclude !== undefined)
    throw new EdgeOptError('E_ARGUMENT', `quantize: exclude applies to convolutional networks; for Dense models pass layers`);
  // Observe the float model, before its weights change.
  const ranges = activations === 'static' ? observeActivations(graph, options.calibration!, options.observer) : undefined;
  const g = cloneGraph(graph);
  const dense = selectLayers(g, options.layers, 'quantize').filter((n) => n.op === 'Dense');
  const grid =
    granularity === 'global'
      ? globalGrid(
          dense.map((n) => denseWeight(g, n).data as Float32Array),
          bits,
        )
      : undefined;
  for (const node of dense) {
    const w = denseWeight(g, node);
    const values = w.data as Float32Array;
    const [n, k] = w.shape as number[];
    let q: Int8Array;
    let quant: QuantParams;
    if (grid) {
      q = quantizeAsymmetric(values, bits, grid);
      quant = { bits, scheme: 'asymmetric', scale: new Float32Array([grid.scale]), zeroPoint: grid.zeroPoint - 2 ** (bits - 1) };
    } else if (typeof granularity === 'object') {
      // A group longer than K is one group per row: stored as K, the longest group the kernels take.
      const group = Math.min(granularity.group, k);
      const r = quantizeGroups(values, n, k, bits, group);
      q = r.q;
      quant = { bits, scheme: 'symmetric', scale: r.scales, groupSize: group, axis: 0 };
    } else {
      const r = kernels().quantizeSymmetric(values, n, k, bits, granularity === 'channel');
      q = r.q;
      quant = { bits, scheme: 'symmetric', scale: r.scales, axis: 0 };
    }
    g.tensors[w.name] = { ...w, dtype: 'int8', data: q, quant };
    node.op = 'QDense';
    node.attrs = { ...node.attrs, activationQuant: 'dynamic' };
  }
  const acts = ranges ? 'static per-tensor int8 activations' : 'dynamic per-row uint8 activations';
  g.metadata.quantization = `int${bits} ${grid ? 'asymmetric global min/max' : `symmetric ${describe(granularity)}`} weights, ${acts}`;
  if (!ranges) return g;
  const statics = applyStaticActivations(g, ranges);
  return options.requantize === false ? statics : applyStaticOutputs(statics);
}

/**
 * The quantize pass. Options left out come from the pipeline's target (e.g. an
 * NPU implies static activations); static activations use options.calibration,
 * else the pipeline's calibration data.
 */
export function quantize(options: QuantizeOptions = {}): Pass {
  return (graph, ctx) =>
    quantizeGraph(graph, { ...targetQuantizeDefaults(ctx?.target), ...options, calibration: options.calibration ?? ctx?.calibration });
}
