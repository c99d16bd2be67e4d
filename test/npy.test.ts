/** .npy reading and writing, on the bundled MNIST files and on malformed input. */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MNIST_DIR } from '../lib/data/bundled';
import { loadImageFolder } from '../lib/data/dataset';
import { encodeNpy, parseNpy, readNpy } from '../lib/data/npy';
import { sameInts, throwsCode } from './helpers';

test('reads the bundled MNIST labels (.npy) and images (.npy.gz)', () => {
  const labels = readNpy(path.join(MNIST_DIR, 'test-labels.npy'));
  assert.is(labels.dtype, 'u1');
  assert.equal(labels.shape, [2000]);
  sameInts(labels.data.subarray(0, 12) as Uint8Array, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1], 'round-robin labels');
  const ds = loadImageFolder(MNIST_DIR, 'test');
  assert.equal(ds.shape, [2000, 28, 28]);
  assert.ok(
    ds.data.every((v) => v >= 0 && v <= 1),
    'scaled to [0, 1]',
  );
});

test('encode/parse round trip for every dtype, plain and gzip', () => {
  const arrays = [
    new Float32Array([1.5, -2]),
    new Int8Array([-1, 2, 3]),
    new Uint8Array([255]),
    new Int32Array([1 << 30]),
    new BigInt64Array([-5n]),
    new Float64Array([Math.PI]),
  ];
  for (const a of arrays) {
    for (const gzip of [false, true]) {
      const back = parseNpy(encodeNpy(a, [a.length], { gzip }));
      assert.equal(back.shape, [a.length]);
      assert.equal(Array.from(back.data as ArrayLike<unknown>), Array.from(a as ArrayLike<unknown>));
    }
  }
  const m = parseNpy(encodeNpy(new Float32Array(6), [2, 3]));
  assert.equal(m.shape, [2, 3]);
});

test('malformed .npy input is E_FORMAT naming the file', () => {
  const good = encodeNpy(new Float32Array(4), [4]);
  throwsCode(() => parseNpy(Buffer.from('hello world'), 'x.npy'), 'E_FORMAT', /x\.npy.*magic/);
  throwsCode(() => parseNpy(good.subarray(0, good.length - 1)), 'E_FORMAT', /needs 16 bytes/);
  const huge = Buffer.from(good.toString('latin1').replace('(4,)', '(99999999999,)'), 'latin1');
  throwsCode(() => parseNpy(huge), 'E_FORMAT', /needs/);
  const fortran = Buffer.from(good.toString('latin1').replace('False', 'True '), 'latin1');
  throwsCode(() => parseNpy(fortran), 'E_FORMAT', /fortran/);
  const bigEndian = Buffer.from(good.toString('latin1').replace('<f4', '>f4'), 'latin1');
  throwsCode(() => parseNpy(bigEndian), 'E_FORMAT', /dtype/);
  throwsCode(() => parseNpy(Buffer.from([0x1f, 0x8b, 1, 2, 3])), 'E_FORMAT', /gzip/);
  throwsCode(() => readNpy('/nonexistent.npy'), 'E_NOT_FOUND');
});

test.run();
