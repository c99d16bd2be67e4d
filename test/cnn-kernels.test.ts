/**
 * The CNN kernels' TS twin (lib/backends/ts/cnn) against naive references
 * written here, and against every native kernel table this machine runs
 * (through the addon's `cnn` exports): bit-identical to the native scalar
 * table everywhere; bit-identical to every table for activations, binary ops,
 * pooling, softmax, reduce-mean and the data movers; convolutions within the
 * documented bound of the SIMD tables (2 * K * 2^-24 * sum|x*w|, times the
 * activation's slope); LRN within one float32 ulp.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, nativeAddon } from '../lib/backends';
import { nativeCnn } from '../lib/backends/native/cnn';
import * as cnn from '../lib/backends/ts/cnn';
import type { ConvShape, PoolShape } from '../lib/backends/ts/cnn';
import type { Activation, BinaryOp } from '../lib/engine/program';
import { randomF32, rng, sameFloats, throwsCode } from './helpers';

const nativeTables = backendInfo().kernels.filter((k) => k !== 'ts');
const addon = nativeAddon();
const QUICK = process.env.EDGEOPT_TEST_QUICK === '1';
const U = 2 ** -24;
const r = rng(15);

const ACTS: Activation[] = [
  { kind: 'none' },
  { kind: 'relu' },
  { kind: 'leakyrelu', alpha: 0.1 },
  { kind: 'clip', min: 0, max: 6 },
  { kind: 'clip', min: -0.5, max: Infinity },
  { kind: 'hardsigmoid', alpha: 0.2, beta: 0.5 },
  { kind: 'hardswish' },
  { kind: 'sigmoid' },
  { kind: 'tanh' },
];

/** The largest |d act / dv|. */
function slope(act: Activation): number {
  if (act.kind === 'leakyrelu') return Math.max(1, Math.abs(act.alpha));
  if (act.kind === 'hardsigmoid') return Math.abs(act.alpha);
  if (act.kind === 'hardswish') return 1.5;
  if (act.kind === 'sigmoid') return 0.25;
  return 1;
}

function refActivate(v: number, act: Activation): number {
  switch (act.kind) {
    case 'none':
      return v;
    case 'relu':
      return Math.max(v, 0);
    case 'leakyrelu':
      return v < 0 ? act.alpha * v : v;
    case 'clip':
      return Math.min(Math.max(v, act.min), act.max);
    case 'hardsigmoid':
      return Math.min(1, Math.max(0, act.alpha * v + act.beta));
    case 'hardswish':
      return v * Math.min(1, Math.max(0, v / 6 + 0.5));
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
  }
}

// --- Activations ---

const SPECIAL = [0, -0, 0.25, -0.25, 0.2499999, 3, -3, 6, 88, -88, 88.37, 88.38, 90, -87.3, -87.4, -104, 1e-30, Infinity, -Infinity, NaN];

test('expF32, tanhF32 and sigmoidF32 are within a few float32 ulps of Math', () => {
  let worst = 0;
  for (let i = 0; i <= 20000; i++) {
    const x = Math.fround(-87 + (175.3 * i) / 20000);
    const want = Math.exp(x);
    worst = Math.max(worst, Math.abs(cnn.expF32(x) - want) / (Math.abs(want) * 2 ** -23)); // in units >= one ulp
  }
  assert.ok(worst <= 1, `expF32 off by ${worst} x 2^-23 relative`);
  for (let i = 0; i <= 4000; i++) {
    const x = Math.fround(-10 + (20 * i) / 4000);
    const t = Math.tanh(x);
    assert.ok(Math.abs(cnn.tanhF32(x) - t) <= 4 * 2 ** -24 * Math.abs(t) + 1e-45, `tanhF32(${x})`);
    const s = 1 / (1 + Math.exp(-x));
    assert.ok(Math.abs(cnn.sigmoidF32(x) - s) <= 4 * 2 ** -24 * s, `sigmoidF32(${x})`);
  }
  assert.is(cnn.expF32(0), 1);
  assert.is(cnn.expF32(-Infinity), 0);
  assert.is(cnn.expF32(Infinity), Infinity);
  assert.ok(Number.isNaN(cnn.expF32(NaN)));
});

test('activations: the TS twin equals every native table bit for bit, and libm closely', () => {
  const x = new Float32Array([...randomF32(500, r, 8), ...SPECIAL]);
  for (const act of ACTS) {
    const ts = cnn.activation(x, new Float32Array(x.length), act);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]) || Math.abs(x[i]) > 80) continue;
      const want = refActivate(x[i], act);
      const tol = 4 * U * Math.abs(want) + 2 * U * Math.abs(x[i]) + 1e-37;
      assert.ok(Math.abs(ts[i] - want) <= tol, `${act.kind}(${x[i]}) = ${ts[i]}, Math gives ${want}`);
    }
    for (const table of nativeTables) sameFloats(nativeCnn(addon!, table).activation(x, act), ts, `${table} ${act.kind}`);
  }
});

// --- Convolution ---

interface ConvCase {
  s: ConvShape;
  act: Activation;
  batch: number;
  bias: boolean;
}

function completeConv(s: ConvShape): boolean {
  const oh = s.inH + s.padTop + s.padBottom - (s.dilationH * (s.kh - 1) + 1);
  const ow = s.inW + s.padLeft + s.padRight - (s.dilationW * (s.kw - 1) + 1);
  if (oh < 0 || ow < 0) return false;
  s.outH = Math.floor(oh / s.strideH) + 1;
  s.outW = Math.floor(ow / s.strideW) + 1;
  return true;
}

/** Every channel count x group kind x kernel size; the other attributes cycle through their lists. */
function convCases(): ConvCase[] {
  const channels = QUICK ? [1, 3, 8, 17] : [1, 3, 7, 8, 9, 17, 63, 65];
  const spatial = [1, 2, 5, 13];
  const pads = [
    [0, 0, 0, 0],
    [1, 1, 1, 1],
    [0, 1, 2, 1],
    [2, 0, 1, 3],
  ];
  const cases: ConvCase[] = [];
  let cycle = 0;
  for (const c of channels)
    for (let groupsKind = 0; groupsKind < 3; groupsKind++)
      for (const k of [1, 3, 5, 7]) {
        cycle++;
        if (groupsKind === 1 && c % 2) continue;
        const groups = groupsKind === 0 ? 1 : groupsKind === 1 ? 2 : c;
        const outC = groupsKind === 0 ? channels[(cycle * 3) % channels.length] : groupsKind === 1 ? 2 * ((cycle % 4) + 1) : c;
        const p = k === 1 && cycle % 2 === 0 ? [0, 0, 0, 0] : pads[cycle % pads.length];
        const s: ConvShape = {
          inH: spatial[cycle % 4],
          inW: spatial[(cycle + 1) % 4],
          inC: c,
          outH: 0,
          outW: 0,
          outC,
          kh: k,
          kw: cycle % 7 === 0 ? Math.max(1, k - 2) : k,
          strideH: k === 1 && cycle % 2 === 0 ? 1 : 1 + (cycle % 3 === 1 ? 1 : 0),
          strideW: k === 1 && cycle % 2 === 0 ? 1 : 1 + (cycle % 5 === 2 ? 1 : 0),
          dilationH: 1 + (cycle % 4 === 3 ? 1 : 0),
          dilationW: 1 + (cycle % 6 === 5 ? 1 : 0),
          padTop: p[0],
          padLeft: p[1],
          padBottom: p[2],
          padRight: p[3],
          groups,
        };
        while (!completeConv(s)) {
          s.padTop++;
          s.padLeft++;
          s.padBottom++;
          s.padRight++;
        }
        cases.push({ s, act: ACTS[cycle % ACTS.length], batch: cycle % 4 === 0 ? 2 : 1, bias: cycle % 3 !== 0 });
      }
  return cases;
}

/** Naive NCHW reference in double: returns y (NHWC) and sum |x * w| + |bias| per output. */
function naiveConv(c: ConvCase, x: Float32Array, w: Float32Array, bias: Float32Array | undefined): { y: Float64Array; mag: Float64Array } {
  const s = c.s;
  const icg = s.inC / s.groups;
  const ocg = s.outC / s.groups;
  const n = c.batch * s.outH * s.outW * s.outC;
  const y = new Float64Array(n);
  const mag = new Float64Array(n);
  for (let b = 0; b < c.batch; b++)
    for (let o = 0; o < s.outC; o++)
      for (let oy = 0; oy < s.outH; oy++)
        for (let ox = 0; ox < s.outW; ox++) {
          let acc = bias ? bias[o] : 0;
          let m = Math.abs(acc);
          for (let i = 0; i < icg; i++)
            for (let ky = 0; ky < s.kh; ky++)
              for (let kx = 0; kx < s.kw; kx++) {
                const iy = oy * s.strideH - s.padTop + ky * s.dilationH;
                const ix = ox * s.strideW - s.padLeft + kx * s.dilationW;
                if (iy < 0 || iy >= s.inH || ix < 0 || ix >= s.inW) continue;
                const p =
                  x[((b * s.inH + iy) * s.inW + ix) * s.inC + Math.floor(o / ocg) * icg + i] * w[((o * s.kh + ky) * s.kw + kx) * icg + i];
                acc += p;
                m += Math.abs(p);
              }
          const at = ((b * s.outH + oy) * s.outW + ox) * s.outC + o;
          y[at] = refActivate(acc, c.act);
          mag[at] = m;
        }
  return { y, mag };
}

test('conv2d: the TS twin against a naive NCHW reference, the native scalar table bit for bit, SIMD tables within the bound', () => {
  const cases = convCases();
  let worst = 0;
  for (const c of cases) {
    const s = c.s;
    const k = s.kh * s.kw * (s.inC / s.groups);
    const x = randomF32(c.batch * s.inH * s.inW * s.inC, r);
    const w = randomF32(s.outC * k, r, 0.5);
    const bias = c.bias ? randomF32(s.outC, r) : undefined;
    const what = `conv ${JSON.stringify(s)} ${c.act.kind} batch ${c.batch}`;
    const ts = cnn.conv2d(s, x, w, bias, c.act, new Float32Array(c.batch * s.outH * s.outW * s.outC), c.batch);
    const { y: exact, mag } = naiveConv(c, x, w, bias);
    const sl = slope(c.act);
    for (let i = 0; i < ts.length; i++) {
      const bound = sl * (k + 2) * U * mag[i] + 4 * U * Math.abs(exact[i]) + 1e-30;
      if (!(Math.abs(ts[i] - exact[i]) <= bound)) assert.unreachable(`${what}: ts[${i}] ${ts[i]} vs naive ${exact[i]}`);
    }
    for (const table of nativeTables) {
      const got = nativeCnn(addon!, table).conv(x, w, bias ?? null, s, c.act, c.batch);
      if (table === 'scalar') {
        sameFloats(got, ts, `${what} scalar`);
        continue;
      }
      for (let i = 0; i < ts.length; i++) {
        const bound = sl * 2 * (k + 1) * U * mag[i] + 4 * U * Math.abs(ts[i]) + 1e-30;
        const err = Math.abs(got[i] - ts[i]);
        worst = Math.max(worst, err / bound);
        if (!(err <= bound)) assert.unreachable(`${what}: ${table}[${i}] ${got[i]} vs ts ${ts[i]} (bound ${bound})`);
      }
    }
  }
  assert.ok(cases.length >= (QUICK ? 30 : 60), `${cases.length} conv cases`);
  assert.ok(worst <= 1);
});

test('conv2d: an infinite weight on a padding tap gives NaN (0 * inf), in the TS twin and the scalar table alike', () => {
  // groups 1 with 6 outputs (a block of four and two single channels), and depthwise.
  for (const [groups, outC] of [
    [1, 6],
    [3, 3],
  ]) {
    const s: ConvShape = {
      inH: 3,
      inW: 3,
      inC: 3,
      outH: 3,
      outW: 3,
      outC,
      kh: 3,
      kw: 3,
      strideH: 1,
      strideW: 1,
      dilationH: 1,
      dilationW: 1,
      padTop: 1,
      padLeft: 1,
      padBottom: 1,
      padRight: 1,
      groups,
    };
    const icg = 3 / groups;
    const x = randomF32(27, r);
    const w = randomF32(outC * 9 * icg, r, 0.5);
    const last = outC - 1;
    w[last * 9 * icg] = Infinity; // tap (0, 0) of the last output channel: padding for the top row and left column
    const ts = cnn.conv2d(s, x, w, undefined, { kind: 'none' }, new Float32Array(9 * outC));
    for (let p = 0; p < 9; p++) {
      const padded = p < 3 || p % 3 === 0;
      assert.is(Number.isNaN(ts[p * outC + last]), padded, `groups ${groups} pixel ${p}`);
      for (let o = 0; o < last; o++) assert.ok(Number.isFinite(ts[p * outC + o]), `groups ${groups} pixel ${p} channel ${o}`);
    }
    if (nativeTables.includes('scalar'))
      sameFloats(nativeCnn(addon!, 'scalar').conv(x, w, null, s, { kind: 'none' }, 1), ts, `groups ${groups}`);
  }
});

test('conv on two threads equals one thread bit for bit', () => {
  if (!addon) return;
  const s: ConvShape = {
    inH: 13,
    inW: 13,
    inC: 17,
    outH: 7,
    outW: 7,
    outC: 65,
    kh: 3,
    kw: 3,
    strideH: 2,
    strideW: 2,
    dilationH: 1,
    dilationW: 1,
    padTop: 1,
    padLeft: 1,
    padBottom: 1,
    padRight: 1,
    groups: 1,
  };
  const x = randomF32(2 * 13 * 13 * 17, r);
  const w = randomF32(65 * 9 * 17, r);
  for (const table of nativeTables) {
    const c = nativeCnn(addon, table);
    sameFloats(c.conv(x, w, null, s, { kind: 'relu' }, 2, undefined, 2), c.conv(x, w, null, s, { kind: 'relu' }, 2), `${table} threads`);
  }
});

// --- Pooling ---

function poolCases(): Array<{ s: PoolShape; batch: number }> {
  const out: Array<{ s: PoolShape; batch: number }> = [];
  const spatial = [1, 2, 5, 13];
  let cycle = 0;
  for (const c of QUICK ? [1, 8, 17] : [1, 3, 7, 8, 9, 17, 63, 65])
    for (const k of [1, 2, 3, 5])
      for (let variant = 0; variant < 3; variant++) {
        cycle++;
        const s: PoolShape = {
          inH: spatial[cycle % 4],
          inW: spatial[(cycle + variant) % 4],
          c,
          outH: 0,
          outW: 0,
          kh: k,
          kw: variant === 2 ? Math.max(1, k - 1) : k,
          strideH: 1 + (cycle % 2),
          strideW: 1 + (Math.floor(cycle / 2) % 2),
          dilationH: cycle % 5 === 4 ? 2 : 1,
          dilationW: cycle % 7 === 6 ? 2 : 1,
          padTop: Math.min(Math.floor(k / 2), cycle % 3),
          padLeft: Math.floor(k / 2),
          padBottom: Math.min(Math.floor(k / 2), cycle % 3),
          padRight: cycle % 4 === 1 ? 0 : Math.floor(k / 2),
          countIncludePad: variant === 1,
        };
        const ph = s.inH + s.padTop + s.padBottom - (s.dilationH * (s.kh - 1) + 1);
        const pw = s.inW + s.padLeft + s.padRight - (s.dilationW * (s.kw - 1) + 1);
        if (ph < 0 || pw < 0) continue;
        const ceil = cycle % 3 === 0; // ceil_mode: windows past the pads
        s.outH = Math.floor((ceil ? ph + s.strideH - 1 : ph) / s.strideH) + 1;
        s.outW = Math.floor((ceil ? pw + s.strideW - 1 : pw) / s.strideW) + 1;
        // Every window needs an in-range tap (check_pool_shape refuses the rest).
        const hasTap = (start: number, k: number, dilation: number, size: number) =>
          Array.from({ length: k }, (_, i) => start + i * dilation).some((v) => v >= 0 && v < size);
        const rows = Array.from({ length: s.outH }, (_, o) => hasTap(o * s.strideH - s.padTop, s.kh, s.dilationH, s.inH));
        const cols = Array.from({ length: s.outW }, (_, o) => hasTap(o * s.strideW - s.padLeft, s.kw, s.dilationW, s.inW));
        if (!rows.every(Boolean) || !cols.every(Boolean)) continue;
        out.push({ s, batch: cycle % 4 === 0 ? 2 : 1 });
      }
  return out;
}

function naivePool(kind: 'maxpool' | 'avgpool', s: PoolShape, batch: number, x: Float32Array): Float64Array {
  const y = new Float64Array(batch * s.outH * s.outW * s.c);
  for (let b = 0; b < batch; b++)
    for (let oy = 0; oy < s.outH; oy++)
      for (let ox = 0; ox < s.outW; ox++)
        for (let c = 0; c < s.c; c++) {
          let acc = kind === 'maxpool' ? -Infinity : 0;
          let inside = 0;
          let padded = 0;
          for (let ky = 0; ky < s.kh; ky++)
            for (let kx = 0; kx < s.kw; kx++) {
              const iy = oy * s.strideH - s.padTop + ky * s.dilationH;
              const ix = ox * s.strideW - s.padLeft + kx * s.dilationW;
              if (iy >= -s.padTop && iy < s.inH + s.padBottom && ix >= -s.padLeft && ix < s.inW + s.padRight) padded++;
              if (iy < 0 || iy >= s.inH || ix < 0 || ix >= s.inW) continue;
              inside++;
              const v = x[((b * s.inH + iy) * s.inW + ix) * s.c + c];
              acc = kind === 'maxpool' ? Math.max(acc, v) : acc + v;
            }
          y[((b * s.outH + oy) * s.outW + ox) * s.c + c] = kind === 'maxpool' ? acc : acc / (s.countIncludePad ? padded : inside);
        }
  return y;
}

test('max/avg pooling: TS twin equals a naive reference and every native table', () => {
  const cases = poolCases();
  for (const { s, batch } of cases) {
    const x = randomF32(batch * s.inH * s.inW * s.c, r, 4);
    for (const kind of ['maxpool', 'avgpool'] as const) {
      const what = `${kind} ${JSON.stringify(s)} batch ${batch}`;
      const ts = cnn.pool2d(kind, s, x, new Float32Array(batch * s.outH * s.outW * s.c), batch);
      const want = naivePool(kind, s, batch, x);
      for (let i = 0; i < ts.length; i++) {
        const tol = kind === 'maxpool' ? 0 : (s.kh * s.kw + 1) * U * 4;
        if (!(Math.abs(ts[i] - want[i]) <= tol)) assert.unreachable(`${what}: ts[${i}] ${ts[i]} vs naive ${want[i]}`);
      }
      for (const table of nativeTables) sameFloats(nativeCnn(addon!, table).pool(kind, x, s, batch), ts, `${what} ${table}`);
    }
  }
  assert.ok(cases.length >= (QUICK ? 15 : 40), `${cases.length} pool cases`);
});

test('global pooling: TS twin equals every native table', () => {
  for (const c of [1, 3, 8, 17, 65])
    for (const pixels of [1, 25, 169])
      for (const kind of ['globalmaxpool', 'globalavgpool'] as const) {
        const x = randomF32(2 * pixels * c, r, 2);
        const ts = cnn.globalPool(kind, x, new Float32Array(2 * c), pixels, c, 2);
        for (let ch = 0; ch < c; ch++) {
          let m = -Infinity;
          let s = 0;
          for (let p = 0; p < pixels; p++) {
            m = Math.max(m, x[p * c + ch]);
            s += x[p * c + ch];
          }
          const want = kind === 'globalmaxpool' ? m : s / pixels;
          assert.ok(Math.abs(ts[ch] - want) <= (kind === 'globalmaxpool' ? 0 : (pixels + 1) * U * 2), `${kind} c=${c} pixels=${pixels}`);
        }
        for (const table of nativeTables) sameFloats(nativeCnn(addon!, table).globalPool(kind, x, pixels, c, 2), ts, `${kind} ${table}`);
      }
});

// --- Binary ops ---

/** Contiguous strides of `own` dims broadcast against the output's (0 where own has a 1 the output does not). */
function broadcastStrides(out: number[], own: number[]): number[] {
  const st = new Array<number>(out.length).fill(0);
  let s = 1;
  for (let i = out.length - 1; i >= 0; i--) {
    st[i] = own[i] === 1 && out[i] !== 1 ? 0 : s;
    s *= own[i];
  }
  return st;
}

test('binary ops with broadcasting: TS twin equals numpy-style indexing and every native table', () => {
  const shapes: number[][][] = [
    [
      [13, 13, 17],
      [13, 13, 17],
      [13, 13, 17],
    ],
    [
      [13, 13, 17],
      [13, 13, 17],
      [1, 1, 17],
    ],
    [
      [5, 5, 65],
      [1, 1, 65],
      [5, 5, 65],
    ],
    [
      [5, 7, 9],
      [5, 7, 9],
      [1, 1, 1],
    ],
    [
      [2, 5, 3],
      [2, 1, 3],
      [1, 5, 1],
    ],
    [
      [3, 1, 8],
      [3, 1, 8],
      [3, 1, 1],
    ],
    [
      [4, 63],
      [4, 1],
      [1, 63],
    ],
    [
      [2, 3, 4, 5, 6],
      [2, 1, 4, 1, 6],
      [1, 3, 1, 5, 1],
    ],
  ];
  const size = (d: number[]) => d.reduce((a, b) => a * b, 1);
  for (const [out, da, db] of shapes) {
    const a = randomF32(size(da), r, 3);
    const b = randomF32(size(db), r, 3).map((v) => (Math.abs(v) < 0.1 ? 0.5 : v));
    const as = broadcastStrides(out, da);
    const bs = broadcastStrides(out, db);
    for (const fn of ['add', 'sub', 'mul', 'div'] as BinaryOp['fn'][])
      for (const act of ACTS) {
        const ts = cnn.binary(fn, out, as, bs, a, b, new Float32Array(size(out)), act);
        const idx = new Array<number>(out.length).fill(0);
        for (let i = 0; i < ts.length; i++) {
          let ao = 0;
          let bo = 0;
          for (let d = 0; d < out.length; d++) {
            ao += idx[d] * as[d];
            bo += idx[d] * bs[d];
          }
          const v = Math.fround(fn === 'add' ? a[ao] + b[bo] : fn === 'sub' ? a[ao] - b[bo] : fn === 'mul' ? a[ao] * b[bo] : a[ao] / b[bo]);
          if (!Object.is(ts[i], cnn.activate(v, act)) && !(Number.isNaN(ts[i]) && Number.isNaN(v)))
            assert.unreachable(`${fn} ${act.kind} ${out}: ts[${i}] ${ts[i]}`);
          for (let d = out.length - 1; d >= 0; d--) {
            if (++idx[d] < out[d]) break;
            idx[d] = 0;
          }
        }
        for (const table of nativeTables)
          sameFloats(nativeCnn(addon!, table).binary(fn, a, b, out, as, bs, act), ts, `${fn} ${act.kind} ${out} ${table}`);
      }
  }
});

// --- Softmax, reduce-mean, LRN ---

test('softmax and reduce-mean: TS twin equals every native table and Math closely', () => {
  for (const [outer, axis, inner] of [
    [1, 10, 1],
    [7, 17, 1],
    [3, 1000, 1],
    [2, 5, 9],
    [1, 169, 65],
  ]) {
    const x = randomF32(outer * axis * inner, r, 20);
    const sm = cnn.softmax(x, new Float32Array(x.length), outer, axis, inner);
    const mean = cnn.reduceMean(x, new Float32Array(outer * inner), outer, axis, inner);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let m = -Infinity;
        let s = 0;
        let total = 0;
        for (let k = 0; k < axis; k++) m = Math.max(m, x[(o * axis + k) * inner + i]);
        for (let k = 0; k < axis; k++) {
          s += Math.exp(x[(o * axis + k) * inner + i] - m);
          total += x[(o * axis + k) * inner + i];
        }
        for (let k = 0; k < axis; k++) {
          const v = x[(o * axis + k) * inner + i];
          const want = Math.exp(v - m) / s;
          assert.ok(
            Math.abs(sm[(o * axis + k) * inner + i] - want) <= (axis + 8 + 2 * Math.abs(v - m)) * U * want + 1e-38,
            `softmax ${outer}x${axis}x${inner}`,
          );
        }
        assert.ok(Math.abs(mean[o * inner + i] - total / axis) <= (axis + 1) * U * 20, 'reduceMean');
      }
    for (const table of nativeTables) {
      const c = nativeCnn(addon!, table);
      sameFloats(c.softmax(x, outer, axis, inner), sm, `${table} softmax ${outer}x${axis}x${inner}`);
      sameFloats(c.reduceMean(x, outer, axis, inner), mean, `${table} reduceMean ${outer}x${axis}x${inner}`);
    }
  }
});

test('LRN: TS twin within one float32 ulp of every native table', () => {
  for (const c of [1, 3, 17, 65])
    for (const size of [1, 2, 3, 5]) {
      const x = randomF32(11 * c, r, 3);
      const ts = cnn.lrn(x, new Float32Array(x.length), 11, c, size, 1e-3, 0.75, 1.5);
      for (const table of nativeTables) {
        const got = nativeCnn(addon!, table).lrn(x, 11, c, size, 1e-3, 0.75, 1.5);
        for (let i = 0; i < x.length; i++)
          assert.ok(
            Math.abs(got[i] - ts[i]) <= Math.abs(ts[i]) * 2 ** -23,
            `${table} lrn c=${c} size=${size} at ${i}: ${got[i]} vs ${ts[i]}`,
          );
      }
    }
});

// --- Data movement ---

test('concat, split, pad and transpose: TS twin equals every native table', () => {
  const sizes = [3, 17, 1, 65];
  const outer = 13;
  const parts = sizes.map((s) => randomF32(outer * s, r));
  const cat = cnn.concat(parts, new Float32Array(outer * 86), outer, sizes);
  assert.is(cat[86 + 3], parts[1][17]);
  const back = sizes.map((s) => new Float32Array(outer * s));
  cnn.split(cat, back, outer, sizes);
  parts.forEach((p, i) => sameFloats(back[i], p, `split ${i}`));
  const pads: Array<[number[], number[], number[]]> = [
    [
      [5, 7, 3],
      [1, 2, 0],
      [2, 1, 0],
    ],
    [
      [5, 7, 3],
      [0, 0, 1],
      [0, 0, 2],
    ],
    [[13], [3], [4]],
    [
      [4, 6],
      [-1, 2],
      [1, -2],
    ],
  ];
  const transposes: Array<[number[], number[]]> = [
    [
      [3, 13, 17],
      [1, 2, 0],
    ],
    [
      [13, 17, 3],
      [2, 0, 1],
    ],
    [
      [5, 7, 4, 9],
      [0, 1, 3, 2],
    ],
    [
      [2, 3, 4, 5, 6],
      [4, 2, 0, 3, 1],
    ],
  ];
  for (const table of nativeTables) {
    const c = nativeCnn(addon!, table);
    sameFloats(c.concat(parts, sizes, outer), cat, `${table} concat`);
    c.split(cat, sizes, outer).forEach((p, i) => sameFloats(p, parts[i], `${table} split ${i}`));
  }
  for (const [shape, begin, end] of pads) {
    const x = randomF32(
      shape.reduce((a, b) => a * b, 1),
      r,
    );
    const n = shape.reduce((a, d, i) => a * (d + begin[i] + end[i]), 1);
    const ts = cnn.pad(x, new Float32Array(n), shape, begin, end, 2.5);
    for (const table of nativeTables) sameFloats(nativeCnn(addon!, table).pad(x, shape, begin, end, 2.5), ts, `${table} pad ${shape}`);
  }
  // Pad spot checks against hand-computed positions.
  const p = cnn.pad(new Float32Array([1, 2, 3, 4]), new Float32Array(2 * 5), [2, 2], [0, 1], [0, 2], 9);
  sameFloats(p, new Float32Array([9, 1, 2, 9, 9, 9, 3, 4, 9, 9]), 'pad 2x2');
  for (const [shape, perm] of transposes) {
    const x = randomF32(
      shape.reduce((a, b) => a * b, 1),
      r,
    );
    const ts = cnn.transpose(x, new Float32Array(x.length), shape, perm);
    for (const table of nativeTables) sameFloats(nativeCnn(addon!, table).transpose(x, shape, perm), ts, `${table} transpose ${shape}`);
  }
  // NCHW [2][2][3] -> NHWC [2][3][2] by hand.
  const t = cnn.transpose(new Float32Array([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]), new Float32Array(12), [2, 2, 3], [1, 2, 0]);
  sameFloats(t, new Float32Array([0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15]), 'transpose by hand');
});

// --- Bad input ---

test('native CNN kernels refuse bad input with EdgeOptError codes', () => {
  if (!addon) return;
  const c = nativeCnn(addon);
  const s: ConvShape = {
    inH: 5,
    inW: 5,
    inC: 4,
    outH: 3,
    outW: 3,
    outC: 6,
    kh: 3,
    kw: 3,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    padTop: 0,
    padLeft: 0,
    padBottom: 0,
    padRight: 0,
    groups: 1,
  };
  const x = new Float32Array(100);
  const w = new Float32Array(6 * 9 * 4);
  c.conv(x, w, null, s, { kind: 'relu' }, 1); // fine
  throwsCode(() => c.conv(x, w, null, { ...s, outH: 4 }, { kind: 'none' }, 1), 'E_SHAPE', /output/);
  throwsCode(() => c.conv(x, w, null, { ...s, groups: 3 }, { kind: 'none' }, 1), 'E_SHAPE', /groups/);
  throwsCode(() => c.conv(new Float32Array(99), w, null, s, { kind: 'none' }, 1), 'E_SHAPE', /x has 99/);
  throwsCode(() => c.conv(x, new Float32Array(5), null, s, { kind: 'none' }, 1), 'E_SHAPE', /weight/);
  throwsCode(() => c.conv(x, w, new Float32Array(5), s, { kind: 'none' }, 1), 'E_SHAPE', /bias/);
  throwsCode(() => c.conv(new Int8Array(100) as unknown as Float32Array, w, null, s, { kind: 'none' }, 1), 'E_DTYPE');
  throwsCode(() => c.conv(x, w, null, { ...s, strideH: 0 }, { kind: 'none' }, 1), 'E_SHAPE', /strideH/);
  throwsCode(() => c.conv(x, w, null, s, { kind: 'gelu' } as unknown as Activation, 1), 'E_ARGUMENT', /gelu/);
  throwsCode(() => c.conv(x, w, null, s, { kind: 'none' }, 0), 'E_SHAPE', /batch/);
  throwsCode(() => nativeCnn(addon, 'nosuchisa').activation(x, { kind: 'none' }), 'E_ISA');
  const ps: PoolShape = {
    inH: 5,
    inW: 5,
    c: 4,
    outH: 6,
    outW: 5,
    kh: 2,
    kw: 1,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    padTop: 0,
    padLeft: 0,
    padBottom: 0,
    padRight: 0,
    countIncludePad: false,
  };
  throwsCode(() => c.pool('maxpool', x, ps, 1), 'E_SHAPE', /padding/);
  throwsCode(() => c.pool('minpool' as 'maxpool', x, { ...ps, outH: 4 }, 1), 'E_ARGUMENT');
  throwsCode(() => c.binary('add', x, new Float32Array(3), [10, 10], [10, 1], [1, 0], { kind: 'none' }), 'E_SHAPE', /shorter/);
  throwsCode(() => c.binary('pow' as 'add', x, x, [100], [1], [1], { kind: 'none' }), 'E_ARGUMENT');
  throwsCode(() => c.binary('add', x, x, [100, 0], [1, 1], [1, 1], { kind: 'none' }), 'E_SHAPE');
  throwsCode(() => c.transpose(x, [10, 10], [0, 0]), 'E_SHAPE', /permutation/);
  throwsCode(() => c.pad(x, [10, 10], [-11, 0], [0, 0], 0), 'E_SHAPE');
  throwsCode(() => c.softmax(x, 3, 5, 7), 'E_SHAPE');
  throwsCode(() => c.concat([x], [50, 50], 2), 'E_SHAPE');
});

test.run();
