/**
 * The wire format of federated messages: 'EOFL', a uint32 LE header length, a
 * JSON header { meta, tensors: [{ name, shape, encoding, bytes, ... }] }, then
 * each tensor's bytes in order. Encodings:
 *   f32   float32 values
 *   int8  float32 scales (one per output row of a tensor of rank >= 2 — Dense [out, in], Conv [out, in, kh, kw] — else one) + int8 values
 *   topk  uint32 indices + float32 values of the k kept entries (the rest are 0)
 * decodeFrame checks every size and index before it allocates or reads.
 */
import { EdgeOptError } from '../errors';
import { parseJsonGuarded } from '../util/json-guard';
import type { Tensors } from './params';

const MAGIC = 0x4c464f45; // 'EOFL' little-endian
const MAX_HEADER = 1 << 20;
const MAX_ELEMENTS = 1 << 28;
/** A frame header has depth 4 and about 10 values per tensor. */
const HEADER_JSON_LIMITS = { maxDepth: 16, maxValues: 100_000 };

export type Encoding = 'f32' | 'int8' | 'topk';

export interface EncodedTensor {
  name: string;
  shape: number[];
  encoding: Encoding;
  /** f32: values; int8: scales then q; topk: indices then values. */
  parts: Array<Float32Array | Int8Array | Uint32Array>;
}

interface TensorHeader {
  name: string;
  shape: number[];
  encoding: Encoding;
  bytes: number;
  /** int8: number of scales; topk: number of kept entries. */
  count?: number;
}

export function encodeFrame(meta: Record<string, unknown>, tensors: EncodedTensor[]): Buffer {
  const headers: TensorHeader[] = tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    encoding: t.encoding,
    bytes: t.parts.reduce((s, p) => s + p.byteLength, 0),
    ...(t.encoding === 'f32' ? {} : { count: t.parts[0].length }),
  }));
  const json = Buffer.from(JSON.stringify({ meta, tensors: headers }), 'utf8');
  const total = 8 + json.length + headers.reduce((s, h) => s + h.bytes, 0);
  const out = Buffer.alloc(total);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(json.length, 4);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const t of tensors) {
    for (const p of t.parts) {
      Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(out, pos);
      pos += p.byteLength;
    }
  }
  return out;
}

export function f32Tensors(values: Tensors, shapes: Record<string, number[]>): EncodedTensor[] {
  return Object.entries(values).map(([name, data]) => ({ name, shape: shapes[name], encoding: 'f32', parts: [data] }));
}

export interface DecodedFrame {
  meta: Record<string, unknown>;
  tensors: Array<{ name: string; shape: number[]; encoding: Encoding; data: Float32Array }>;
}

/** Parses and expands a frame to dense float32 tensors (int8 dequantized, top-k scattered). */
export function decodeFrame(
  bytes: Uint8Array,
  dequantize: (q: Int8Array, rows: number, cols: number, scales: Float32Array) => Float32Array,
): DecodedFrame {
  const fail = (msg: string): never => {
    throw new EdgeOptError('E_FORMAT', `federated message: ${msg}`);
  };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || buf.readUInt32LE(0) !== MAGIC) fail('does not start with the EOFL magic');
  const headerLen = buf.readUInt32LE(4);
  if (headerLen > MAX_HEADER || 8 + headerLen > buf.length) fail(`header length ${headerLen} is out of range`);
  let header: { meta?: unknown; tensors?: unknown };
  try {
    header = parseJsonGuarded(buf.toString('utf8', 8, 8 + headerLen), HEADER_JSON_LIMITS, (m) => fail(`header: ${m}`)) as typeof header;
  } catch (err) {
    if (err instanceof EdgeOptError) throw err;
    return fail(`header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header.meta !== 'object' || header.meta === null || !Array.isArray(header.tensors))
    fail('header needs meta and tensors');
  let pos = 8 + headerLen;
  const take = (n: number, what: string): Buffer => {
    if (!(Number.isSafeInteger(n) && n >= 0) || pos + n > buf.length) fail(`${what} runs past the end of the message`);
    const b = Buffer.from(buf.subarray(pos, pos + n)); // a copy: aligned, and detached from the request
    pos += n;
    return b;
  };
  const tensors = (header.tensors as TensorHeader[]).map((h) => {
    const name = String(h?.name);
    const shape = h?.shape;
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 4 || !shape.every((d) => Number.isSafeInteger(d) && d > 0))
      fail(`tensor '${name}' has an invalid shape`);
    const size = shape.reduce((a: number, d: number) => a * d, 1);
    if (size > MAX_ELEMENTS) fail(`tensor '${name}' is too large`);
    const f32 = (b: Buffer) => new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    let data: Float32Array;
    if (h.encoding === 'f32') {
      if (h.bytes !== size * 4) fail(`tensor '${name}' has ${h.bytes} bytes for ${size} float32 values`);
      data = f32(take(h.bytes, name));
    } else if (h.encoding === 'int8') {
      const rows = shape.length >= 2 ? shape[0] : 1;
      if (h.count !== rows && h.count !== 1) fail(`tensor '${name}' has ${h.count} scales for ${rows} rows`);
      if (h.bytes !== h.count! * 4 + size) fail(`tensor '${name}' has ${h.bytes} bytes for int8 values and scales`);
      const scales = f32(take(h.count! * 4, name));
      const qb = take(size, name);
      data = dequantize(new Int8Array(qb.buffer, qb.byteOffset, size), rows, size / rows, scales);
    } else if (h.encoding === 'topk') {
      const k = h.count!;
      if (!(Number.isSafeInteger(k) && k >= 0 && k <= size) || h.bytes !== k * 8) fail(`tensor '${name}' has a bad top-k count or size`);
      const ib = take(k * 4, name);
      const idx = new Uint32Array(ib.buffer, ib.byteOffset, k);
      const vals = f32(take(k * 4, name));
      data = new Float32Array(size);
      for (let i = 0; i < k; i++) {
        if (idx[i] >= size) fail(`tensor '${name}' has top-k index ${idx[i]} outside 0..${size - 1}`);
        data[idx[i]] = vals[i];
      }
    } else {
      return fail(`tensor '${name}' has unknown encoding '${String(h.encoding)}'`);
    }
    return { name, shape: shape as number[], encoding: h.encoding, data };
  });
  if (pos !== buf.length) fail(`${buf.length - pos} trailing bytes`);
  return { meta: header.meta as Record<string, unknown>, tensors };
}
