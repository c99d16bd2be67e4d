/**
 * Request bodies to session feeds, and outputs to response bodies, for
 * `POST /v1/models/<id>:predict`:
 *
 * - JSON, named tensors: `{ "inputs": { "<name>": { "data": [...], "dims": [...] } } }` (data flat or
 *   nested; `shape` is accepted for `dims`; a bare nested array takes its dims from the nesting)
 *   -> `{ "outputs": { "<name>": { "dims": [...], "data": [...] } } }`.
 * - JSON, rows (TF Serving's row format): `{ "instances": [row, ...] }`, a row being a nested array
 *   (one-input models) or `{ "<name>": nested }` -> `{ "predictions": [row, ...] }`, a row being the
 *   flat output of a one-output model or `{ "<name>": [...] }`.
 * - Raw: `content-type: application/octet-stream`, the little-endian float32 (or uint8) values of the
 *   one input, with `x-edgeopt-dims: 1,784` (and optionally `x-edgeopt-dtype`, `x-edgeopt-input`)
 *   -> the float32 bytes of the one output with `x-edgeopt-dims` and `x-edgeopt-output` (JSON when
 *   the model has several outputs or the client accepts only application/json).
 */
import * as os from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { EdgeOptError } from '../errors';
import type { InferenceSession, SessionFeeds, SessionOutputs, TensorMetadata } from '../engine/session';

export type BodyForm = 'inputs' | 'instances' | 'raw';

export interface DecodedRequest {
  feeds: SessionFeeds;
  form: BodyForm;
}

export interface EncodedResponse {
  /** A JSON string (node writes headers and body in one call) or raw bytes. */
  body: string | Buffer;
  headers: Record<string, string>;
}

const bad = (message: string, code: 'E_ARGUMENT' | 'E_SHAPE' | 'E_DTYPE' | 'E_VALUE' | 'E_FORMAT' = 'E_ARGUMENT') =>
  new EdgeOptError(code, message);

/** A rectangular nested array of numbers as flat values and dims. */
export function flattenNested(x: unknown, where: string): { values: number[]; dims: number[] } {
  const dims: number[] = [];
  for (let level: unknown = x; Array.isArray(level); level = level[0]) dims.push(level.length);
  const values: number[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === dims.length) {
      if (typeof v !== 'number') throw bad(`${where}: expected a number, got ${v === null ? 'null' : typeof v}`, 'E_DTYPE');
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[depth]) throw bad(`${where}: the nested arrays are not rectangular`, 'E_SHAPE');
    for (const e of v) walk(e, depth + 1);
  };
  walk(x, 0);
  return { values, dims };
}

/** Numbers as the input's dtype: float32, or uint8 (integers 0..255 only). */
function typedValues(values: number[], meta: TensorMetadata, where: string): Float32Array | Uint8Array {
  if (meta.dtype === 'float32') return Float32Array.from(values);
  const i = values.findIndex((v) => !(Number.isInteger(v) && v >= 0 && v <= 255));
  if (i >= 0) throw bad(`${where} is uint8: value ${i} is ${values[i]}, not an integer 0..255`, 'E_VALUE');
  return Uint8Array.from(values);
}

function namedTensor(value: unknown, meta: TensorMetadata, where: string) {
  if (Array.isArray(value)) {
    const { values, dims } = flattenNested(value, where);
    return { data: typedValues(values, meta, where), dims };
  }
  if (!value || typeof value !== 'object') throw bad(`${where} must be { "data": [...], "dims": [...] } or a nested array`);
  const t = value as { data?: unknown; dims?: unknown; shape?: unknown };
  const dims = t.dims ?? t.shape;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d)))
    throw bad(`${where} needs "dims" as an array of integers`, 'E_SHAPE');
  const { values } = flattenNested(t.data, `${where}.data`);
  return { data: typedValues(values, meta, where), dims: dims as number[] };
}

function rowsToFeeds(rows: unknown[], session: InferenceSession): SessionFeeds {
  if (!rows.length) throw bad('"instances" is empty', 'E_SHAPE');
  const perInput = session.inputMetadata.map(() => [] as number[]);
  const rowDims: Array<number[] | null> = session.inputMetadata.map(() => null);
  rows.forEach((row, r) => {
    const single = session.inputNames.length === 1 && Array.isArray(row);
    if (!single && (!row || typeof row !== 'object' || Array.isArray(row)))
      throw bad(
        `instances[${r}] must be ${session.inputNames.length === 1 ? 'an array' : `an object with ${session.inputNames.join(', ')}`}`,
      );
    session.inputMetadata.forEach((meta, i) => {
      const where = `instances[${r}]${single ? '' : `.${meta.name}`}`;
      const value = single ? row : (row as Record<string, unknown>)[meta.name];
      if (value === undefined) throw bad(`${where} is missing (inputs: ${session.inputNames.join(', ')})`);
      const { values, dims } = flattenNested(Array.isArray(value) ? value : [value], where);
      if (rowDims[i] && rowDims[i]!.join() !== dims.join())
        throw bad(`${where} has dims [${dims}], instances[0] has [${rowDims[i]}]`, 'E_SHAPE');
      rowDims[i] = dims;
      for (const v of values) perInput[i].push(v);
    });
  });
  const feeds: SessionFeeds = {};
  session.inputMetadata.forEach((meta, i) => {
    feeds[meta.name] = { data: typedValues(perInput[i], meta, `input '${meta.name}'`), dims: [rows.length, ...rowDims[i]!] };
  });
  return feeds;
}

function rawToFeeds(body: Buffer, headers: IncomingHttpHeaders, session: InferenceSession): SessionFeeds {
  const name = header(headers, 'x-edgeopt-input') ?? (session.inputNames.length === 1 ? session.inputNames[0] : undefined);
  if (name === undefined) throw bad(`model '${session.id}' has several inputs (${session.inputNames.join(', ')}): send JSON`);
  const meta = session.inputMetadata.find((m) => m.name === name);
  if (!meta) throw bad(`model '${session.id}' has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
  if (session.inputNames.length !== 1) throw bad(`model '${session.id}' has several inputs (${session.inputNames.join(', ')}): send JSON`);
  const dimsText = header(headers, 'x-edgeopt-dims');
  if (!dimsText) throw bad('a raw body needs an x-edgeopt-dims header (e.g. "1,784")', 'E_SHAPE');
  const dims = dimsText.split(',').map((d) => Number(d.trim()));
  if (!dims.every((d) => Number.isInteger(d) && d > 0)) throw bad(`x-edgeopt-dims must be positive integers, got '${dimsText}'`, 'E_SHAPE');
  const dtype = header(headers, 'x-edgeopt-dtype') ?? meta.dtype;
  if (dtype !== meta.dtype) throw bad(`input '${name}' is ${meta.dtype}, the request says x-edgeopt-dtype ${dtype}`, 'E_DTYPE');
  const count = dims.reduce((a, d) => a * d, 1);
  const bytes = dtype === 'uint8' ? 1 : 4;
  if (body.length !== count * bytes)
    throw bad(`dims [${dims}] of ${dtype} need ${count * bytes} bytes, the body has ${body.length}`, 'E_SHAPE');
  const data = dtype === 'uint8' ? new Uint8Array(body) : float32FromLE(body, count);
  return { [name]: { data, dims } };
}

/** Little-endian float32 bytes as a Float32Array (a copy: the body may be unaligned). */
function float32FromLE(body: Buffer, count: number): Float32Array {
  if (os.endianness() === 'LE') return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + count * 4));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = body.readFloatLE(i * 4);
  return out;
}

function float32ToLE(data: Float32Array): Buffer {
  if (os.endianness() === 'LE') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 4);
  data.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function isRaw(headers: IncomingHttpHeaders): boolean {
  return (header(headers, 'content-type') ?? '').startsWith('application/octet-stream');
}

export function decodeRequest(body: Buffer, headers: IncomingHttpHeaders, session: InferenceSession): DecodedRequest {
  if (isRaw(headers)) return { feeds: rawToFeeds(body, headers, session), form: 'raw' };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad(`the body is not JSON (${(err as Error).message}); send JSON or application/octet-stream`, 'E_FORMAT');
  }
  const j = json as { inputs?: unknown; instances?: unknown } | null;
  if (j && typeof j === 'object' && Array.isArray(j.instances)) return { feeds: rowsToFeeds(j.instances, session), form: 'instances' };
  if (j && typeof j === 'object' && j.inputs && typeof j.inputs === 'object' && !Array.isArray(j.inputs)) {
    const inputs = j.inputs as Record<string, unknown>;
    const feeds: SessionFeeds = {};
    for (const [name, value] of Object.entries(inputs)) {
      const meta = session.inputMetadata.find((m) => m.name === name);
      if (!meta) throw bad(`model '${session.id}' has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
      feeds[name] = namedTensor(value, meta, `inputs.${name}`);
    }
    return { feeds, form: 'inputs' };
  }
  throw bad('the JSON body needs "inputs": { name: { data, dims } } or "instances": [row, ...]');
}

export function encodeResponse(out: SessionOutputs, form: BodyForm, acceptsRawOnly: boolean, session: InferenceSession): EncodedResponse {
  const names = session.outputNames;
  if (form === 'raw' && names.length === 1 && acceptsRawOnly) {
    const t = out[names[0]];
    return {
      body: float32ToLE(t.data),
      headers: { 'content-type': 'application/octet-stream', 'x-edgeopt-dims': t.dims.join(','), 'x-edgeopt-output': names[0] },
    };
  }
  let json: unknown;
  if (form === 'instances') {
    const rows = out[names[0]].dims[0];
    json = {
      predictions: Array.from({ length: rows }, (_, r) => {
        const rowOf = (name: string) => {
          const t = out[name];
          const size = t.data.length / rows;
          return Array.from(t.data.subarray(r * size, (r + 1) * size));
        };
        return names.length === 1 ? rowOf(names[0]) : Object.fromEntries(names.map((n) => [n, rowOf(n)]));
      }),
    };
  } else {
    json = { outputs: Object.fromEntries(names.map((n) => [n, { dims: out[n].dims, data: Array.from(out[n].data) }])) };
  }
  return { body: JSON.stringify(json), headers: { 'content-type': 'application/json' } };
}
