/**
 * Update compression with the optimizer's own kernels: int8 is
 * kernels().quantizeSymmetric (per row, as the quantize pass does) and top-k
 * is kernels().pruneMask keeping the largest |v| (as the prune pass does).
 * Error feedback (Lin et al., Deep Gradient Compression): what a message
 * could not carry is added to the next round's delta, so nothing is lost for good.
 */
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import type { EncodedTensor } from './codec';
import type { Tensors } from './params';

export type Compression = { kind: 'none' } | { kind: 'int8' } | { kind: 'topk'; fraction: number };

/** 'none' | 'int8' | 'topk:<fraction>' */
export function parseCompression(spec: string): Compression {
  if (spec === 'none' || spec === 'int8') return { kind: spec };
  const m = /^topk:(\d*\.?\d+)$/.exec(spec);
  const fraction = m ? Number(m[1]) : NaN;
  if (!(fraction > 0 && fraction <= 1))
    throw new EdgeOptError('E_ARGUMENT', `compression must be none, int8 or topk:<fraction in (0, 1]>, got '${spec}'`);
  return { kind: 'topk', fraction };
}

export function compressionName(c: Compression): string {
  return c.kind === 'topk' ? `topk:${c.fraction}` : c.kind;
}

function encodeOne(name: string, shape: number[], v: Float32Array, c: Compression): { encoded: EncodedTensor; decoded: Float32Array } {
  const k = kernels();
  if (c.kind === 'int8') {
    // One scale per output channel of Dense and Conv weights ([out, ...]), one for vectors.
    const [rows, cols] = shape.length >= 2 ? [shape[0], v.length / shape[0]] : [1, v.length];
    const { q, scales } = k.quantizeSymmetric(v, rows, cols, 8, rows > 1);
    return { encoded: { name, shape, encoding: 'int8', parts: [scales, q] }, decoded: k.dequantizeS8(q, rows, cols, scales) };
  }
  if (c.kind === 'topk') {
    const keepCount = Math.max(1, Math.ceil(v.length * c.fraction));
    const { keep } = k.pruneMask(v, v.length - keepCount);
    const idx = new Uint32Array(keepCount);
    const vals = new Float32Array(keepCount);
    const decoded = new Float32Array(v.length);
    let j = 0;
    for (let i = 0; i < v.length && j < keepCount; i++) {
      if (keep[i]) {
        idx[j] = i;
        vals[j++] = decoded[i] = v[i];
      }
    }
    return { encoded: { name, shape, encoding: 'topk', parts: [idx, vals] }, decoded };
  }
  return { encoded: { name, shape, encoding: 'f32', parts: [v] }, decoded: v };
}

/** Per-client state: the residual of earlier rounds (error feedback). */
export class DeltaCompressor {
  private residual: Tensors = {};

  compress(delta: Tensors, shapes: Record<string, number[]>, c: Compression): EncodedTensor[] {
    return Object.entries(delta).map(([name, d]) => {
      if (c.kind === 'none') return encodeOne(name, shapes[name], d, c).encoded;
      const r = this.residual[name];
      const v = r ? d.map((x, i) => x + r[i]) : d;
      const { encoded, decoded } = encodeOne(name, shapes[name], v, c);
      this.residual[name] = v.map((x, i) => x - decoded[i]);
      return encoded;
    });
  }
}
