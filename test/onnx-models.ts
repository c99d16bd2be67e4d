/** Builds small ONNX models in tests (through protobufjs and the ONNX schema) to cover what the fixtures don't. */
import { AttrType, DataType, encodeModelProto } from '../lib/model/onnx/proto';

export type Obj = Record<string, unknown>;

export function attr(name: string, v: number | number[] | Obj, type?: number): Obj {
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if (typeof v === 'object') return { name, type: AttrType.TENSOR, t: v };
  if (type === AttrType.FLOAT || !Number.isInteger(v)) return { name, type: AttrType.FLOAT, f: v };
  return { name, type: AttrType.INT, i: v };
}

export function node(op: string, input: string[], output: string[], attribute: Obj[] = [], extra: Obj = {}): Obj {
  return { op_type: op, name: `${op}_${output[0]}`, input, output, attribute, ...extra };
}

/** float32 as raw_data. */
export function f32(name: string, dims: number[], values: ArrayLike<number>): Obj {
  const a = Float32Array.from(values);
  return { name, dims, data_type: DataType.FLOAT, raw_data: new Uint8Array(a.buffer) };
}
/** float32 in the typed float_data field. */
export function f32Typed(name: string, dims: number[], values: ArrayLike<number>): Obj {
  return { name, dims, data_type: DataType.FLOAT, float_data: Array.from(values) };
}
/** float16 as raw_data (values must be exactly representable). */
export function f16(name: string, dims: number[], values: ArrayLike<number>): Obj {
  const bits = Uint16Array.from(values, toHalf);
  return { name, dims, data_type: DataType.FLOAT16, raw_data: new Uint8Array(bits.buffer) };
}
export function i64(name: string, dims: number[], values: number[]): Obj {
  return { name, dims, data_type: DataType.INT64, int64_data: values };
}
export function i64Raw(name: string, dims: number[], values: number[]): Obj {
  const a = BigInt64Array.from(values, (v) => BigInt(v));
  return { name, dims, data_type: DataType.INT64, raw_data: new Uint8Array(a.buffer) };
}
export function ints(name: string, dims: number[], values: number[], dataType: number, raw = false): Obj {
  if (!raw) return { name, dims, data_type: dataType, int32_data: values };
  const a =
    dataType === DataType.INT8 ? Int8Array.from(values) : dataType === DataType.UINT8 ? Uint8Array.from(values) : Int32Array.from(values);
  return { name, dims, data_type: dataType, raw_data: new Uint8Array(a.buffer) };
}

function toHalf(v: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const exp = Math.floor(Math.log2(a));
  const frac = Math.round((a / 2 ** exp - 1) * 1024);
  return sign | ((exp + 15) << 10) | frac;
}

export interface ModelSpec {
  nodes: Obj[];
  initializers?: Obj[];
  input?: { name?: string; shape: Array<number | string> };
  output?: string;
  opset?: number;
  ir?: number;
  graph?: Obj;
}

export function valueInfo(name: string, shape: Array<number | string>): Obj {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}

export function buildModel(spec: ModelSpec): Uint8Array {
  const input = spec.input ?? { shape: ['batch', 4] };
  return encodeModelProto({
    ir_version: spec.ir ?? 8,
    producer_name: 'edgeopt-test',
    opset_import: [{ domain: '', version: spec.opset ?? 13 }],
    graph: {
      name: 'test',
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: [valueInfo(input.name ?? 'x', input.shape)],
      output: [valueInfo(spec.output ?? 'y', ['batch'])],
      ...spec.graph,
    },
  });
}
