/** The published surface: require and import see the same API; the CLI answers. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');

test('require() and import() of the built package expose the same named exports', async () => {
  const cjs = require(path.join(root, 'dist', 'index.js'));
  const esm = await import(path.join(root, 'dist', 'index.mjs'));
  const names = Object.keys(cjs)
    .filter((n) => n !== '__esModule')
    .sort();
  for (const n of [
    'EdgeInferenceEngine',
    'EdgeModelOptimizer',
    'EdgeOptError',
    'backendInfo',
    'loadModel',
    'saveModel',
    'quantize',
    'prune',
  ]) {
    assert.ok(names.includes(n), `missing export ${n}`);
  }
  for (const n of names) assert.is(esm[n], cjs[n], `export ${n}`);
});

test('`edgeopt info --json` prints backendInfo()', () => {
  const out = JSON.parse(execFileSync(process.execPath, [cli, 'info', '--json'], { encoding: 'utf8' }));
  const { backendInfo } = require(path.join(root, 'dist', 'index.js'));
  assert.equal(out, backendInfo());
  assert.type(out.native, 'boolean');
  assert.ok(Array.isArray(out.isa) && typeof out.kernel === 'string');
  if (!out.native) assert.type(out.reason, 'string');
});

test('the CLI reports a bad command with a non-zero exit', () => {
  let failed = false;
  try {
    execFileSync(process.execPath, [cli, 'no-such-command'], { stdio: 'pipe' });
  } catch {
    failed = true;
  }
  assert.ok(failed);
});

test.run();
