/**
 * infer() runs small all-native calls inline (inlineMacs): the results are the
 * same as through libuv's pool, a bad input still rejects (never throws), and
 * the option is validated.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { rejectsCode, sameFloats, throwsCode } from './helpers';

const int8 = quantizeGraph(defaultModel(), { bits: 8, granularity: 'channel' });
const rows = mnistTest().data.subarray(0, 16 * 784);

test('inline (default) and pool (inlineMacs: 0) calls give identical results at 1 and 16 rows', async () => {
  const inline = new EdgeInferenceEngine({ device: 'cpu' });
  const pool = new EdgeInferenceEngine({ device: 'cpu', inlineMacs: 0 });
  inline.loadModelSync('m', int8);
  pool.loadModelSync('m', int8);
  for (const n of [1, 16]) {
    const x = rows.subarray(0, n * 784);
    const a = await inline.infer('m', x);
    const b = await pool.infer('m', x);
    sameFloats(a.data, b.data, `${n} rows`);
    sameFloats(a.data, inline.inferSync('m', x).data, `${n} rows vs inferSync`);
    assert.equal(a.shape, [n, 10]);
  }
});

test('an inline call with a bad input rejects its promise', async () => {
  const e = new EdgeInferenceEngine({ device: 'cpu' });
  e.loadModelSync('m', int8);
  const bad = new Float32Array(784);
  bad[3] = NaN;
  let threw = false;
  let p: Promise<unknown> | undefined;
  try {
    p = e.infer('m', bad);
  } catch {
    threw = true;
  }
  assert.not.ok(threw);
  await rejectsCode(p!, 'E_VALUE', /value 3 is NaN/);
});

test('inlineMacs must be a number >= 0', () => {
  throwsCode(() => new EdgeInferenceEngine({ inlineMacs: -1 }), 'E_ARGUMENT', /inlineMacs/);
  throwsCode(() => new EdgeInferenceEngine({ inlineMacs: NaN }), 'E_ARGUMENT', /inlineMacs/);
});

test.run();
