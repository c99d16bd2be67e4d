/** What the optimizer reports: per-layer storage and the model's size and accuracy. */
import type { Dataset } from '../data/dataset';
import { denseWeight, type Graph, type Tensor, type TensorData } from '../model/graph';
import { packedLength } from '../model/eom-codecs';
import { isHalfExact } from '../util/float16';
import { evaluateModel, type Evaluation } from './evaluate';

export interface LayerReport {
  node: string;
  op: string;
  /** [out, in] (Conv: [out, in/groups * kh * kw]) */
  shape: number[];
  params: number;
  /** Bytes of weights, scales, mask and bias as stored in an .eom file. */
  bytes: number;
  /** Fraction of weights that are zero. */
  sparsity: number;
  bits: number;
  activations?: string;
  /** Static int8 models: why this layer stayed float32 (lib/optimizer/quantize-cnn.ts). */
  float32Reason?: string;
}

export function layerReports(g: Graph): LayerReport[] {
  const floats = JSON.parse(g.metadata['quantization.float32'] ?? '{}') as Record<string, string>;
  return g.nodes
    .filter((n) => n.op === 'Dense' || n.op === 'QDense' || n.op === 'Conv')
    .map((node) => {
      const w = node.op === 'Conv' ? (g.tensors[node.inputs[1]] as Tensor & { data: TensorData }) : denseWeight(g, node);
      const count = w.data.length;
      let zeros = 0;
      for (let i = 0; i < count; i++) if (w.data[i] === 0) zeros++;
      const stored = w.mask ? w.mask.reduce((s, v) => s + v, 0) : count;
      const bits = w.quant?.bits ?? 32;
      let bytes = bits <= 4 ? packedLength(stored, bits) : stored * w.data.BYTES_PER_ELEMENT;
      if (w.mask) bytes += Math.ceil(count / 8);
      if (w.quant) bytes += w.quant.scale.length * (w.quant.scale.length > 1 && isHalfExact(w.quant.scale) ? 2 : 4);
      const bias = node.inputs[2] ? g.tensors[node.inputs[2]].data!.length : 0;
      const n = w.shape[0] as number;
      const k = count / n;
      const activations =
        node.op === 'QDense' ? String(node.attrs.activationQuant ?? 'dynamic') : node.op === 'Conv' && w.quant ? 'static int8' : undefined;
      return {
        node: node.name,
        op: node.op,
        shape: [n, k],
        params: count + bias,
        bytes: bytes + bias * 4,
        sparsity: zeros / count,
        bits,
        ...(activations ? { activations } : {}),
        ...(floats[node.name] ? { float32Reason: floats[node.name] } : {}),
      };
    });
}

export interface AccuracyReport {
  accuracy: number;
  /** Evaluation rows whose prediction differs from the reference (original) model. */
  changedPredictions: number;
  maxAbsLogitError: number;
  meanAbsLogitError: number;
}

export function compareTo(reference: Evaluation, ev: Evaluation): AccuracyReport {
  let changed = 0;
  for (let i = 0; i < ev.predictions.length; i++) if (ev.predictions[i] !== reference.predictions[i]) changed++;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < ev.logits.length; i++) {
    const d = Math.abs(ev.logits[i] - reference.logits[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { accuracy: ev.accuracy, changedPredictions: changed, maxAbsLogitError: max, meanAbsLogitError: sum / ev.logits.length };
}

export function evaluateAgainst(reference: Evaluation, g: Graph, data: Dataset): AccuracyReport {
  return compareTo(reference, evaluateModel(g, data));
}
