/**
 * The graph IR's ops and their attributes: one table says, per op, how many
 * inputs and outputs it has, which inputs must be constants, and each
 * attribute's type and range. validateGraph checks every node against it, so a
 * bad attribute is an E_FORMAT error naming the node and the attribute, and an
 * unknown op an E_UNSUPPORTED_OP error listing the supported ones. Semantics are
 * ONNX's (NCHW images, batch first); see graph.ts for the few differences.
 */
import { EdgeOptError } from '../errors';
import type { AttrValue, GraphNode } from './graph';

export const OP_TYPES = [
  'Dense',
  'QDense',
  'Conv',
  'BatchNormalization',
  'GroupNormalization',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Concat',
  'Pad',
  'Relu',
  'LeakyRelu',
  'Clip',
  'HardSigmoid',
  'HardSwish',
  'Sigmoid',
  'Tanh',
  'Softmax',
  'Flatten',
  'Reshape',
  'Transpose',
  'ReduceMean',
  'LRN',
  'Split',
  'Identity',
  'Dropout',
] as const;
export type OpType = (typeof OP_TYPES)[number];

/** Element-wise activation ops (fusable into the epilogue of the op before them). */
export const ACTIVATION_OPS: readonly OpType[] = ['Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh'];
export const BINARY_OPS: readonly OpType[] = ['Add', 'Sub', 'Mul', 'Div'];

type AttrKind = 'int' | 'float' | 'ints' | 'string' | 'bool';

interface AttrSpec {
  kind: AttrKind;
  /** Allowed strings, or a check returning why a value is bad. */
  values?: readonly string[];
  check?: (v: AttrValue) => string | undefined;
}

interface OpSpec {
  /** Number of inputs: exact, or [min, max]. */
  inputs: number | [number, number];
  outputs: number | [number, number];
  /** Input positions that must be initializers (weights, parameters). */
  constants?: number[];
  attrs?: Record<string, AttrSpec>;
}

const positive = (v: AttrValue) => (Number.isInteger(v) && (v as number) >= 1 ? undefined : 'must be an integer >= 1');
const int8Value = (v: AttrValue) =>
  Number.isInteger(v) && (v as number) >= -128 && (v as number) <= 127 ? undefined : 'must be an integer in -128..127';
const positiveScale = (v: AttrValue) => ((v as number) > 0 && Number.isFinite(v) ? undefined : 'must be a finite number > 0');
const finite = (v: AttrValue) => (Number.isFinite(v) ? undefined : 'must be a finite number');
const intList =
  (len: number | undefined, min: number) =>
  (v: AttrValue): string | undefined => {
    const a = v as number[];
    if (len !== undefined && a.length !== len) return `must have ${len} entries`;
    return a.every((d) => Number.isInteger(d) && d >= min) ? undefined : `must hold integers >= ${min}`;
  };
const AUTO_PAD = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'] as const;

const WINDOW: Record<string, AttrSpec> = {
  strides: { kind: 'ints', check: intList(2, 1) },
  dilations: { kind: 'ints', check: intList(2, 1) },
  pads: { kind: 'ints', check: intList(4, 0) },
  autoPad: { kind: 'string', values: AUTO_PAD },
};
const ACT_ATTR: Record<string, AttrSpec> = { activation: { kind: 'string', values: ['none', 'relu', 'sigmoid', 'tanh', 'relu6'] } };
const UNARY: OpSpec = { inputs: 1, outputs: 1 };
const BINARY: OpSpec = { inputs: 2, outputs: 1 };

export const OP_SPECS: Record<OpType, OpSpec> = {
  Dense: { inputs: [2, 3], outputs: 1, constants: [1, 2], attrs: ACT_ATTR },
  QDense: {
    inputs: [2, 3],
    outputs: 1,
    constants: [1, 2],
    attrs: {
      ...ACT_ATTR,
      activationQuant: { kind: 'string', values: ['dynamic', 'static'] },
      inputScale: { kind: 'float', check: positiveScale },
      inputZeroPoint: { kind: 'int', check: int8Value },
      outputScale: { kind: 'float', check: positiveScale },
      outputZeroPoint: { kind: 'int', check: int8Value },
    },
  },
  Conv: { inputs: [2, 3], outputs: 1, constants: [1, 2], attrs: { ...WINDOW, group: { kind: 'int', check: positive } } },
  BatchNormalization: { inputs: 5, outputs: 1, constants: [1, 2, 3, 4], attrs: { epsilon: { kind: 'float', check: finite } } },
  /** ONNX opset 21: scale and bias per channel; `numGroups` must divide the channels. */
  GroupNormalization: {
    inputs: 3,
    outputs: 1,
    constants: [1, 2],
    attrs: { epsilon: { kind: 'float', check: positiveScale }, numGroups: { kind: 'int', check: positive } },
  },
  MaxPool: { inputs: 1, outputs: 1, attrs: { ...WINDOW, kernelShape: { kind: 'ints', check: intList(2, 1) }, ceilMode: { kind: 'bool' } } },
  AveragePool: {
    inputs: 1,
    outputs: 1,
    attrs: {
      ...WINDOW,
      kernelShape: { kind: 'ints', check: intList(2, 1) },
      ceilMode: { kind: 'bool' },
      countIncludePad: { kind: 'bool' },
    },
  },
  GlobalAveragePool: UNARY,
  GlobalMaxPool: UNARY,
  Add: BINARY,
  Sub: BINARY,
  Mul: BINARY,
  Div: BINARY,
  Concat: { inputs: [1, 4096], outputs: 1, attrs: { axis: { kind: 'int' } } },
  Pad: { inputs: 1, outputs: 1, attrs: { pads: { kind: 'ints', check: intList(undefined, 0) }, value: { kind: 'float', check: finite } } },
  Relu: UNARY,
  LeakyRelu: { inputs: 1, outputs: 1, attrs: { alpha: { kind: 'float', check: finite } } },
  Clip: { inputs: 1, outputs: 1, attrs: { min: { kind: 'float' }, max: { kind: 'float' } } },
  HardSigmoid: { inputs: 1, outputs: 1, attrs: { alpha: { kind: 'float', check: finite }, beta: { kind: 'float', check: finite } } },
  HardSwish: UNARY,
  Sigmoid: UNARY,
  Tanh: UNARY,
  Softmax: { inputs: 1, outputs: 1, attrs: { axis: { kind: 'int' } } },
  Flatten: { inputs: 1, outputs: 1, attrs: { axis: { kind: 'int' } } },
  Reshape: { inputs: 1, outputs: 1, attrs: { shape: { kind: 'ints', check: intList(undefined, -1) } } },
  Transpose: { inputs: 1, outputs: 1, attrs: { perm: { kind: 'ints', check: intList(undefined, 0) } } },
  ReduceMean: { inputs: 1, outputs: 1, attrs: { axes: { kind: 'ints' }, keepdims: { kind: 'bool' } } },
  LRN: {
    inputs: 1,
    outputs: 1,
    attrs: {
      size: { kind: 'int', check: positive },
      alpha: { kind: 'float', check: finite },
      beta: { kind: 'float', check: finite },
      bias: { kind: 'float', check: finite },
    },
  },
  Split: { inputs: 1, outputs: [1, 4096], attrs: { axis: { kind: 'int' }, split: { kind: 'ints', check: intList(undefined, 0) } } },
  Identity: UNARY,
  /** `ratio` (default 0.5, ONNX's) applies in training only; inference is the identity. */
  Dropout: {
    inputs: 1,
    outputs: 1,
    attrs: { ratio: { kind: 'float', check: (v) => ((v as number) >= 0 && (v as number) < 1 ? undefined : 'must be in [0, 1)') } },
  },
};

function kindOf(v: AttrValue): AttrKind | undefined {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return 'ints';
  return undefined;
}

function between(n: number, want: number | [number, number]): boolean {
  return typeof want === 'number' ? n === want : n >= want[0] && n <= want[1];
}

/** Checks a node's op, arity and attributes; `isConstant` tells whether a tensor is an initializer. */
export function checkNodeSchema(model: string, node: GraphNode, isConstant: (name: string) => boolean): void {
  const where = `model '${model}': node '${node.name}' (${node.op})`;
  const spec = (OP_SPECS as Record<string, OpSpec | undefined>)[node.op];
  if (!spec || !Object.hasOwn(OP_SPECS, node.op))
    throw new EdgeOptError(
      'E_UNSUPPORTED_OP',
      `model '${model}': node '${node.name}' has op '${node.op}'; supported: ${OP_TYPES.join(', ')}`,
    );
  const fail = (msg: string): never => {
    throw new EdgeOptError('E_FORMAT', `${where} ${msg}`);
  };
  if (!Array.isArray(node.inputs) || !Array.isArray(node.outputs)) fail('lacks inputs or outputs');
  if (!between(node.inputs.length, spec.inputs)) fail(`has ${node.inputs.length} inputs (${JSON.stringify(spec.inputs)} expected)`);
  if (!between(node.outputs.length, spec.outputs)) fail(`has ${node.outputs.length} outputs (${JSON.stringify(spec.outputs)} expected)`);
  for (const i of spec.constants ?? []) {
    const name = node.inputs[i];
    if (name !== undefined && name !== '' && !isConstant(name)) fail(`input ${i} ('${name}') must be an initializer (constant)`);
  }
  if (!node.attrs || typeof node.attrs !== 'object') fail('has no attrs object');
  for (const [name, value] of Object.entries(node.attrs)) {
    const a = spec.attrs?.[name];
    if (!a) fail(`has unknown attribute '${name}'${spec.attrs ? ` (known: ${Object.keys(spec.attrs).join(', ')})` : ' (it takes none)'}`);
    const kind = kindOf(value);
    const ok = kind === a!.kind || (a!.kind === 'float' && kind === 'int');
    if (!ok) fail(`attribute '${name}' must be ${a!.kind}, got ${JSON.stringify(value)}`);
    if (a!.values && !a!.values.includes(value as string))
      fail(`attribute '${name}' is '${String(value)}'; one of ${a!.values.join(', ')}`);
    const why = a!.check?.(value);
    if (why) fail(`attribute '${name}' ${why}, got ${JSON.stringify(value)}`);
  }
}
