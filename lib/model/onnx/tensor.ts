/**
 * ONNX TensorProto <-> constant arrays. Every size is checked against the
 * bytes actually present before anything is allocated, so a corrupt file
 * cannot make us allocate more than it holds.
 */
import { EdgeOptError } from '../../errors';
import { DataType, type Int64, type TensorProto, toNumber } from './proto';
import { fromHalfBits } from '../../util/float16';

/** A constant value: floats (fp32/fp16/double) as Float32Array, integers as Float64Array (exact to 2^53). */
export interface ConstTensor {
  dims: number[];
  /** float types: Float32Array; int8 / uint8: their own arrays (no 8-byte widening of big weights); int32 / int64: Float64Array. */
  data: Float32Array | Float64Array | Int8Array | Uint8Array;
  dataType: number;
}

/** Upper bound for one tensor's element count (1 GiB of float32). */
export const MAX_ELEMENTS = 1 << 28;

const ELEMENT_BYTES: Record<number, number> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
};

const TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'double',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

export function typeName(dataType: number): string {
  return TYPE_NAMES[dataType] ?? `data_type ${dataType}`;
}

export function isFloatType(dataType: number): boolean {
  return dataType === DataType.FLOAT || dataType === DataType.FLOAT16 || dataType === DataType.DOUBLE;
}

/** Validated dims: non-negative safe integers whose product stays under MAX_ELEMENTS. */
export function checkDims(raw: Int64[], what: string): { dims: number[]; count: number } {
  const dims = raw.map((d) => toNumber(d));
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new EdgeOptError('E_FORMAT', `${what}: invalid dimension ${d} in [${dims}]`);
    count *= d;
    if (count > MAX_ELEMENTS) throw new EdgeOptError('E_FORMAT', `${what}: shape [${dims}] has more than ${MAX_ELEMENTS} elements`);
  }
  return { dims, count };
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function fromRaw(raw: Uint8Array, dataType: number, count: number, what: string): ConstTensor['data'] {
  const size = ELEMENT_BYTES[dataType];
  if (raw.length !== count * size)
    throw new EdgeOptError(
      'E_FORMAT',
      `${what}: raw_data has ${raw.length} bytes, ${count} ${typeName(dataType)} values need ${count * size}`,
    );
  // One copy into the array the graph keeps: a memcpy where the bytes already are the host's
  // (int8, uint8, float32 on little-endian hosts), else a conversion.
  if (dataType === DataType.INT8) return new Int8Array(raw.buffer, raw.byteOffset, count).slice();
  if (dataType === DataType.UINT8) return raw.slice();
  if (dataType === DataType.FLOAT && LITTLE_ENDIAN) {
    const f = new Float32Array(count);
    new Uint8Array(f.buffer).set(raw);
    return f;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = isFloatType(dataType) ? new Float32Array(count) : new Float64Array(count);
  for (let i = 0; i < count; i++) {
    switch (dataType) {
      case DataType.FLOAT:
        out[i] = view.getFloat32(i * 4, true);
        break;
      case DataType.FLOAT16:
        out[i] = fromHalfBits(view.getUint16(i * 2, true));
        break;
      case DataType.DOUBLE:
        out[i] = view.getFloat64(i * 8, true);
        break;
      case DataType.UINT8:
        out[i] = view.getUint8(i);
        break;
      case DataType.INT8:
        out[i] = view.getInt8(i);
        break;
      case DataType.INT32:
        out[i] = view.getInt32(i * 4, true);
        break;
      case DataType.INT64:
        out[i] = safeInt(view.getBigInt64(i * 8, true), what);
        break;
    }
  }
  return out;
}

function safeInt(v: bigint, what: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new EdgeOptError('E_FORMAT', `${what}: int64 value ${v} is out of range`);
  return n;
}

/** The typed field that holds this data type's values when raw_data is absent. */
function typedField(t: TensorProto): ArrayLike<number | Int64> {
  switch (t.data_type) {
    case DataType.FLOAT:
      return t.float_data;
    case DataType.DOUBLE:
      return t.double_data;
    case DataType.INT64:
      return t.int64_data;
    default:
      return t.int32_data; // int32, int8, uint8 and float16 (as its bit pattern)
  }
}

export function decodeTensor(t: TensorProto, what: string): ConstTensor {
  if (t.data_location === 1 || t.external_data.length) {
    throw new EdgeOptError(
      'E_FORMAT',
      `${what}: tensor data is stored in an external file; edgeopt reads self-contained .onnx files only (re-save with onnx.save_model(m, path, save_as_external_data=False))`,
    );
  }
  if (!(t.data_type in ELEMENT_BYTES)) {
    throw new EdgeOptError(
      'E_DTYPE',
      `${what}: ${typeName(t.data_type)} tensors are not supported (float32, float16, double, int8, uint8, int32, int64 are)`,
    );
  }
  const { dims, count } = checkDims(t.dims, what);
  if (t.raw_data.length || !typedField(t).length) {
    if (!t.raw_data.length && count) throw new EdgeOptError('E_FORMAT', `${what}: has ${count} elements but no data`);
    return { dims, dataType: t.data_type, data: fromRaw(t.raw_data, t.data_type, count, what) };
  }
  const src = typedField(t);
  if (src.length !== count) throw new EdgeOptError('E_FORMAT', `${what}: holds ${src.length} values for shape [${dims}] (${count})`);
  const out = isFloatType(t.data_type)
    ? new Float32Array(count)
    : t.data_type === DataType.INT8
      ? new Int8Array(count)
      : t.data_type === DataType.UINT8
        ? new Uint8Array(count)
        : new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const v = src[i];
    out[i] = t.data_type === DataType.FLOAT16 ? fromHalfBits((v as number) & 0xffff) : toNumber(v);
  }
  return { dims, dataType: t.data_type, data: out };
}

/** A TensorProto object for the encoder: float32/int8 as raw little-endian bytes, int64 in int64_data. */
export function encodeTensor(
  name: string,
  dims: number[],
  data: Float32Array | Int8Array | Int32Array | number[],
  dataType: number,
): Record<string, unknown> {
  if (dataType === DataType.INT64) return { name, dims, data_type: dataType, int64_data: Array.from(data) };
  const bytes =
    data instanceof Float32Array || data instanceof Int8Array || data instanceof Int32Array
      ? data
      : dataType === DataType.FLOAT
        ? Float32Array.from(data)
        : Int8Array.from(data);
  return { name, dims, data_type: dataType, raw_data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice() };
}
