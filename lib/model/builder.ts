/**
 * GraphBuilder: write CNNs (and MLPs) in code, with seeded random weights or
 * given ones, as PyTorch modules would be. Each method adds one IR node and
 * returns the name of its output; build() validates the graph.
 *
 *   const b = new GraphBuilder('tiny', [3, 32, 32], { seed: 1 });
 *   let x = b.conv(b.input, 16, 3, { stride: 2, pad: 1 });
 *   x = b.batchNorm(x); x = b.relu6(x);
 *   x = b.flatten(b.globalAveragePool(x));
 *   const g = b.build(b.dense(x, 10));
 */
import { seededRandom } from '../train/random';
import type { AttrValue, Graph, GraphNode, Tensor } from './graph';
import { validateGraph } from './graph';
import type { OpType } from './op-schema';
import { nodeShapes, type ValueShape } from './shapes';

export interface ConvOptions {
  stride?: number;
  pad?: number | [number, number, number, number];
  dilation?: number;
  groups?: number;
  bias?: boolean;
  /** Given weights [out, in/groups, k, k] (else He-uniform from the seed). */
  weight?: Float32Array;
}

export class GraphBuilder {
  readonly input = 'input';
  private readonly nodes: GraphNode[] = [];
  private readonly tensors: Record<string, Tensor> = {};
  private readonly shapes = new Map<string, ValueShape>();
  private readonly random: () => number;
  private count = 0;

  /** `shape`: one input's per-image shape (NCHW for images). */
  constructor(
    readonly name: string,
    private readonly inputShape: number[],
    options: { seed?: number } = {},
  ) {
    this.random = seededRandom(options.seed ?? 1);
    this.shapes.set(this.input, { dims: [...inputShape], folded: false });
  }

  /** Per-image shape of a value built so far. */
  shape(x: string): number[] {
    return this.shapes.get(x)!.dims;
  }

  private uniform(n: number, bound: number): Float32Array {
    return Float32Array.from({ length: n }, () => (this.random() * 2 - 1) * bound);
  }

  private weight(base: string, shape: number[], data?: Float32Array, fanIn = shape.slice(1).reduce((a, b) => a * b, 1)): string {
    const name = `${base}.weight`;
    this.tensors[name] = {
      name,
      dtype: 'float32',
      shape,
      data:
        data ??
        this.uniform(
          shape.reduce((a, b) => a * b, 1),
          Math.sqrt(6 / fanIn),
        ),
    };
    return name;
  }

  private param(name: string, values: Float32Array): string {
    this.tensors[name] = { name, dtype: 'float32', shape: [values.length], data: values };
    return name;
  }

  /** Adds a node; its output(s) are named after it. */
  op(op: OpType, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, base = op.toLowerCase()): string[] {
    const name = `${base}${++this.count}`;
    const outs = outputs === 1 ? [name] : Array.from({ length: outputs }, (_, i) => `${name}_${i}`);
    const node: GraphNode = { name, op, inputs, outputs: outs, attrs };
    const graph = { name: this.name, inputs: [], outputs: [], tensors: this.tensors, nodes: this.nodes, metadata: {} };
    nodeShapes(graph, node, this.shapes).forEach((s, i) => this.shapes.set(outs[i], s));
    this.nodes.push(node);
    return outs;
  }

  conv(x: string, outC: number, k: number, o: ConvOptions = {}): string {
    const inC = this.shape(x)[0];
    const groups = o.groups ?? 1;
    const base = `conv${this.count + 1}`;
    const pad = o.pad ?? 0;
    const inputs = [x, this.weight(base, [outC, inC / groups, k, k], o.weight)];
    if (o.bias) inputs.push(this.param(`${base}.bias`, this.uniform(outC, 0.1)));
    const attrs: Record<string, AttrValue> = {
      strides: [o.stride ?? 1, o.stride ?? 1],
      pads: typeof pad === 'number' ? [pad, pad, pad, pad] : pad,
      dilations: [o.dilation ?? 1, o.dilation ?? 1],
      group: groups,
    };
    return this.op('Conv', inputs, attrs, 1, 'conv')[0];
  }

  /**
   * BatchNormalization with seeded statistics near identity (scale ~1, mean ~0, var ~1), or exactly
   * identity (`fresh`: scale 1, shift 0, mean 0, var 1, as PyTorch initializes a layer to train).
   */
  batchNorm(x: string, options: { fresh?: boolean } = {}): string {
    const c = this.shape(x)[0];
    const base = `bn${this.count + 1}`;
    const near = (center: number, spread: number) =>
      Float32Array.from({ length: c }, () => center + (options.fresh ? 0 : (this.random() * 2 - 1) * spread));
    const inputs = [
      x,
      this.param(`${base}.scale`, near(1, 0.2)),
      this.param(`${base}.bias`, near(0, 0.1)),
      this.param(`${base}.mean`, near(0, 0.1)),
      this.param(`${base}.var`, near(1, 0.2)),
    ];
    return this.op('BatchNormalization', inputs, { epsilon: 1e-5 }, 1, 'bn')[0];
  }

  /**
   * GroupNormalization with `groups` groups of channels (scale 1, shift 0): it normalizes each
   * image on its own, so unlike BatchNormalization it has no batch statistics to disagree between
   * federated clients with different labels (Hsieh et al. 2020).
   */
  groupNorm(x: string, groups: number): string {
    const c = this.shape(x)[0];
    const base = `gn${this.count + 1}`;
    const inputs = [x, this.param(`${base}.scale`, new Float32Array(c).fill(1)), this.param(`${base}.bias`, new Float32Array(c))];
    return this.op('GroupNormalization', inputs, { epsilon: 1e-5, numGroups: groups }, 1, 'gn')[0];
  }

  relu(x: string): string {
    return this.op('Relu', [x])[0];
  }

  relu6(x: string): string {
    return this.op('Clip', [x], { min: 0, max: 6 }, 1, 'relu6')[0];
  }

  hardSwish(x: string): string {
    return this.op('HardSwish', [x])[0];
  }

  sigmoid(x: string): string {
    return this.op('Sigmoid', [x])[0];
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b])[0];
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b])[0];
  }

  maxPool(x: string, k: number, stride = k, pad = 0, ceil = false): string {
    return this.op('MaxPool', [x], {
      kernelShape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      ...(ceil ? { ceilMode: true } : {}),
    })[0];
  }

  averagePool(x: string, k: number, stride = k, pad = 0, countIncludePad = false): string {
    return this.op('AveragePool', [x], {
      kernelShape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      ...(countIncludePad ? { countIncludePad: true } : {}),
    })[0];
  }

  globalAveragePool(x: string): string {
    return this.op('GlobalAveragePool', [x], {}, 1, 'gap')[0];
  }

  flatten(x: string): string {
    return this.op('Flatten', [x], { axis: 1 })[0];
  }

  concat(xs: string[], axis = 1): string {
    return this.op('Concat', xs, { axis })[0];
  }

  dense(x: string, n: number, options: { activation?: 'none' | 'relu' } = {}): string {
    const k = this.shape(x)[this.shape(x).length - 1];
    const base = `fc${this.count + 1}`;
    const inputs = [x, this.weight(base, [n, k]), this.param(`${base}.bias`, this.uniform(n, 0.1))];
    return this.op('Dense', inputs, { activation: options.activation ?? 'none' }, 1, 'fc')[0];
  }

  build(...outputs: string[]): Graph {
    return validateGraph({
      name: this.name,
      inputs: [{ name: this.input, shape: [null, ...this.inputShape] }],
      outputs,
      tensors: { ...this.tensors },
      nodes: [...this.nodes],
      metadata: { source: 'edgeopt GraphBuilder' },
    });
  }
}

/** The normalization after each Conv of mobilenet-mini: BatchNormalization, GroupNormalization, or none (Convs with biases). */
export type MiniNorm = 'batch' | 'group' | 'none';

/** Groups of mobilenet-mini's GroupNormalization: 8 divides every width (16 to 120 channels, 2 to 15 per group). */
export const MINI_GROUPS = 8;

/**
 * The architecture of the bundled mobilenet-mini-1x28x28 with fresh weights to train: stem 3x3 conv 16,
 * four inverted-residual blocks (expand 1x1, depthwise 3x3, project 1x1; two strided, two residual;
 * ReLU6 then HardSwish), a 1x1 head conv 64, GlobalAveragePool, Linear(64, classes). Every conv is
 * followed by `norm` (default BatchNormalization, identity-initialized, trained with batch statistics;
 * `batchNorm: false` is `norm: 'none'`; 'group': GroupNormalization with `groups` groups, default 8).
 */
export function mobileNetMini(
  options: { classes?: number; seed?: number; channels?: number; batchNorm?: boolean; norm?: MiniNorm; groups?: number } = {},
): Graph {
  const b = new GraphBuilder('mobilenet-mini-1x28x28', [options.channels ?? 1, 28, 28], { seed: options.seed ?? 0 });
  const norm = options.norm ?? (options.batchNorm === false ? 'none' : 'batch');
  const normalize = (x: string) =>
    norm === 'batch' ? b.batchNorm(x, { fresh: true }) : norm === 'group' ? b.groupNorm(x, options.groups ?? MINI_GROUPS) : x;
  const cba = (x: string, c: number, k: number, act: 'relu6' | 'hardswish' | 'none', stride = 1, groups = 1) => {
    const y = normalize(b.conv(x, c, k, { stride, pad: (k - 1) / 2, groups, bias: norm === 'none' }));
    return act === 'relu6' ? b.relu6(y) : act === 'hardswish' ? b.hardSwish(y) : y;
  };
  let x = cba(b.input, 16, 3, 'relu6');
  let inC = 16;
  for (const [hidden, out, stride, act] of [
    [48, 24, 2, 'relu6'],
    [72, 24, 1, 'relu6'],
    [72, 40, 2, 'hardswish'],
    [120, 40, 1, 'hardswish'],
  ] as const) {
    let y = cba(x, hidden, 1, act);
    y = cba(y, hidden, 3, act, stride, hidden);
    y = cba(y, out, 1, 'none');
    x = stride === 1 && inC === out ? b.add(x, y) : y;
    inC = out;
  }
  x = b.flatten(b.globalAveragePool(cba(x, 64, 1, 'hardswish')));
  return b.build(b.dense(x, options.classes ?? 10));
}

/** torchvision's MobileNetV2 (width 1.0) with seeded weights and BatchNormalization kept as nodes. */
export function mobileNetV2(options: { size?: number; classes?: number; seed?: number } = {}): Graph {
  const size = options.size ?? 224;
  const b = new GraphBuilder(`mobilenetv2-${size}`, [3, size, size], { seed: options.seed ?? 7 });
  const cbr = (x: string, c: number, k: number, stride = 1, groups = 1) =>
    b.relu6(b.batchNorm(b.conv(x, c, k, { stride, pad: (k - 1) / 2, groups })));
  let x = cbr(b.input, 32, 3, 2);
  let inC = 32;
  const settings = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  for (const [t, c, n, s] of settings) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = inC * t;
      let y = t === 1 ? x : cbr(x, hidden, 1);
      y = cbr(y, hidden, 3, stride, hidden);
      y = b.batchNorm(b.conv(y, c, 1));
      x = stride === 1 && inC === c ? b.add(x, y) : y;
      inC = c;
    }
  }
  x = cbr(x, 1280, 1);
  x = b.flatten(b.globalAveragePool(x));
  return b.build(b.dense(x, options.classes ?? 1000));
}

/** torchvision's ResNet-18 with seeded weights (basic blocks, 1x1 downsample, max pool stem). */
export function resNet18(options: { size?: number; classes?: number; seed?: number } = {}): Graph {
  const size = options.size ?? 224;
  const b = new GraphBuilder(`resnet18-${size}`, [3, size, size], { seed: options.seed ?? 11 });
  let x = b.relu(b.batchNorm(b.conv(b.input, 64, 7, { stride: 2, pad: 3 })));
  x = b.maxPool(x, 3, 2, 1);
  let inC = 64;
  for (const [c, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ]) {
    for (let i = 0; i < 2; i++) {
      const s = i === 0 ? stride : 1;
      let y = b.relu(b.batchNorm(b.conv(x, c, 3, { stride: s, pad: 1 })));
      y = b.batchNorm(b.conv(y, c, 3, { pad: 1 }));
      const skip = s !== 1 || inC !== c ? b.batchNorm(b.conv(x, c, 1, { stride: s })) : x;
      x = b.relu(b.add(y, skip));
      inC = c;
    }
  }
  x = b.flatten(b.globalAveragePool(x));
  return b.build(b.dense(x, options.classes ?? 1000));
}
