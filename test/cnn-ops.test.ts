/**
 * Every CNN op against a direct NCHW reference written here (plain loops over
 * ONNX semantics), on the backend of this run (npm test: default native table,
 * every other table, and the TS executor). Each graph puts the op behind a
 * 1x1 identity-like Conv where the op reads an image, so the engine's NHWC
 * layout, views and axis mapping are what is tested, not just the kernel.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { EdgeOptError } from '../lib/errors';
import type { AttrValue, Graph, GraphNode, Tensor } from '../lib/model/graph';
import { validateGraph } from '../lib/model/graph';
import { closeFloats, randomF32, rng, throwsCode } from './helpers';

type Arr = { d: number[]; v: Float32Array };
const size = (d: number[]) => d.reduce((a, b) => a * b, 1);

/** A graph: input [N, ...inShape] -> (1x1 conv with weights W when the input is an image) -> node -> outputs. */
function graph(
  inShape: number[],
  op: string,
  attrs: Record<string, AttrValue>,
  extra: { consts?: Record<string, Arr>; outputs?: number; inputs?: string[] } = {},
): Graph {
  const tensors: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(extra.consts ?? {})) tensors[name] = { name, dtype: 'float32', shape: a.d, data: a.v };
  const outputs = Array.from({ length: extra.outputs ?? 1 }, (_, i) => `y${i}`);
  const nodes: GraphNode[] = [{ name: op.toLowerCase(), op: op as GraphNode['op'], inputs: extra.inputs ?? ['x'], outputs, attrs }];
  return validateGraph({ name: op, inputs: [{ name: 'x', shape: [null, ...inShape] }], outputs, tensors, nodes, metadata: {} });
}

function run(g: Graph, x: Float32Array, shape: number[]): Float32Array[] {
  const e = new EdgeInferenceEngine();
  e.loadModelSync('m', g);
  const out = e.runModelSync('m', { x: { data: x, shape } });
  return g.outputs.map((o) => out[o].data);
}

const at = (d: number[], idx: number[]) => idx.reduce((o, i, k) => o * d[k] + i, 0);

function conv2d(x: Arr, w: Arr, b: Float32Array | null, s: number[], p: number[], dl: number[], groups: number): Arr {
  const [n, c, h, wd] = x.d;
  const [o, cpg, kh, kw] = w.d;
  const oh = Math.floor((h + p[0] + p[2] - dl[0] * (kh - 1) - 1) / s[0]) + 1;
  const ow = Math.floor((wd + p[1] + p[3] - dl[1] * (kw - 1) - 1) / s[1]) + 1;
  const y = new Float32Array(n * o * oh * ow);
  const opg = o / groups;
  for (let bi = 0; bi < n; bi++)
    for (let oc = 0; oc < o; oc++)
      for (let yy = 0; yy < oh; yy++)
        for (let xx = 0; xx < ow; xx++) {
          let acc = b ? b[oc] : 0;
          const g = Math.floor(oc / opg);
          for (let ci = 0; ci < cpg; ci++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const iy = yy * s[0] - p[0] + i * dl[0];
                const ix = xx * s[1] - p[1] + j * dl[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += x.v[at(x.d, [bi, g * cpg + ci, iy, ix])] * w.v[at(w.d, [oc, ci, i, j])];
              }
          y[at([n, o, oh, ow], [bi, oc, yy, xx])] = acc;
        }
  void c;
  return { d: [n, o, oh, ow], v: y };
}

function pool(x: Arr, max: boolean, k: number[], s: number[], p: number[], ceil: boolean, includePad: boolean): Arr {
  const [n, c, h, w] = x.d;
  const out = (inS: number, kk: number, st: number, b: number, e: number) => {
    const room = inS + b + e - kk;
    let o = (ceil ? Math.ceil(room / st) : Math.floor(room / st)) + 1;
    if (ceil && (o - 1) * st >= inS + b) o--;
    return o;
  };
  const oh = out(h, k[0], s[0], p[0], p[2]);
  const ow = out(w, k[1], s[1], p[1], p[3]);
  const y = new Float32Array(n * c * oh * ow);
  for (let bi = 0; bi < n; bi++)
    for (let ch = 0; ch < c; ch++)
      for (let yy = 0; yy < oh; yy++)
        for (let xx = 0; xx < ow; xx++) {
          let acc = max ? -Infinity : 0;
          let cnt = 0;
          let padded = 0;
          for (let i = 0; i < k[0]; i++)
            for (let j = 0; j < k[1]; j++) {
              const iy = yy * s[0] - p[0] + i;
              const ix = xx * s[1] - p[1] + j;
              if (iy < h + p[2] && ix < w + p[3]) padded++;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const v = x.v[at(x.d, [bi, ch, iy, ix])];
              acc = max ? Math.max(acc, v) : acc + v;
              cnt++;
            }
          y[at([n, c, oh, ow], [bi, ch, yy, xx])] = max ? acc : acc / (includePad ? padded : cnt);
        }
  return { d: [n, c, oh, ow], v: y };
}

/** numpy broadcasting of two arrays (right-aligned). */
function broadcast(a: Arr, b: Arr, fn: (x: number, y: number) => number): Arr {
  const rank = Math.max(a.d.length, b.d.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [da, db] = [pad(a.d), pad(b.d)];
  const d = da.map((x, i) => Math.max(x, db[i]));
  const v = new Float32Array(size(d));
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < v.length; o++) {
    v[o] = fn(
      a.v[
        at(
          da,
          idx.map((i, k) => (da[k] === 1 ? 0 : i)),
        )
      ],
      b.v[
        at(
          db,
          idx.map((i, k) => (db[k] === 1 ? 0 : i)),
        )
      ],
    );
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < d[k]) break;
      idx[k] = 0;
    }
  }
  return { d, v };
}

function transpose(x: Arr, perm: number[]): Arr {
  const d = perm.map((p) => x.d[p]);
  const v = new Float32Array(x.v.length);
  const idx = new Array<number>(d.length).fill(0);
  for (let o = 0; o < v.length; o++) {
    const src = new Array<number>(d.length);
    perm.forEach((p, k) => (src[p] = idx[k]));
    v[o] = x.v[at(x.d, src)];
    for (let k = d.length - 1; k >= 0; k--) {
      if (++idx[k] < d[k]) break;
      idx[k] = 0;
    }
  }
  return { d, v };
}

/** [outer][axis][inner] around `axis` of dims d. */
const around = (d: number[], axis: number) => [size(d.slice(0, axis)), d[axis], size(d.slice(axis + 1))];

function softmax(x: Arr, axis: number): Arr {
  const [outer, n, inner] = around(x.d, axis);
  const v = new Float32Array(x.v.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const ids = Array.from({ length: n }, (_, k) => (o * n + k) * inner + i);
      const m = Math.max(...ids.map((j) => x.v[j]));
      const e = ids.map((j) => Math.exp(x.v[j] - m));
      const s = e.reduce((a, b) => a + b);
      ids.forEach((j, k) => (v[j] = e[k] / s));
    }
  return { d: x.d, v };
}

const rand = (d: number[], seed: number, scale = 1): Arr => ({ d, v: randomF32(size(d), rng(seed), scale) });
const check = (got: Float32Array, want: Arr, what: string) => closeFloats(got, want.v, { abs: 1e-4, rel: 1e-4 }, what);

test('Conv: kernel 1/3/5, odd sizes, pads on all sides, stride 2 on odd input, dilation 2, groups 1/2/C, bias or not', () => {
  const cases = [
    { x: [1, 3, 7, 9], o: 5, k: [3, 3], s: [1, 1], p: [1, 1, 1, 1], dl: [1, 1], g: 1, bias: true },
    { x: [2, 4, 11, 9], o: 6, k: [3, 3], s: [2, 2], p: [0, 1, 2, 0], dl: [1, 1], g: 2, bias: false },
    { x: [1, 6, 13, 13], o: 6, k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], dl: [1, 1], g: 6, bias: true },
    { x: [1, 5, 10, 12], o: 5, k: [5, 5], s: [1, 2], p: [2, 2, 2, 2], dl: [1, 1], g: 5, bias: true },
    { x: [3, 3, 12, 12], o: 4, k: [3, 3], s: [1, 1], p: [2, 2, 2, 2], dl: [2, 2], g: 1, bias: true },
    { x: [1, 17, 5, 3], o: 33, k: [1, 1], s: [1, 1], p: [0, 0, 0, 0], dl: [1, 1], g: 1, bias: true },
    { x: [2, 8, 9, 9], o: 8, k: [1, 1], s: [2, 2], p: [0, 0, 0, 0], dl: [1, 1], g: 1, bias: false },
    { x: [1, 1, 28, 28], o: 6, k: [5, 5], s: [1, 1], p: [2, 2, 2, 2], dl: [1, 1], g: 1, bias: true },
  ];
  cases.forEach((c, i) => {
    const x = rand(c.x, 10 + i);
    const w = rand([c.o, c.x[1] / c.g, ...c.k], 20 + i, 0.5);
    const b = c.bias ? rand([c.o], 30 + i) : null;
    const consts: Record<string, Arr> = { w, ...(b ? { b } : {}) };
    const g = graph(
      c.x.slice(1),
      'Conv',
      { strides: c.s, pads: c.p, dilations: c.dl, group: c.g },
      { consts, inputs: ['x', 'w', ...(b ? ['b'] : [])] },
    );
    check(run(g, x.v, c.x)[0], conv2d(x, w, b ? b.v : null, c.s, c.p, c.dl, c.g), `conv case ${i}`);
  });
});

test('Conv auto_pad SAME_UPPER / SAME_LOWER / VALID', () => {
  const x = rand([1, 2, 7, 8], 3);
  const w = rand([3, 2, 4, 3], 4, 0.5);
  for (const [autoPad, pads] of [
    ['SAME_UPPER', [1, 1, 2, 1]],
    ['SAME_LOWER', [2, 1, 1, 1]],
    ['VALID', [0, 0, 0, 0]],
  ] as const) {
    const g = graph([2, 7, 8], 'Conv', { autoPad, strides: [1, 1] }, { consts: { w }, inputs: ['x', 'w'] });
    check(run(g, x.v, x.d)[0], conv2d(x, w, null, [1, 1], [...pads], [1, 1], 1), autoPad);
  }
});

test('MaxPool / AveragePool: ceil_mode, count_include_pad 0/1, pads, strides, odd sizes', () => {
  const cases = [
    { x: [2, 3, 7, 7], k: [2, 2], s: [2, 2], p: [0, 0, 0, 0], ceil: true, inc: false },
    { x: [1, 4, 9, 8], k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], ceil: false, inc: true },
    { x: [1, 4, 9, 8], k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], ceil: true, inc: true },
    { x: [1, 2, 6, 11], k: [3, 2], s: [3, 2], p: [0, 1, 2, 0], ceil: true, inc: false },
    { x: [3, 5, 5, 5], k: [5, 5], s: [1, 1], p: [2, 2, 2, 2], ceil: false, inc: false },
  ];
  cases.forEach((c, i) => {
    const x = rand(c.x, 40 + i);
    for (const max of [true, false]) {
      const op = max ? 'MaxPool' : 'AveragePool';
      const attrs: Record<string, AttrValue> = { kernelShape: c.k, strides: c.s, pads: c.p, ceilMode: c.ceil };
      if (!max) attrs.countIncludePad = c.inc;
      check(run(graph(c.x.slice(1), op, attrs), x.v, c.x)[0], pool(x, max, c.k, c.s, c.p, c.ceil, c.inc), `${op} case ${i}`);
    }
  });
});

test('GlobalAveragePool / GlobalMaxPool / LRN / BatchNormalization (standalone)', () => {
  const x = rand([2, 5, 3, 7], 50);
  const [n, c, h, w] = x.d;
  const gap = new Float32Array(n * c);
  const gmp = new Float32Array(n * c).fill(-Infinity);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) {
        const v = x.v[(b * c + ch) * h * w + p];
        gap[b * c + ch] += v / (h * w);
        gmp[b * c + ch] = Math.max(gmp[b * c + ch], v);
      }
  check(run(graph([5, 3, 7], 'GlobalAveragePool', {}), x.v, x.d)[0], { d: [n, c, 1, 1], v: gap }, 'gap');
  check(run(graph([5, 3, 7], 'GlobalMaxPool', {}), x.v, x.d)[0], { d: [n, c, 1, 1], v: gmp }, 'gmp');
  const size5 = 3;
  const lrn = new Float32Array(x.v.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) {
        let s = 0;
        for (let i = Math.max(0, ch - 1); i <= Math.min(c - 1, ch + 1); i++) s += x.v[(b * c + i) * h * w + p] ** 2;
        lrn[(b * c + ch) * h * w + p] = x.v[(b * c + ch) * h * w + p] / (2 + (0.01 / size5) * s) ** 0.75;
      }
  check(run(graph([5, 3, 7], 'LRN', { size: size5, alpha: 0.01, beta: 0.75, bias: 2 }), x.v, x.d)[0], { d: x.d, v: lrn }, 'lrn');
  const [sc, bi, mean, vr] = [
    rand([5], 1),
    rand([5], 2),
    rand([5], 3),
    { d: [5], v: Float32Array.from(rand([5], 4).v, (v) => v * v + 0.5) },
  ];
  const bn = Float32Array.from(x.v, (v, i) => {
    const ch = Math.floor(i / (h * w)) % c;
    return ((v - mean.v[ch]) / Math.sqrt(vr.v[ch] + 1e-5)) * sc.v[ch] + bi.v[ch];
  });
  const g = graph(
    [5, 3, 7],
    'BatchNormalization',
    { epsilon: 1e-5 },
    { consts: { sc, bi, mean, vr }, inputs: ['x', 'sc', 'bi', 'mean', 'vr'] },
  );
  check(run(g, x.v, x.d)[0], { d: x.d, v: bn }, 'batchnorm');
});

test('Add/Sub/Mul/Div with numpy broadcasting: constants [C,1,1], [W], scalar, [1,C,1,1]; two activations', () => {
  const x = rand([2, 3, 4, 5], 60);
  const fns = {
    Add: (a: number, b: number) => a + b,
    Sub: (a: number, b: number) => a - b,
    Mul: (a: number, b: number) => a * b,
    Div: (a: number, b: number) => a / b,
  };
  const shapes = [[3, 1, 1], [5], [], [1, 3, 1, 1], [4, 1], [3, 4, 5]];
  for (const [op, fn] of Object.entries(fns)) {
    shapes.forEach((d, i) => {
      const c = { d, v: Float32Array.from(rand(d, 70 + i).v, (v) => (op === 'Div' ? v + 2.5 : v)) };
      for (const order of [
        ['x', 'c'],
        ['c', 'x'],
      ]) {
        const g = graph([3, 4, 5], op, {}, { consts: { c }, inputs: order });
        const want = order[0] === 'x' ? broadcast(x, c, fn) : broadcast(c, x, fn);
        check(run(g, x.v, x.d)[0], want, `${op} [${d}] ${order.join(',')}`);
      }
    });
  }
  // Two activations (a residual add) after a transpose, so their memory orders differ.
  const g = validateGraph({
    name: 'res',
    inputs: [{ name: 'x', shape: [null, 3, 4, 4] }],
    outputs: ['y'],
    tensors: {},
    nodes: [
      { name: 't', op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [0, 1, 3, 2] } },
      { name: 'r', op: 'Relu', inputs: ['t'], outputs: ['r'], attrs: {} },
      { name: 'a', op: 'Add', inputs: ['x', 'r'], outputs: ['y'], attrs: {} },
    ],
    metadata: {},
  });
  const x4 = rand([2, 3, 4, 4], 61);
  const t = transpose(x4, [0, 1, 3, 2]);
  check(
    run(g, x4.v, x4.d)[0],
    broadcast(x4, { d: t.d, v: t.v.map((v) => Math.max(0, v)) }, (a, b) => a + b),
    'x + relu(x^T)',
  );
});

test('element-wise activations: Relu, LeakyRelu, Clip (bounds, one side, none), HardSigmoid, HardSwish, Sigmoid, Tanh', () => {
  const x = rand([2, 3, 5], 80, 8);
  const cases: Array<[string, Record<string, AttrValue>, (v: number) => number]> = [
    ['Relu', {}, (v) => Math.max(0, v)],
    ['LeakyRelu', { alpha: 0.1 }, (v) => (v < 0 ? 0.1 * v : v)],
    ['Clip', { min: -1, max: 2.5 }, (v) => Math.min(2.5, Math.max(-1, v))],
    ['Clip', { max: 1 }, (v) => Math.min(1, v)],
    ['Clip', {}, (v) => v],
    ['HardSigmoid', { alpha: 0.3, beta: 0.4 }, (v) => Math.min(1, Math.max(0, 0.3 * v + 0.4))],
    ['HardSwish', {}, (v) => v * Math.min(1, Math.max(0, v / 6 + 0.5))],
    ['Sigmoid', {}, (v) => 1 / (1 + Math.exp(-v))],
    ['Tanh', {}, Math.tanh],
  ];
  for (const [op, attrs, fn] of cases)
    check(run(graph([3, 5], op, attrs), x.v, x.d)[0], { d: x.d, v: x.v.map(fn) }, `${op} ${JSON.stringify(attrs)}`);
});

test('Softmax on every axis; Concat on every axis; Split; Flatten on every axis; Transpose perms; ReduceMean; Pad', () => {
  const d = [2, 3, 4, 5];
  const x = rand(d, 90, 3);
  for (const axis of [1, 2, 3, -1])
    check(run(graph(d.slice(1), 'Softmax', { axis }), x.v, d)[0], softmax(x, axis < 0 ? 3 : axis), `softmax axis ${axis}`);
  for (const axis of [1, 2, 3]) {
    // Concat x with relu(x) along axis (two activations).
    const g = validateGraph({
      name: 'cat',
      inputs: [{ name: 'x', shape: [null, 3, 4, 5] }],
      outputs: ['y'],
      tensors: {},
      nodes: [
        { name: 'r', op: 'Relu', inputs: ['x'], outputs: ['r'], attrs: {} },
        { name: 'c', op: 'Concat', inputs: ['x', 'r', 'x'], outputs: ['y'], attrs: { axis } },
      ],
      metadata: {},
    });
    const r = { d, v: x.v.map((v) => Math.max(0, v)) };
    const [outer, , inner] = around(d, axis);
    const want = new Float32Array(3 * x.v.length);
    let o = 0;
    for (let a = 0; a < outer; a++)
      for (const part of [x, r, x]) {
        const len = d[axis] * inner;
        want.set(part.v.subarray(a * len, (a + 1) * len), o);
        o += len;
      }
    check(run(g, x.v, d)[0], { d, v: want }, `concat axis ${axis}`);
  }
  const sp = run(graph(d.slice(1), 'Split', { axis: 2, split: [1, 3] }, { outputs: 2 }), x.v, d);
  const [outer, , inner] = around(d, 2);
  const part = (from: number, len: number) => {
    const v = new Float32Array(outer * len * inner);
    for (let a = 0; a < outer; a++) v.set(x.v.subarray((a * 4 + from) * inner, (a * 4 + from + len) * inner), a * len * inner);
    return { d, v };
  };
  check(sp[0], part(0, 1), 'split 0');
  check(sp[1], part(1, 3), 'split 1');
  for (const axis of [1, 2, 3, 4]) check(run(graph(d.slice(1), 'Flatten', { axis }), x.v, d)[0], x, `flatten axis ${axis} (same order)`);
  for (const perm of [
    [0, 2, 3, 1],
    [0, 3, 1, 2],
    [0, 1, 3, 2],
    [0, 3, 2, 1],
  ])
    check(run(graph(d.slice(1), 'Transpose', { perm }), x.v, d)[0], transpose(x, perm), `transpose ${perm}`);
  const mean = (axes: number[]) => {
    const keep = d.map((n, i) => (axes.includes(i) ? 1 : n));
    const v = new Float32Array(size(keep));
    const idx = new Array<number>(4).fill(0);
    for (let i = 0; i < x.v.length; i++) {
      v[
        at(
          keep,
          idx.map((j, k) => (axes.includes(k) ? 0 : j)),
        )
      ] += x.v[i] / size(axes.map((a) => d[a]));
      for (let k = 3; k >= 0; k--) {
        if (++idx[k] < d[k]) break;
        idx[k] = 0;
      }
    }
    return { d: keep, v };
  };
  for (const axes of [[2, 3], [1], [1, 3], [3]])
    check(run(graph(d.slice(1), 'ReduceMean', { axes, keepdims: true }), x.v, d)[0], mean(axes), `reducemean ${axes}`);
  const pads = [0, 1, 0, 2, 0, 0, 3, 1];
  const pd = d.map((n, i) => n + pads[i] + pads[i + 4]);
  const pv = new Float32Array(size(pd)).fill(-0.5);
  const idx = new Array<number>(4).fill(0);
  for (let i = 0; i < x.v.length; i++) {
    pv[
      at(
        pd,
        idx.map((j, k) => j + pads[k]),
      )
    ] = x.v[i];
    for (let k = 3; k >= 0; k--) {
      if (++idx[k] < d[k]) break;
      idx[k] = 0;
    }
  }
  check(run(graph(d.slice(1), 'Pad', { pads, value: -0.5 }), x.v, d)[0], { d: pd, v: pv }, 'pad');
});

test('channel shuffle (Reshape -> Transpose -> Reshape) after a conv, and Flatten of an NHWC image into a Dense', () => {
  const c = 6;
  const w = rand([c, 2, 1, 1], 5, 0.5);
  const g = validateGraph({
    name: 'shuffle',
    inputs: [{ name: 'x', shape: [null, 2, 3, 5] }],
    outputs: ['y', 'z'],
    tensors: {
      w: { name: 'w', dtype: 'float32', shape: w.d, data: w.v },
      fw: { name: 'fw', dtype: 'float32', shape: [4, 90], data: rand([4, 90], 6).v },
    },
    nodes: [
      { name: 'conv', op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: {} },
      { name: 'r1', op: 'Reshape', inputs: ['c'], outputs: ['r1'], attrs: { shape: [0, 2, 3, 3, 5] } },
      { name: 't', op: 'Transpose', inputs: ['r1'], outputs: ['t'], attrs: { perm: [0, 2, 1, 3, 4] } },
      { name: 'r2', op: 'Reshape', inputs: ['t'], outputs: ['y'], attrs: { shape: [0, 6, 3, 5] } },
      { name: 'f', op: 'Flatten', inputs: ['c'], outputs: ['f'], attrs: { axis: 1 } },
      { name: 'fc', op: 'Dense', inputs: ['f', 'fw'], outputs: ['z'], attrs: {} },
    ],
    metadata: {},
  });
  const x = rand([2, 2, 3, 5], 7);
  const conv = conv2d(x, w, null, [1, 1], [0, 0, 0, 0], [1, 1], 1);
  const shuffled = transpose({ d: [2, 2, 3, 3, 5], v: conv.v }, [0, 2, 1, 3, 4]);
  const [y, z] = run(g, x.v, x.d);
  check(y, { d: conv.d, v: shuffled.v }, 'channel shuffle');
  const fw = g.tensors.fw.data as Float32Array;
  const dense = Float32Array.from({ length: 8 }, (_, i) => {
    const [b, j] = [Math.floor(i / 4), i % 4];
    let s = 0;
    for (let k = 0; k < 90; k++) s += conv.v[b * 90 + k] * fw[j * 90 + k];
    return s;
  });
  check(z, { d: [2, 4], v: dense }, 'flatten -> dense');
});

test('bad graphs are E_FORMAT / E_SHAPE / E_UNSUPPORTED_OP naming the node and attribute', () => {
  const w = rand([2, 3, 3, 3], 1);
  throwsCode(
    () => graph([3, 5, 5], 'Conv', { strides: [1] }, { consts: { w }, inputs: ['x', 'w'] }),
    'E_FORMAT',
    /node 'conv' \(Conv\) attribute 'strides' must have 2 entries/,
  );
  throwsCode(() => graph([3, 5, 5], 'Conv', { group: 2 }, { consts: { w }, inputs: ['x', 'w'] }), 'E_SHAPE', /group 2 does not divide/);
  throwsCode(() => graph([3, 5, 5], 'Conv', { bogus: 1 }, { consts: { w }, inputs: ['x', 'w'] }), 'E_FORMAT', /unknown attribute 'bogus'/);
  throwsCode(() => graph([3, 5, 5], 'MaxPool', { kernelShape: [7, 7] }), 'E_SHAPE', /does not fit/);
  throwsCode(() => graph([3, 5, 5], 'Softmax', { axis: 0 }), 'E_UNSUPPORTED_OP', /batch/);
  throwsCode(() => graph([3, 5, 5], 'Transpose', { perm: [1, 0, 2, 3] }), 'E_UNSUPPORTED_OP', /moves the batch/);
  throwsCode(() => graph([3, 5, 5], 'Gelu', {}), 'E_UNSUPPORTED_OP', /op 'Gelu'; supported: .*Conv/);
  throwsCode(() => graph([3, 5, 5], 'Pad', { pads: [1, 0, 0, 0, 0, 0, 0, 0] }), 'E_UNSUPPORTED_OP', /pads the batch/);
  assert.instance(new EdgeOptError('E_SHAPE', 'x'), Error);
});

test.run();
