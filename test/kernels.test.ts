/**
 * Every native kernel table this machine runs against the TS twin (and so
 * against each other): int32 accumulators and the int8 epilogue bit-exact, on
 * odd shapes and extreme values. Without the native addon, the TS kernels are
 * checked against hand-computed values and a naive reference.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, kernels } from '../lib/backends';
import { tsKernels } from '../lib/backends/ts/kernels';
import { roundEven } from '../lib/backends/ts/numerics';
import { closeFloats, randomF32, randomS8, randomU8, rng, sameFloats, sameInts } from './helpers';

const nativeTables = backendInfo().kernels.filter((k) => k !== 'ts');
// EDGEOPT_TEST_QUICK=1 (the emulated arm64 run): fewer shapes, still below, at
// and above every SIMD tile and row block.
const QUICK = process.env.EDGEOPT_TEST_QUICK === '1';
const MS = QUICK ? [1, 2, 3, 5, 7] : [1, 3, 4, 17, 65];
const KS = QUICK ? [1, 15, 16, 17, 63, 129] : [1, 3, 15, 16, 17, 63, 65, 129, 784];
const NS = QUICK ? [1, 3, 4, 9, 17] : [1, 3, 16, 17, 65];

test('roundEven rounds half to even like std::nearbyint', () => {
  const cases: Array<[number, number]> = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, -0],
    [-1.5, -2],
    [-2.5, -2],
    [2.4999, 2],
    [3.5, 4],
    [-3.5, -4],
    [7, 7],
  ];
  for (const [v, want] of cases) assert.is(roundEven(v), want, `roundEven(${v})`);
});

test('ts quantizeRowsU8 matches the hand-computed ONNX DynamicQuantizeLinear values', () => {
  const { q, scale, zeroPoint } = tsKernels.quantizeRowsU8(new Float32Array([-1, 0, 0.5, 2]), 1, 4);
  assert.is(scale[0], Math.fround(3 / 255));
  assert.is(zeroPoint[0], 85);
  sameInts(q, [0, 85, 127, 255], 'q'); // 0.5 / (3/255) = 42.5 in float32 -> 42 (even), + 85
});

test('ts gemmU8S8 equals a naive int reference, including zero-point correction', () => {
  const r = rng(1);
  for (const [m, k, n] of [
    [3, 17, 5],
    [1, 784, 10],
    [4, 1, 3],
  ]) {
    const a = randomU8(m * k, r);
    const w = randomS8(n * k, r);
    const zp = Int32Array.from({ length: m }, () => Math.floor(r() * 256));
    const c = tsKernels.gemmU8S8(a, zp, m, k, w, n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += (a[i * k + t] - zp[i]) * w[j * k + t];
        assert.is(c[i * n + j], s, `c[${i}][${j}]`);
      }
  }
});

test('ts quantizeSymmetric: per-channel scale = max|w| / 127, values round half to even', () => {
  const w = new Float32Array([0.5, -1, 0.25, 0, 0, 0]);
  const { q, scales } = tsKernels.quantizeSymmetric(w, 2, 3, 8, true);
  assert.is(scales[0], Math.fround(1 / 127));
  assert.is(scales[1], 1, 'an all-zero channel gets scale 1');
  sameInts(q, [64, -127, 32, 0, 0, 0], 'q'); // 0.5*127 = 63.5 -> 64 (even)
});

test('ts pruneMask prunes exactly k, ties broken by lower index', () => {
  const { keep, threshold } = tsKernels.pruneMask(new Float32Array([0.5, -0.1, 0.1, 0.1, -0.3, 0]), 3);
  sameInts(keep, [1, 0, 0, 1, 1, 0], 'keep');
  assert.is(threshold, Math.fround(0.1));
});

for (const table of nativeTables) {
  const nk = kernels(table);

  test(`${table}: gemmU8S8 int32 is bit-identical to TS on odd shapes`, () => {
    const r = rng(42);
    for (const m of MS)
      for (const k of KS)
        for (const n of NS) {
          const a = randomU8(m * k, r);
          const w = randomS8(n * k, r);
          const zp = Int32Array.from({ length: m }, () => Math.floor(r() * 256));
          sameInts(nk.gemmU8S8(a, zp, m, k, w, n), tsKernels.gemmU8S8(a, zp, m, k, w, n), `${table} m=${m} k=${k} n=${n}`);
        }
  });

  test(`${table}: gemmU8S8 with extreme values (255 x -128/127) does not saturate`, () => {
    for (const [m, k, n] of [
      [1, 784, 17],
      [4, 1024, 3],
      [2, 65, 65],
    ]) {
      const a = new Uint8Array(m * k).fill(255);
      const w = Int8Array.from({ length: n * k }, (_, i) => (i % 3 === 0 ? 127 : -128));
      const zp = new Int32Array(m);
      const want = tsKernels.gemmU8S8(a, zp, m, k, w, n);
      sameInts(nk.gemmU8S8(a, zp, m, k, w, n), want, `${table} extreme m=${m} k=${k} n=${n}`);
      const wMin = new Int8Array(n * k).fill(-128);
      sameInts(nk.gemmU8S8(a, zp, m, k, wMin, n), tsKernels.gemmU8S8(a, zp, m, k, wMin, n), `${table} all -128`);
    }
  });

  test(`${table}: quantizeRowsU8 and the int8 epilogue are bit-identical to TS`, () => {
    const r = rng(7);
    for (const [m, k] of [
      [1, 1],
      [3, 17],
      [17, 784],
      [2, 65],
    ]) {
      const x = randomF32(m * k, r, 3);
      const a = nk.quantizeRowsU8(x, m, k);
      const b = tsKernels.quantizeRowsU8(x, m, k);
      sameInts(a.q, b.q, `${table} q`);
      sameFloats(a.scale, b.scale, `${table} scale`);
      sameInts(a.zeroPoint, b.zeroPoint, `${table} zero point`);
    }
    for (const [m, n] of [
      [1, 1],
      [3, 17],
      [17, 65],
    ]) {
      const c = Int32Array.from({ length: m * n }, () => Math.floor((r() - 0.5) * 2e6));
      const aScale = randomF32(m, r, 0.01).map(Math.abs);
      const bias = randomF32(n, r);
      for (const wScale of [randomF32(n, r, 0.01).map(Math.abs), new Float32Array([0.003])]) {
        for (const relu of [false, true]) {
          sameFloats(
            nk.epilogueS32(c, m, n, aScale, wScale, bias, relu),
            tsKernels.epilogueS32(c, m, n, aScale, wScale, bias, relu),
            `${table} epilogue`,
          );
        }
      }
      sameFloats(
        nk.epilogueS32(c, m, n, aScale, new Float32Array([1]), null, false),
        tsKernels.epilogueS32(c, m, n, aScale, new Float32Array([1]), null, false),
        `${table} no bias`,
      );
    }
  });

  test(`${table}: gemmF32 agrees with TS (bit-exact for scalar, 1e-5 relative otherwise)`, () => {
    const r = rng(9);
    for (const [m, k, n] of [
      [1, 1, 1],
      [3, 17, 5],
      [17, 784, 65],
      [4, 129, 16],
    ]) {
      const x = randomF32(m * k, r);
      const w = randomF32(n * k, r);
      const got = nk.gemmF32(x, m, k, w, n);
      const want = tsKernels.gemmF32(x, m, k, w, n);
      if (table === 'scalar') sameFloats(got, want, 'scalar gemmF32');
      else closeFloats(got, want, { abs: 1e-5 * Math.sqrt(k), rel: 1e-5 }, `${table} gemmF32`);
    }
  });

  test(`${table}: quantizeSymmetric, pruneMask and relu match TS`, () => {
    const r = rng(11);
    const w = randomF32(65 * 129, r, 0.2);
    for (const bits of [2, 4, 8])
      for (const perChannel of [true, false]) {
        const a = nk.quantizeSymmetric(w, 65, 129, bits, perChannel);
        const b = tsKernels.quantizeSymmetric(w, 65, 129, bits, perChannel);
        sameInts(a.q, b.q, `q bits=${bits}`);
        sameFloats(a.scales, b.scales, 'scales');
        sameFloats(nk.dequantizeS8(a.q, 65, 129, a.scales), tsKernels.dequantizeS8(b.q, 65, 129, b.scales), 'dequantized');
      }
    const tied = Float32Array.from(w, (v) => Math.round(v * 20) / 20); // many ties
    for (const count of [0, 1, 100, 4000, tied.length]) {
      const a = nk.pruneMask(tied, count);
      const b = tsKernels.pruneMask(tied, count);
      sameInts(a.keep, b.keep, `prune ${count}`);
      assert.is(a.threshold, b.threshold);
    }
    const x = randomF32(1001, r);
    sameFloats(nk.reluF32(x.slice()), tsKernels.reluF32(x.slice()), 'relu');
  });
}

test('native kernel tables are tested when the addon loads', () => {
  const info = backendInfo();
  if (info.native) assert.ok(nativeTables.includes('scalar'), 'the scalar reference table is always present');
  else assert.equal(nativeTables, []);
  assert.ok(Array.isArray(info.notes));
});

test('a table this CPU cannot run is listed with what it lacks, and naming it is E_ISA', () => {
  const info = backendInfo();
  for (const t of info.unavailable) {
    assert.ok(t.missing.length > 0, `${t.name} lists the features it lacks`);
    assert.not.ok(info.kernels.includes(t.name), `${t.name} is not runnable`);
    assert.throws(
      () => kernels(t.name),
      (e: Error & { code?: string }) => e.code === 'E_ISA' && e.message.includes(t.name),
    );
  }
  if (!info.native) assert.equal(info.unavailable, []);
});

test('EDGEOPT_ISA naming an unknown or unrunnable table: native refuses with E_ISA, saying why', () => {
  const info = backendInfo();
  // Under qemu-user (npm run test:arm64) a child node cannot be started: the runner says so.
  if (!info.native || process.env.EDGEOPT_TEST_NO_SPAWN) return;
  const script = "console.log(JSON.stringify(require('./lib/backends').backendInfo()))";
  for (const t of [
    { name: 'avx9000', why: /unknown; this binary has scalar/ },
    ...info.unavailable.map((u) => ({ name: u.name, why: new RegExp(`lacks ${u.missing[0]}`) })),
  ]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: path.resolve(__dirname, '..'),
      env: { ...process.env, EDGEOPT_ISA: t.name },
      encoding: 'utf8',
    });
    const forced = JSON.parse(r.stdout) as { native: boolean; reason: string };
    assert.is(forced.native, false, `EDGEOPT_ISA=${t.name}`);
    assert.match(forced.reason, `EDGEOPT_ISA=${t.name}`);
    assert.match(forced.reason, t.why);
  }
});

test.run();
