/**
 * Lowering of int8 nodes (graphs with static activation grids, Graph.activationQuant)
 * to the int8 Program ops (program.ts QConvOp ... QConcatOp). A node runs in int8
 * when every activation it reads and writes has a grid (and a Conv's weights are
 * symmetric int8); everything real-valued is computed here once: int32 biases,
 * Q31 multipliers and shifts, activation lookup tables, clamps. Other nodes stay
 * float32 and Lowering puts quantize/dequantize ops where the two meet.
 */
import { activate } from '../backends/ts/cnn/activation';
import { clamp, f32, roundEven } from '../backends/ts/numerics';
import { quantizeBias, quantizeMultiplier } from '../backends/ts/requantize';
import type { ActivationQuant, GraphNode } from '../model/graph';
import { imageAxis } from '../model/shapes';
import { NHWC, product } from './layout';
import { activationOf, type Epilogue, type Lowering, type Out, toOhwi, windowFields } from './lower';
import type { Activation } from './program';

const INT8_OPS = new Set([
  'Conv',
  'Relu',
  'LeakyRelu',
  'Clip',
  'HardSigmoid',
  'HardSwish',
  'Sigmoid',
  'Tanh',
  'Add',
  'Mul',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Concat',
]);

/** TFLite's left shift of both Add operands before rescaling them to a common scale. */
const ADD_LEFT_SHIFT = 20;

const same = (a: ActivationQuant, b: ActivationQuant) => a.scale === b.scale && a.zeroPoint === b.zeroPoint;

/** Whether `node` runs in int8 (program.ts int8 ops) in this graph. */
export function int8Node(L: Lowering, node: GraphNode): boolean {
  const grids = L.g.activationQuant;
  if (!grids || !INT8_OPS.has(node.op)) return false;
  const acts = node.inputs.filter((n) => n && !L.g.tensors[n]?.data);
  if (![...acts, ...node.outputs].every((n) => grids[n])) return false;
  switch (node.op) {
    case 'Conv': {
      const q = L.g.tensors[node.inputs[1]].quant;
      return L.g.tensors[node.inputs[1]].dtype === 'int8' && q?.scheme === 'symmetric' && !q.groupSize && !q.zeroPoint;
    }
    case 'Add':
    case 'Mul': {
      if (acts.length !== 2) return false;
      const [a, b] = acts.map((n) => L.values.get(n));
      return !!a && !!b && a.dims.join() === b.dims.join() && a.folded === b.folded;
    }
    case 'MaxPool':
    case 'AveragePool':
      return same(grids[node.inputs[0]], grids[node.outputs[0]]);
    case 'Concat':
      return acts.length === node.inputs.length;
    default:
      return true;
  }
}

/** The int8 bounds of a fused ReLU/ReLU6 (or none) on grid q. */
function clampRange(act: Activation, q: ActivationQuant): { min: number; max: number } {
  const at = (v: number) => (v === Infinity ? 127 : v === -Infinity ? -128 : clamp(roundEven(f32(v / q.scale)) + q.zeroPoint, -128, 127));
  if (act.kind === 'relu') return { min: at(0), max: 127 };
  if (act.kind === 'clip') return { min: at(act.min), max: at(act.max) };
  return { min: -128, max: 127 };
}

/** Activations an int8 op's requantize epilogue fuses as a clamp. */
const clampable = (act: Activation) => act.kind === 'relu' || act.kind === 'clip';

/** The 256-entry int8 table of act from grid qin to grid qout: table[q + 128] = quantize(act(dequantize(q))). */
export function activationTable(act: Activation, qin: ActivationQuant, qout: ActivationQuant): Int8Array {
  const table = new Int8Array(256);
  for (let q = -128; q < 128; q++) {
    const y = activate(f32((q - qin.zeroPoint) * qin.scale), act);
    table[q + 128] = clamp(roundEven(f32(y / qout.scale)) + qout.zeroPoint, -128, 127);
  }
  return table;
}

/** Per-channel requantization constants (int32 tensors) for these real multipliers. */
function multiplierTensors(L: Lowering, name: string, reals: number[]): { multipliers: number; shifts: number } {
  const qm = reals.map(quantizeMultiplier);
  return {
    multipliers: L.typedConstant(
      `${name}::multipliers`,
      Int32Array.from(qm, (m) => m.m0),
      [qm.length],
    ),
    shifts: L.typedConstant(
      `${name}::shifts`,
      Int32Array.from(qm, (m) => m.shift),
      [qm.length],
    ),
  };
}

export function lowerInt8(L: Lowering, node: GraphNode, epilogue: Epilogue, out: Out): void {
  const grid = (name: string) => L.g.activationQuant![name];
  const a = node.attrs;
  switch (node.op) {
    case 'Conv': {
      const qin = grid(node.inputs[0]);
      const x = L.image(node, 0, qin);
      const [inC, inH, inW] = x.dims;
      const wt = L.g.tensors[node.inputs[1]];
      const [outC, , kh, kw] = wt.shape as number[];
      const ws = wt.quant!.scale;
      const wScale = (c: number) => ws[ws.length === 1 ? 0 : c];
      const fused = epilogue(node, undefined, clampable);
      const qout = grid(fused.out);
      const bias = node.inputs[2] ? (L.g.tensors[node.inputs[2]].data as Float32Array) : undefined;
      const biasQ = Int32Array.from({ length: outC }, (_, c) => (bias ? quantizeBias(bias[c], qin.scale, wScale(c)) : 0));
      const y = out(fused.out, NHWC, qout);
      L.ops.push({
        op: 'qconv',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        weight: L.typedConstant(`${wt.name}/ohwi`, toOhwi(wt.data as Int8Array, wt.shape as number[]), [
          outC,
          kh,
          kw,
          wt.shape[1] as number,
        ]),
        bias: L.typedConstant(`${node.name}::bias-int32`, biasQ, [outC]),
        ...multiplierTensors(
          L,
          node.name,
          Array.from({ length: outC }, (_, c) => (qin.scale * wScale(c)) / qout.scale),
        ),
        inC,
        outC,
        ...windowFields(node, inH, inW, kh, kw),
        groups: (a.group as number | undefined) ?? 1,
        inputZeroPoint: qin.zeroPoint,
        outputZeroPoint: qout.zeroPoint,
        ...clampRange(fused.act, qout),
      });
      return;
    }
    case 'MaxPool':
    case 'AveragePool': {
      const q = grid(node.inputs[0]);
      const x = L.image(node, 0, q);
      const [c, inH, inW] = x.dims;
      const [kh, kw] = a.kernelShape as number[];
      const y = out(node.outputs[0], NHWC, q);
      L.ops.push({
        op: node.op === 'MaxPool' ? 'qmaxpool' : 'qavgpool',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        c,
        ...windowFields(node, inH, inW, kh, kw),
        countIncludePad: a.countIncludePad === true,
      });
      return;
    }
    case 'GlobalAveragePool': {
      const qin = grid(node.inputs[0]);
      const qout = grid(node.outputs[0]);
      const x = L.image(node, 0, qin);
      const [c, h, w] = x.dims;
      const y = out(node.outputs[0], NHWC, qout);
      const qm = quantizeMultiplier(qin.scale / (qout.scale * h * w));
      L.ops.push({
        op: 'qglobalavgpool',
        node: node.name,
        x: x.tensor,
        y: y.tensor,
        h,
        w,
        c,
        inputZeroPoint: qin.zeroPoint,
        outputZeroPoint: qout.zeroPoint,
        multiplier: qm.m0,
        shift: qm.shift,
      });
      return;
    }
    case 'Add':
    case 'Mul': {
      const [qa, qb] = [grid(node.inputs[0]), grid(node.inputs[1])];
      const first = L.real(L.stored(node, 0), node.name);
      const xa = L.asInt8(first, qa, `${node.name}/in0`);
      const xb = L.asInt8(L.inOrder(L.stored(node, 1), xa.perm, `${node.name}/in1`), qb, `${node.name}/in1`);
      const fused = epilogue(node, undefined, clampable);
      const qy = grid(fused.out);
      const y = out(fused.out, xa.perm, qy);
      const rescale = { leftShift: 0, aMultiplier: 0, aShift: 0, bMultiplier: 0, bShift: 0 };
      let real = (qa.scale * qb.scale) / qy.scale;
      if (node.op === 'Add') {
        const twiceMax = 2 * Math.max(qa.scale, qb.scale);
        const ma = quantizeMultiplier(qa.scale / twiceMax);
        const mb = quantizeMultiplier(qb.scale / twiceMax);
        Object.assign(rescale, { leftShift: ADD_LEFT_SHIFT, aMultiplier: ma.m0, aShift: ma.shift, bMultiplier: mb.m0, bShift: mb.shift });
        real = twiceMax / (2 ** ADD_LEFT_SHIFT * qy.scale);
      }
      const m = quantizeMultiplier(real);
      L.ops.push({
        op: 'qbinary',
        node: node.name,
        fn: node.op === 'Add' ? 'add' : 'mul',
        a: xa.tensor,
        b: xb.tensor,
        y: y.tensor,
        count: product(L.tensors[y.tensor].shape),
        aZeroPoint: qa.zeroPoint,
        bZeroPoint: qb.zeroPoint,
        outputZeroPoint: qy.zeroPoint,
        ...rescale,
        multiplier: m.m0,
        shift: m.shift,
        ...clampRange(fused.act, qy),
      });
      return;
    }
    case 'Concat': {
      const qy = grid(node.outputs[0]);
      const first = L.real(L.stored(node, 0), node.name);
      const xs = node.inputs.map((name, i) =>
        L.asInt8(L.inOrder(L.stored(node, i), first.perm, `${node.name}/in${i}`), grid(name), `${node.name}/in${i}`),
      );
      const axis = imageAxis(L.g, node, first, a.axis as number);
      const y = out(node.outputs[0], first.perm, qy);
      const p = first.perm.indexOf(axis);
      const qs = node.inputs.map((name) => grid(name));
      const qm = qs.map((q) => quantizeMultiplier(q.scale / qy.scale));
      L.ops.push({
        op: 'qconcat',
        node: node.name,
        inputs: xs.map((x) => x.tensor),
        y: y.tensor,
        outer: product(L.tensors[y.tensor].shape.slice(0, p)),
        sizes: xs.map((x) => product(L.tensors[x.tensor].shape.slice(p))),
        rescale: qs.map((q) => !same(q, qy)),
        zeroPoints: qs.map((q) => q.zeroPoint),
        inputMultipliers: qm.map((m) => m.m0),
        inputShifts: qm.map((m) => m.shift),
        outputZeroPoint: qy.zeroPoint,
      });
      return;
    }
    default: {
      // An activation between two grids: a lookup table.
      const qin = grid(node.inputs[0]);
      const qout = grid(node.outputs[0]);
      const x = L.asInt8(L.stored(node, 0), qin, node.name);
      const y = out(node.outputs[0], x.perm, qout);
      const table = L.typedConstant(`${node.name}::table`, activationTable(activationOf(node)!, qin, qout), [256]);
      L.ops.push({ op: 'qlut', node: node.name, x: x.tensor, y: y.tensor, count: product(L.tensors[y.tensor].shape), table });
    }
  }
}
