/**
 * TEMPORARY plain-TypeScript CNN kernels for the Program executor, until the
 * kernels helper's TS twin (lib/backends/ts/cnn) lands; same semantics
 * (program.ts), not bit-exact with the native tables.
 */
import type { Activation, ConvOp, LrnOp, PadOp, PoolOp, TransposeOp } from '../../engine/program';

const f32 = Math.fround;

export function activate(v: number, a: Activation): number {
  switch (a.kind) {
    case 'none':
      return v;
    case 'relu':
      return v < 0 ? 0 : v;
    case 'leakyrelu':
      return v < 0 ? f32(a.alpha * v) : v;
    case 'clip':
      return Math.min(a.max, Math.max(a.min, v));
    case 'hardsigmoid':
      return Math.min(1, Math.max(0, f32(f32(a.alpha * v) + a.beta)));
    case 'hardswish':
      return f32(v * Math.min(1, Math.max(0, f32(f32(v * f32(1 / 6)) + 0.5))));
    case 'sigmoid':
      return f32(1 / (1 + Math.exp(-v)));
    case 'tanh':
      return f32(Math.tanh(v));
  }
}

export function activationF32(x: Float32Array, y: Float32Array, a: Activation): void {
  for (let i = 0; i < x.length; i++) y[i] = activate(x[i], a);
}

export function conv(op: ConvOp, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, y: Float32Array, batch: number): void {
  const { inH, inW, inC, outH, outW, outC, kh, kw, groups } = op;
  const cpg = inC / groups;
  const opg = outC / groups;
  for (let b = 0; b < batch; b++) {
    const xo = b * inH * inW * inC;
    const yo = b * outH * outW * outC;
    for (let oy = 0; oy < outH; oy++)
      for (let ox = 0; ox < outW; ox++)
        for (let o = 0; o < outC; o++) {
          const g = Math.floor(o / opg);
          let acc = 0;
          for (let i = 0; i < kh; i++) {
            const iy = oy * op.strideH - op.padTop + i * op.dilationH;
            if (iy < 0 || iy >= inH) continue;
            for (let j = 0; j < kw; j++) {
              const ix = ox * op.strideW - op.padLeft + j * op.dilationW;
              if (ix < 0 || ix >= inW) continue;
              const xi = xo + (iy * inW + ix) * inC + g * cpg;
              const wi = ((o * kh + i) * kw + j) * cpg;
              for (let c = 0; c < cpg; c++) acc = f32(acc + f32(x[xi + c] * w[wi + c]));
            }
          }
          if (bias) acc = f32(acc + bias[o]);
          y[yo + (oy * outW + ox) * outC + o] = activate(acc, op.act);
        }
  }
}

export function pool(op: PoolOp, x: Float32Array, y: Float32Array, batch: number): void {
  const { inH, inW, c, outH, outW, kh, kw } = op;
  const max = op.op === 'maxpool';
  for (let b = 0; b < batch; b++)
    for (let oy = 0; oy < outH; oy++)
      for (let ox = 0; ox < outW; ox++)
        for (let ch = 0; ch < c; ch++) {
          let acc = max ? -Infinity : 0;
          let count = 0;
          let padded = 0;
          for (let i = 0; i < kh; i++) {
            const iy = oy * op.strideH - op.padTop + i * op.dilationH;
            for (let j = 0; j < kw; j++) {
              const ix = ox * op.strideW - op.padLeft + j * op.dilationW;
              if (iy >= -op.padTop && iy < inH + op.padBottom && ix >= -op.padLeft && ix < inW + op.padRight) padded++;
              if (iy < 0 || iy >= inH || ix < 0 || ix >= inW) continue;
              const v = x[((b * inH + iy) * inW + ix) * c + ch];
              acc = max ? (v > acc ? v : acc) : f32(acc + v);
              count++;
            }
          }
          y[((b * outH + oy) * outW + ox) * c + ch] = max ? acc : f32(acc / (op.countIncludePad ? padded : count));
        }
}

export function globalPool(max: boolean, x: Float32Array, y: Float32Array, batch: number, pixels: number, c: number): void {
  for (let b = 0; b < batch; b++)
    for (let ch = 0; ch < c; ch++) {
      let acc = max ? -Infinity : 0;
      for (let p = 0; p < pixels; p++) {
        const v = x[(b * pixels + p) * c + ch];
        acc = max ? (v > acc ? v : acc) : f32(acc + v);
      }
      y[b * c + ch] = max ? acc : f32(acc / pixels);
    }
}

const BINARY = {
  add: (a: number, b: number) => f32(a + b),
  sub: (a: number, b: number) => f32(a - b),
  mul: (a: number, b: number) => f32(a * b),
  div: (a: number, b: number) => f32(a / b),
};

/** y (contiguous, shape) = act(a fn b) with element strides per dim. */
export function binary(
  fn: keyof typeof BINARY,
  shape: number[],
  a: Float32Array,
  aStrides: number[],
  b: Float32Array,
  bStrides: number[],
  y: Float32Array,
  act: Activation,
): void {
  const f = BINARY[fn];
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const total = y.length;
  let ai = 0;
  let bi = 0;
  for (let i = 0; i < total; i++) {
    y[i] = activate(f(a[ai], b[bi]), act);
    for (let d = rank - 1; d >= 0; d--) {
      ai += aStrides[d];
      bi += bStrides[d];
      if (++idx[d] < shape[d]) break;
      ai -= aStrides[d] * shape[d];
      bi -= bStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function softmax(x: Float32Array, y: Float32Array, outer: number, axis: number, inner: number): void {
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * axis + k) * inner + i;
      let m = -Infinity;
      for (let k = 0; k < axis; k++) m = x[at(k)] > m ? x[at(k)] : m;
      let s = 0;
      for (let k = 0; k < axis; k++) {
        const e = f32(Math.exp(f32(x[at(k)] - m)));
        y[at(k)] = e;
        s = f32(s + e);
      }
      for (let k = 0; k < axis; k++) y[at(k)] = f32(y[at(k)] / s);
    }
}

export function reduceMean(x: Float32Array, y: Float32Array, outer: number, axis: number, inner: number): void {
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let k = 0; k < axis; k++) s = f32(s + x[(o * axis + k) * inner + i]);
      y[o * inner + i] = f32(s / axis);
    }
}

export function lrn(op: LrnOp, x: Float32Array, y: Float32Array, batch: number): void {
  const pixels = batch * op.h * op.w;
  const { c, size } = op;
  for (let p = 0; p < pixels; p++)
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let i = Math.max(0, ch - Math.floor((size - 1) / 2)); i <= Math.min(c - 1, ch + Math.floor(size / 2)); i++)
        s = f32(s + f32(x[p * c + i] * x[p * c + i]));
      y[p * c + ch] = f32(x[p * c + ch] / f32(Math.pow(f32(op.bias + f32(f32(op.alpha / size) * s)), op.beta)));
    }
}

export function concat(inputs: Float32Array[], sizes: number[], y: Float32Array, outer: number): void {
  const total = sizes.reduce((a, b) => a + b, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    inputs.forEach((x, i) => {
      y.set(x.subarray(o * sizes[i], (o + 1) * sizes[i]), at);
      at += sizes[i];
    });
  }
}

export function split(x: Float32Array, sizes: number[], outputs: Float32Array[], outer: number): void {
  const total = sizes.reduce((a, b) => a + b, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    outputs.forEach((y, i) => {
      y.set(x.subarray(at, at + sizes[i]), o * sizes[i]);
      at += sizes[i];
    });
  }
}

/** Pad over a batch: the batch is one more (unpadded) leading dim. */
export function pad(op: PadOp, x: Float32Array, y: Float32Array, batch: number): void {
  const inShape = [batch, ...op.inShape];
  const begin = [0, ...op.begin];
  const outShape = inShape.map((d, i) => d + begin[i] + (i ? op.end[i - 1] : 0));
  y.fill(op.value);
  const rank = inShape.length;
  const outStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) outStrides[i] = outStrides[i + 1] * outShape[i + 1];
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < x.length; i++) {
    let o = 0;
    for (let d = 0; d < rank; d++) o += (idx[d] + begin[d]) * outStrides[d];
    y[o] = x[i];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < inShape[d]) break;
      idx[d] = 0;
    }
  }
}

export function transpose(op: TransposeOp, x: Float32Array, y: Float32Array, batch: number): void {
  const inShape = [batch, ...op.inShape];
  const perm = [0, ...op.perm.map((p) => p + 1)];
  const rank = inShape.length;
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * inShape[i + 1];
  const outShape = perm.map((p) => inShape[p]);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < y.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d] * inStrides[perm[d]];
    y[o] = x[src];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
}
