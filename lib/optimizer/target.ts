/**
 * Target devices for the optimizer: a profile sets pass defaults and is
 * checked against the optimized model, so the report says which layers will
 * not fit the target and why.
 *
 * - 'cpu': no limits.
 * - 'npu': int8 weights and static per-tensor activations (what real NPUs need), within
 *          the plugin's capabilities (the reference plugin's when none are given).
 * - { kind: 'mcu', ramBytes, flashBytes }: the model file must fit flash, every Dense layer's
 *          batch-1 working memory (float input and output, quantized input) must fit RAM, and so
 *          must the whole model's planned activation arena plus its input and output at batch 1.
 */
import type { NpuCapabilities } from '../backends/npu';
import { EdgeOptError } from '../errors';
import { lowerGraph } from '../engine/lower';
import { encodeEom } from '../model/eom';
import { denseWeight, type Graph } from '../model/graph';
import type { QuantizeOptions } from './quantize';

export type Target =
  'cpu' | 'npu' | { kind: 'npu'; capabilities?: Partial<NpuCapabilities> } | { kind: 'mcu'; ramBytes: number; flashBytes: number };

export interface TargetIssue {
  node?: string;
  reason: string;
}

/** What the reference NPU plugin (native/npu) accepts. */
const REFERENCE_NPU: Pick<
  NpuCapabilities,
  'maxChannels' | 'staticActivations' | 'dynamicActivations' | 'perChannelWeights' | 'perTensorWeights'
> = {
  maxChannels: 2048,
  staticActivations: true,
  dynamicActivations: false,
  perChannelWeights: true,
  perTensorWeights: false,
};

type Normalized = { kind: 'cpu' } | { kind: 'npu'; caps: typeof REFERENCE_NPU } | { kind: 'mcu'; ramBytes: number; flashBytes: number };

function normalize(target: Target | undefined): Normalized {
  if (target === undefined || target === 'cpu') return { kind: 'cpu' };
  if (target === 'npu') return { kind: 'npu', caps: REFERENCE_NPU };
  if (target && typeof target === 'object' && target.kind === 'npu')
    return { kind: 'npu', caps: { ...REFERENCE_NPU, ...target.capabilities } };
  if (target && typeof target === 'object' && target.kind === 'mcu') {
    const { ramBytes, flashBytes } = target;
    if (!(ramBytes > 0) || !(flashBytes > 0)) throw new EdgeOptError('E_ARGUMENT', 'an mcu target needs ramBytes > 0 and flashBytes > 0');
    return { kind: 'mcu', ramBytes, flashBytes };
  }
  throw new EdgeOptError(
    'E_ARGUMENT',
    `target must be 'cpu', 'npu', { kind: 'npu', capabilities } or { kind: 'mcu', ramBytes, flashBytes }, got ${JSON.stringify(target)}`,
  );
}

export function targetName(target: Target | undefined): string {
  const t = normalize(target);
  return t.kind === 'mcu' ? `mcu (ram ${t.ramBytes} B, flash ${t.flashBytes} B)` : t.kind;
}

/** Quantization defaults a target implies; a pass's own options win. */
export function targetQuantizeDefaults(target: Target | undefined): Partial<QuantizeOptions> {
  const t = normalize(target);
  // ABI v1 layers end in the float epilogue, so NPU models do not requantize between layers.
  if (t.kind === 'npu')
    return {
      bits: 8,
      granularity: t.caps.perChannelWeights ? 'channel' : 'tensor',
      activations: t.caps.dynamicActivations ? 'dynamic' : 'static',
      requantize: false,
    };
  if (t.kind === 'mcu') return { bits: 8, granularity: 'channel' };
  return {};
}

/** Every reason the model will not fit the target (empty when it fits). */
export function checkTarget(graph: Graph, target: Target | undefined): TargetIssue[] {
  const t = normalize(target);
  const issues: TargetIssue[] = [];
  if (t.kind === 'cpu') return issues;
  if (t.kind === 'mcu') {
    const bytes = encodeEom(graph).length;
    if (bytes > t.flashBytes) issues.push({ reason: `the model takes ${bytes} bytes, flash holds ${t.flashBytes}` });
    const p = lowerGraph(graph);
    const io = [...p.inputs, ...p.outputs].reduce((s, x) => s + 4 * x.shape.reduce((a, b) => a * b, 1), 0);
    if (p.arenaBytes + io > t.ramBytes)
      issues.push({
        reason: `activations need ${p.arenaBytes + io} bytes at batch 1 (arena ${p.arenaBytes} + input/output ${io}), RAM holds ${t.ramBytes}`,
      });
  }
  for (const node of graph.nodes) {
    if (node.op !== 'Dense' && node.op !== 'QDense') {
      if (t.kind === 'npu' && node.op !== 'Relu' && node.op !== 'Flatten' && node.op !== 'Reshape')
        issues.push({ node: node.name, reason: `the NPU runs QDense and Relu only, not ${node.op}` });
      continue;
    }
    const w = denseWeight(graph, node);
    const [n, k] = w.shape as number[];
    if (t.kind === 'mcu') {
      const work = 4 * k + 4 * n + k;
      if (work > t.ramBytes)
        issues.push({ node: node.name, reason: `needs ${work} bytes of working memory at batch 1, RAM holds ${t.ramBytes}` });
      continue;
    }
    if (node.op === 'Dense') {
      issues.push({ node: node.name, reason: 'float32 layer: the NPU runs int8 only (quantize it)' });
      continue;
    }
    const q = w.quant!;
    if (q.bits !== 8) issues.push({ node: node.name, reason: `${q.bits}-bit weights: the NPU runs int8 only` });
    if (q.scheme !== 'symmetric' || q.groupSize)
      issues.push({
        node: node.name,
        reason: 'asymmetric or group-wise weights: the NPU takes symmetric per-channel or per-tensor scales',
      });
    const perChannel = q.scale.length === n && n > 1;
    if (!q.groupSize && perChannel && !t.caps.perChannelWeights)
      issues.push({ node: node.name, reason: 'per-channel weights: this NPU takes per-tensor scales only' });
    if (!q.groupSize && !perChannel && !t.caps.perTensorWeights && n > 1)
      issues.push({ node: node.name, reason: 'per-tensor weights: this NPU takes per-channel scales only' });
    if (node.attrs.activationQuant !== 'static' && !t.caps.dynamicActivations) {
      issues.push({ node: node.name, reason: 'dynamic activation quantization: the NPU needs static scales from calibration data' });
    }
    if (t.caps.maxChannels && n > t.caps.maxChannels)
      issues.push({ node: node.name, reason: `${n} output channels exceed the NPU's ${t.caps.maxChannels}` });
  }
  return issues;
}
