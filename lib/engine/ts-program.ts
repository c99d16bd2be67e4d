/**
 * The TypeScript executor of a Program: one arena per run (batch x the planned
 * per-image bytes), the caller's buffers bound to the program's inputs and
 * outputs, each op run over the whole batch by the TS twin of the native
 * kernels (lib/backends/ts/cnn for the CNN ops; the dense path for Dense/QDense,
 * whose int8 results are bit-identical to native).
 */
import { packCsrS8, TS_CSR_MAX_DENSITY } from '../backends/ts/sparse';
import { biasActF32, tsKernels } from '../backends/ts/kernels';
import * as cnn from '../backends/ts/cnn';
import type { SparsePolicy } from '../backends/native/addon';
import { qdenseLayer, type QDenseLayer, runQDense } from './qdense';
import type { Program, ProgramOp } from './program';

type Elements = Float32Array | Int8Array | Uint8Array | Int32Array;
type TypedView = (t: number) => Elements;
const ELEMENTS = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array } as const;

/** About this many multiply-adds run between two yields to the event loop (a few ms of TS work). */
const YIELD_WORK = 1 << 21;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Multiply-adds (or element operations) of one op per image: sizes yields and the inline rule. */
export function opWork(p: Program, op: ProgramOp): number {
  const el = (t: number) => p.tensors[t].shape.reduce((a, b) => a * b, 1);
  switch (op.op) {
    case 'conv':
    case 'qconv':
      return op.outH * op.outW * op.outC * op.kh * op.kw * (op.inC / op.groups);
    case 'dense':
    case 'qdense':
      return op.m * op.n * op.k;
    case 'concat':
      return el(op.y);
    case 'split':
      return el(op.x);
    default:
      return el(op.y);
  }
}

export class TsProgram {
  private readonly qdense = new Map<ProgramOp, QDenseLayer>();
  /** Per op, the kernel name placement reports (Dense/QDense only). */
  readonly kernels: Array<string | undefined>;

  constructor(
    readonly program: Program,
    sparse: SparsePolicy = 'auto',
  ) {
    const data = (t: number) => program.tensors[t].data;
    this.kernels = program.ops.map((op) => {
      if (op.op === 'dense') return 'dense-ts';
      if (op.op !== 'qdense') return undefined;
      const layer = qdenseLayer(op, data);
      if (!layer.groupSize && sparse !== 'never') {
        const csr = packCsrS8(layer.weight, layer.n, layer.k);
        if (sparse === 'always' || csr.density <= TS_CSR_MAX_DENSITY) layer.csr = csr;
      }
      this.qdense.set(op, layer);
      return layer.csr ? 'sparse-ts' : 'dense-ts';
    });
  }

  /** Runs `batch` images; `inputs` per program input, batch-major in that input's layout. */
  run(inputs: Float32Array[], batch: number): Float32Array[] {
    const state = this.start(inputs, batch);
    for (const op of this.program.ops) this.runOp(op, state.view, batch);
    return state.outputs;
  }

  /**
   * The same off the event loop's back: an op of more than YIELD_WORK runs in chunks of
   * images with a yield before each (every op is per image, so chunks never change results).
   */
  async runAsync(inputs: Float32Array[], batch: number): Promise<Float32Array[]> {
    const state = this.start(inputs, batch);
    for (const op of this.program.ops) {
      const perImage = Math.max(1, opWork(this.program, op));
      const chunk = Math.max(1, Math.floor(YIELD_WORK / perImage));
      if (chunk >= batch) {
        this.runOp(op, state.view, batch);
        continue;
      }
      for (let first = 0; first < batch; first += chunk) {
        await yieldToLoop();
        this.runOp(op, (t) => state.images(t, first, Math.min(chunk, batch - first)), Math.min(chunk, batch - first));
      }
    }
    return state.outputs;
  }

  private start(
    inputs: Float32Array[],
    batch: number,
  ): { view: TypedView; images: (t: number, first: number, count: number) => Elements; outputs: Float32Array[] } {
    const p = this.program;
    const arena = new ArrayBuffer(batch * p.arenaBytes);
    const bound = new Map<number, Float32Array>();
    p.inputs.forEach((inp, i) => bound.set(p.tensors[inp.tensor].alias ?? inp.tensor, inputs[i]));
    const outputs = p.outputs.map((o) => {
      const root = p.tensors[o.tensor].alias ?? o.tensor;
      if (!bound.has(root)) bound.set(root, new Float32Array((batch * p.tensors[root].bytes!) / 4));
      return bound.get(root)!;
    });
    const view = (t: number): Elements => {
      const tensor = p.tensors[t];
      if (tensor.data) return tensor.data;
      const root = tensor.alias ?? t;
      const ext = bound.get(root);
      if (ext) return ext;
      const r = p.tensors[root];
      const Type = ELEMENTS[tensor.dtype];
      return new Type(arena, batch * r.offset!, (batch * r.bytes!) / Type.BYTES_PER_ELEMENT);
    };
    /** Images [first, first + count) of tensor t (a constant is the same for every image). */
    const images = (t: number, first: number, count: number): Elements => {
      const all = view(t);
      if (p.tensors[t].data) return all;
      const per = all.length / batch;
      return all.subarray(first * per, (first + count) * per);
    };
    return { view, images, outputs };
  }

  private runOp(op: ProgramOp, typed: TypedView, batch: number): void {
    const view = typed as (t: number) => Float32Array;
    const i8 = typed as (t: number) => Int8Array;
    const i32 = typed as (t: number) => Int32Array;
    switch (op.op) {
      case 'quantize':
        cnn.int8.quantizeS8(view(op.x), i8(op.y), op.scale, op.zeroPoint);
        return;
      case 'dequantize':
        cnn.int8.dequantizeS8(i8(op.x), view(op.y), op.scale, op.zeroPoint);
        return;
      case 'qconv':
        cnn.int8.qconv2d(op, i8(op.x), i8(op.weight), i32(op.bias), i32(op.multipliers), i32(op.shifts), i8(op.y), batch);
        return;
      case 'qlut':
        cnn.int8.qlut(i8(op.x), i8(op.y), i8(op.table));
        return;
      case 'qbinary':
        cnn.int8.qbinary(op, i8(op.a), i8(op.b), i8(op.y));
        return;
      case 'qmaxpool':
      case 'qavgpool':
        cnn.int8.qpool2d(op, i8(op.x), i8(op.y), batch);
        return;
      case 'qglobalavgpool':
        cnn.int8.qglobalAvgPool(op, i8(op.x), i8(op.y), batch);
        return;
      case 'qconcat':
        cnn.int8.qconcat(op, op.inputs.map(i8), i8(op.y), batch * op.outer);
        return;
      case 'conv':
        cnn.conv2d(op, view(op.x), view(op.weight), op.bias !== undefined ? view(op.bias) : undefined, op.act, view(op.y), batch);
        return;
      case 'dense': {
        const rows = batch * op.m;
        const y = tsKernels.gemmF32(view(op.x), rows, op.k, view(op.weight), op.n);
        const bias = op.bias !== undefined ? view(op.bias) : null;
        biasActF32(y, rows, op.n, bias, op.act.kind === 'relu');
        if (op.act.kind !== 'relu' && op.act.kind !== 'none') cnn.activation(y, y, op.act);
        view(op.y).set(y);
        return;
      }
      case 'qdense':
        view(op.y).set(runQDense(this.qdense.get(op)!, view(op.x), batch * op.m));
        return;
      case 'maxpool':
      case 'avgpool':
        cnn.pool2d(op.op, op, view(op.x), view(op.y), batch);
        return;
      case 'globalavgpool':
      case 'globalmaxpool':
        cnn.globalPool(op.op, view(op.x), view(op.y), op.h * op.w, op.c, batch);
        return;
      case 'binary': {
        // The batch is one more leading dim: activations advance by their per-image size, constants do not.
        const perImage = (t: number) => (this.program.tensors[t].data ? 0 : this.program.tensors[t].shape.reduce((a, b) => a * b, 1));
        cnn.binary(
          op.fn,
          [batch, ...op.shape],
          [perImage(op.a), ...op.aStrides],
          [perImage(op.b), ...op.bStrides],
          view(op.a),
          view(op.b),
          view(op.y),
          op.act,
        );
        return;
      }
      case 'unary':
        cnn.activation(view(op.x), view(op.y), op.act);
        return;
      case 'softmax':
        cnn.softmax(view(op.x), view(op.y), batch * op.outer, op.axis, op.inner);
        return;
      case 'concat':
        cnn.concat(op.inputs.map(view), view(op.y), batch * op.outer, op.sizes);
        return;
      case 'split':
        cnn.split(view(op.x), op.outputs.map(view), batch * op.outer, op.sizes);
        return;
      case 'pad':
        cnn.pad(view(op.x), view(op.y), [batch, ...op.inShape], [0, ...op.begin], [0, ...op.end], op.value);
        return;
      case 'transpose':
        cnn.transpose(view(op.x), view(op.y), [batch, ...op.inShape], [0, ...op.perm.map((p) => p + 1)]);
        return;
      case 'reducemean':
        cnn.reduceMean(view(op.x), view(op.y), batch * op.outer, op.reduce, op.inner);
        return;
      case 'lrn':
        cnn.lrn(view(op.x), view(op.y), batch * op.h * op.w, op.c, op.size, op.alpha, op.beta, op.bias);
        return;
      case 'groupnorm':
        cnn.groupNorm(op, view(op.x), view(op.weight), view(op.bias), view(op.y), batch);
        return;
    }
  }
}
