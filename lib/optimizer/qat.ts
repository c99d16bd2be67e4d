/**
 * Quantization-aware training of static int8 CNNs. The float model (BatchNorms folded, as int8
 * runs it) is first quantized post-training as usual; that model says where int8 lives: which
 * Conv/Dense weights are int8 and on which grid every activation tensor is written or read. The
 * folded model then trains with fake quantization exactly there (lib/train/graph/fake-quant.ts:
 * weights per output channel from the current weights, activations on the calibrated grids, which
 * stay frozen; straight-through gradients), and the trained weights are quantized again on the
 * same grids by quantizeCnn, so the result is an ordinary static int8 model: same Program ops,
 * same .eom and QDQ export.
 *
 * Fake quantization sits where the int8 Program rounds: on the output of every int8 node except a
 * Conv/Add/Mul whose only reader is a ReLU/Clip that lowering fuses into it (lower.ts, epilogue),
 * and on an int8 node's inputs that arrive in float32 (the model input, a float node's output).
 */
import type { Dataset } from '../data/dataset';
import { foldConvBatchNorms } from '../engine/lower';
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode } from '../model/graph';
import type { Augmentation } from '../train/augment';
import { fakeQuantOp, type FakeQuantSpec } from '../train/graph/fake-quant';
import { GraphNetwork } from '../train/graph-network';
import type { LrSchedule } from '../train/schedule';
import { trainSteps } from '../train/trainer';
import { observeTensors } from './observe';
import { type CnnQuantizeOptions, quantizeCnn, VIEW_OPS } from './quantize-cnn';

export interface QatOptions {
  /** Labelled training rows. */
  data: Dataset;
  epochs: number;
  /** Default 1e-4 (Adam) or 1e-3 (SGD): the model starts trained, small steps keep it there. */
  lr?: number;
  /** Default 'adam'. */
  optimizer?: 'adam' | 'sgd';
  /** Default cosine to 0 over the run. */
  lrSchedule?: LrSchedule;
  weightDecay?: number;
  batchSize?: number;
  /** Seeded random shifts of the images. */
  augment?: Augmentation;
  /** Seeds the batch order (default 0). */
  seed?: number;
}

/** Epilogue activations lowering fuses into a producing Conv/Add/Mul (the int8 clamp). */
const FUSED_CLAMPS = new Set(['Relu', 'Clip']);
const FUSING_OPS = new Set(['Conv', 'Add', 'Mul']);

/** Per node of the post-training int8 model `q`: where its trainable twin meets int8. */
export function fakeQuantPlan(q: Graph): Map<string, FakeQuantSpec> {
  const grids = q.activationQuant ?? {};
  const floats = new Set(Object.keys(JSON.parse(q.metadata['quantization.float32'] ?? '{}') as object));
  const readers = new Map<string, GraphNode[]>();
  for (const n of q.nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
  const outputs = new Set(q.outputs);
  const int8 = (n: GraphNode) => !floats.has(n.name) && !VIEW_OPS.has(n.op);
  const fusedAway = (n: GraphNode) => {
    const r = readers.get(n.outputs[0]) ?? [];
    return FUSING_OPS.has(n.op) && r.length === 1 && FUSED_CLAMPS.has(r[0].op) && !outputs.has(n.outputs[0]);
  };
  /** Tensors held in int8 (or never materialized: fused into their reader's clamp). */
  const rounded = new Set<string>();
  const plan = new Map<string, FakeQuantSpec>();
  for (const node of q.nodes) {
    if (VIEW_OPS.has(node.op)) {
      if (rounded.has(node.inputs[0])) rounded.add(node.outputs[0]);
      continue;
    }
    if (!int8(node)) continue;
    const weights = new Map<string, number>();
    const w = node.op === 'Conv' || node.op === 'QDense' ? q.tensors[node.inputs[1]] : undefined;
    if (w?.dtype === 'int8' && w.quant) weights.set(w.name, w.quant.bits);
    const acts = node.inputs.filter((name) => name && !q.tensors[name]?.data);
    const spec: FakeQuantSpec = { inputs: acts.map((name) => (rounded.has(name) ? undefined : grids[name])), weights };
    if (node.op === 'Conv' && weights.size && node.inputs[2])
      spec.bias = { name: node.inputs[2], weight: node.inputs[1], inputScale: grids[node.inputs[0]].scale };
    // QDense writes float32 (or requantizes straight into the next QDense's input grid, which that layer rounds to anyway).
    const out = node.outputs[0];
    if (node.op !== 'QDense') {
      rounded.add(out);
      if (!fusedAway(node)) spec.output = grids[out];
    }
    plan.set(node.name, spec);
  }
  return plan;
}

/** Post-training int8 quantization of `graph`, then `qat.epochs` of training with fake quantization, then int8 again on the same grids. */
export function quantizeAwareTraining(graph: Graph, options: CnnQuantizeOptions, qat: QatOptions): Graph {
  checkQat(qat);
  const folded = foldConvBatchNorms(graph);
  const ranges = options.ranges ?? observeTensors(folded, options.calibration, options.observer);
  const ptq = quantizeCnn(folded, { ...options, ranges });
  const plan = fakeQuantPlan(ptq);
  const net = new GraphNetwork(folded, {
    seed: qat.seed ?? 0,
    wrapOp: (op) => {
      const spec = plan.get(op.node.name);
      return spec ? fakeQuantOp(op, spec) : op;
    },
  });
  const optimizer = qat.optimizer ?? 'adam';
  const steps = trainSteps(net, qat.data, {
    epochs: qat.epochs,
    batchSize: qat.batchSize ?? 64,
    optimizer,
    lr: qat.lr ?? (optimizer === 'adam' ? 1e-4 : 1e-3),
    weightDecay: qat.weightDecay,
    schedule: qat.lrSchedule ?? { kind: 'cosine' },
    augment: qat.augment,
    seed: qat.seed ?? 0,
  });
  while (!steps.next().done);
  const q = quantizeCnn(net.toGraph(), { ...options, ranges });
  q.metadata['quantization.qat'] =
    `${qat.epochs} epochs of quantization-aware training on ${qat.data.shape[0]} rows (${optimizer}, grids frozen at calibration)`;
  return q;
}

function checkQat(qat: QatOptions): void {
  if (!qat || typeof qat !== 'object') throw new EdgeOptError('E_ARGUMENT', 'quantize: qat must be an object { data, epochs, ... }');
  if (!qat.data?.labels) throw new EdgeOptError('E_ARGUMENT', 'quantize: qat.data must be a labelled Dataset');
  if (!(Number.isInteger(qat.epochs) && qat.epochs >= 1))
    throw new EdgeOptError('E_ARGUMENT', `quantize: qat.epochs must be a positive integer, got ${String(qat.epochs)}`);
  if (qat.lr !== undefined && !(qat.lr > 0 && Number.isFinite(qat.lr)))
    throw new EdgeOptError('E_ARGUMENT', `quantize: qat.lr must be a positive number, got ${String(qat.lr)}`);
  if (qat.optimizer !== undefined && qat.optimizer !== 'adam' && qat.optimizer !== 'sgd')
    throw new EdgeOptError('E_ARGUMENT', `quantize: qat.optimizer must be 'adam' or 'sgd', got '${String(qat.optimizer)}'`);
}
