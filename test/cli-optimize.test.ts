/** `edgeopt optimize` end to end on the bundled weights and MNIST folder. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../lib/model';

const root = path.resolve(__dirname, '..');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'lib', 'cli', 'index.ts'), ...args], { cwd: root, encoding: 'utf8' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-cli-'));

test('optimize prunes and quantizes, writes the model and prints a JSON report', () => {
  const out = path.join(dir, 'm.eom');
  const r = cli(
    'optimize',
    'data/models/mlp-784-128-10',
    '-o',
    out,
    '--prune',
    '0.5',
    '--prune-mode',
    'global',
    '--quantize',
    'int4',
    '--granularity',
    'group:32',
    '--eval',
    'data/mnist',
    '--json',
  );
  assert.is(r.status, 0, r.stderr);
  const { bytes, report } = JSON.parse(r.stdout);
  assert.is(fs.statSync(out).size, bytes);
  assert.equal(
    report.passes.map((p: { name: string }) => p.name),
    ['prune global 0.5', 'quantize int4'],
  );
  assert.ok(report.compression > 7, `${report.compression}`);
  assert.ok(report.passes[1].after.accuracy > 0.92);
  const m = loadModel(out);
  assert.equal(
    m.nodes.map((n) => n.op),
    ['QDense', 'QDense'],
  );
  assert.is(m.tensors['fc1.weight'].quant!.groupSize, 32);
});

test('optimize --compress writes the compressed .eom, which loads to the same model as the plain one', () => {
  const plain = path.join(dir, 'plain.eom');
  const small = path.join(dir, 'small.eom');
  const args = ['optimize', 'data/models/mlp-784-128-10', '--quantize', 'int8', '--json'];
  const a = cli(...args, '-o', plain);
  const b = cli(...args, '-o', small, '--compress');
  assert.is(a.status, 0, a.stderr);
  assert.is(b.status, 0, b.stderr);
  assert.is(JSON.parse(b.stdout).bytes, fs.statSync(small).size);
  assert.ok(fs.statSync(small).size < fs.statSync(plain).size);
  assert.is(fs.readFileSync(small).toString('latin1', 0, 4), 'EOMZ');
  const [p, c] = [loadModel(plain), loadModel(small)];
  assert.equal(c.nodes, p.nodes);
  assert.equal(Array.from(c.tensors['fc1.weight'].data!), Array.from(p.tensors['fc1.weight'].data!));
});

test('optimize with --target npu flags what the NPU cannot run, and bad options fail with a code', () => {
  const r = cli(
    'optimize',
    'data/models/mlp-784-128-10',
    '-o',
    path.join(dir, 'n.eom'),
    '--quantize',
    'int4',
    '--activations',
    'dynamic',
    '--target',
    'npu',
  );
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /does not fit npu:\n\s+fc1: 4-bit weights/);
  const bad = cli('optimize', 'data/models/mlp-784-128-10', '-o', path.join(dir, 'x.eom'), '--quantize', 'int9');
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /E_ARGUMENT: --quantize must be/);
  const missing = cli('optimize', 'nope.eom', '-o', path.join(dir, 'x.eom'));
  assert.match(missing.stderr, /E_NOT_FOUND/);
  assert.not.ok(fs.existsSync(path.join(dir, 'x.eom')), 'nothing written on failure');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
