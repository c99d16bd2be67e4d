/**
 * NumPy .npy files (format versions 1.0, 2.0, 3.0), plain or gzip-compressed
 * (.npy.gz). The header is a Python dict literal; it is parsed, not evaluated,
 * and every size is checked against the bytes present before anything is allocated.
 */
import { constants } from 'node:buffer';
import { gunzipSync, gzipSync } from 'node:zlib';
import { EdgeOptError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { readRegularFile } from '../util/read-file';

export type NpyArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

export interface Npy {
  /** NumPy descr without byte order, e.g. 'f4', 'u1', 'i8'. */
  dtype: string;
  shape: number[];
  data: NpyArray;
}

const CTORS: Record<string, { ctor: new (n: number) => NpyArray; size: number }> = {
  f4: { ctor: Float32Array, size: 4 },
  f8: { ctor: Float64Array, size: 8 },
  i1: { ctor: Int8Array, size: 1 },
  u1: { ctor: Uint8Array, size: 1 },
  b1: { ctor: Uint8Array, size: 1 },
  i2: { ctor: Int16Array, size: 2 },
  u2: { ctor: Uint16Array, size: 2 },
  i4: { ctor: Int32Array, size: 4 },
  u4: { ctor: Uint32Array, size: 4 },
  i8: { ctor: BigInt64Array, size: 8 },
  u8: { ctor: BigUint64Array, size: 8 },
};

const { MAX_LENGTH } = constants;

/** A gzip bomb stops here instead of exhausting memory. */
const MAX_GUNZIP_BYTES = 1 << 30;

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Parses .npy bytes (gunzipping first when they are gzip). `source` names the file in errors. */
export function parseNpy(input: Uint8Array, source = '<bytes>'): Npy {
  const fail = (msg: string): never => {
    throw new EdgeOptError('E_FORMAT', `${source}: ${msg}`);
  };
  let bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_GUNZIP_BYTES });
    } catch (err) {
      fail(`gzip data is corrupt (${(err as Error).message})`);
    }
  }
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) fail('not a .npy file (bad magic)');
  const major = bytes[6];
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}.${bytes[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) fail('truncated header');
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) fail(`header length ${headerLen} runs past the end of the file`);
  const header = bytes.toString(major === 3 ? 'utf8' : 'latin1', 8 + lenBytes, dataStart);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail(`header is not a NumPy dict: ${header.slice(0, 80)}`);
  if (fortran === 'True') fail('fortran_order arrays are not supported; save with np.ascontiguousarray');
  const order = descr![0];
  const code = descr!.slice(1);
  const kind = CTORS[code];
  if (!kind || !'<|='.includes(order) || (order === '|' && kind.size > 1)) fail(`unsupported dtype '${descr}' (little-endian numeric only)`);
  const shape = shapeText!.split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`invalid shape (${shapeText})`);
  const count = shape.reduce((a, d) => a * d, 1);
  const available = bytes.length - dataStart;
  if (!Number.isSafeInteger(count) || count * kind.size > available) {
    fail(`shape (${shape.join(', ')}) needs ${count * kind.size} bytes but the file has ${available}`);
  }
  const data = new kind.ctor(count);
  Buffer.from(data.buffer).set(bytes.subarray(dataStart, dataStart + count * kind.size));
  return { dtype: code, shape, data };
}

export function readNpy(path: string): Npy {
  return parseNpy(readRegularFile(path, MAX_LENGTH, '.npy file'), path);
}

const DESCR: Array<[new (...a: never[]) => NpyArray, string]> = [
  [Float32Array, '<f4'], [Float64Array, '<f8'], [Int8Array, '|i1'], [Uint8Array, '|u1'], [Int16Array, '<i2'],
  [Uint16Array, '<u2'], [Int32Array, '<i4'], [Uint32Array, '<u4'], [BigInt64Array, '<i8'], [BigUint64Array, '<u8'],
];

/** .npy (version 1.0) bytes for a typed array of the given shape; gzip when asked. */
export function encodeNpy(data: NpyArray, shape: number[], options: { gzip?: boolean } = {}): Buffer {
  const descr = DESCR.find(([c]) => data instanceof c)?.[1];
  if (!descr) throw new EdgeOptError('E_DTYPE', 'encodeNpy: unsupported array type');
  if (shape.reduce((a, d) => a * d, 1) !== data.length) throw new EdgeOptError('E_SHAPE', `encodeNpy: shape [${shape}] does not match ${data.length} values`);
  const shapeText = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shapeText}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  MAGIC.copy(head);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const out = Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
  return options.gzip ? gzipSync(out) : out;
}

/** Writes a .npy (.npy.gz when the name ends in .gz) atomically: a crash leaves the old file or the new one. */
export function writeNpy(path: string, data: NpyArray, shape: number[]): void {
  writeFileAtomic(path, encodeNpy(data, shape, { gzip: path.endsWith('.gz') }));
}
