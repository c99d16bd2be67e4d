/** CLI defects acceptance testing found: each failed before its fix. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel, encodeNpy, quantizeGraph, saveModel, loadModel, EdgeOptError } from '../lib';
import { writeFileAtomic } from '../lib/util/atomic-write';

const root = path.resolve(__dirname, '..');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'lib', 'cli', 'index.ts'), ...args], { cwd: root, encoding: 'utf8' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-cli-defects-'));
const weights = 'data/models/mlp-784-128-10';

/** The process failed with this edgeopt error code, on one clean line (no stack trace). */
function failsWith(r: ReturnType<typeof cli>, code: string, message: RegExp): void {
  assert.is.not(r.status, 0, `exit status (stdout: ${r.stdout})`);
  assert.match(r.stderr, new RegExp(`^edgeopt: ${code}: `));
  assert.match(r.stderr, message);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}

test('`--version` prints the package version', () => {
  const r = cli('--version');
  assert.is(r.status, 0);
  assert.is(r.stdout.trim(), JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
});

test('--prune-mode global|unstructured|neurons without --prune is refused, not a silent no-op', () => {
  for (const mode of ['global', 'unstructured', 'neurons']) {
    failsWith(cli('optimize', weights, '-o', path.join(dir, 'm.eom'), '--prune-mode', mode), 'E_ARGUMENT', /--prune <sparsity>/);
  }
  assert.not.ok(fs.existsSync(path.join(dir, 'm.eom')));
});

test('numeric options reject non-numbers, quoting the text given', () => {
  failsWith(
    cli('optimize', weights, '-o', path.join(dir, 'm.eom'), '--prune', 'half'),
    'E_ARGUMENT',
    /--prune must be a number, got 'half'/,
  );
  failsWith(cli('train', '--epochs', '2x', '-o', path.join(dir, 't.eom')), 'E_ARGUMENT', /--epochs must be a number, got '2x'/);
  failsWith(cli('fl', 'simulate', '--clients', 'many'), 'E_ARGUMENT', /--clients must be a number, got 'many'/);
  failsWith(cli('fl', 'simulate', '--lr-schedule', 'weekly'), 'E_ARGUMENT', /--lr-schedule must be constant or cosine, got 'weekly'/);
  failsWith(cli('fl', 'simulate', '--norm', 'layer'), 'E_ARGUMENT', /--norm must be batch, group or none, got 'layer'/);
});

test('a non-existent output folder is a clean E_IO before any work, on every writing command', () => {
  const out = path.join(dir, 'no-such-folder', 'm.eom');
  failsWith(cli('optimize', weights, '-o', out, '--quantize', 'int8'), 'E_IO', /no-such-folder does not exist/);
  failsWith(cli('train', '-o', out), 'E_IO', /does not exist/);
  failsWith(cli('export', weights, '-o', out), 'E_IO', /does not exist/);
  failsWith(cli('distill', '--output', out), 'E_IO', /does not exist/);
  failsWith(cli('fl', 'simulate', '-o', out), 'E_IO', /does not exist/);
  // The library's writers say E_IO too, and leave no temp file behind.
  try {
    saveModel(defaultModel(), out);
    assert.unreachable('saveModel into a missing folder must throw');
  } catch (err) {
    assert.instance(err, EdgeOptError);
    assert.is((err as EdgeOptError).code, 'E_IO');
  }
  const blocked = path.join(dir, 'a-folder');
  fs.mkdirSync(blocked);
  assert.throws(
    () => writeFileAtomic(blocked, new Uint8Array(3)),
    (e: EdgeOptError) => e.code === 'E_IO',
  );
  assert.equal(
    fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left',
  );
});

test('train uses -o/--output and --data; --out is gone', () => {
  failsWith(cli('train', '--out', path.join(dir, 'x.eom')), 'E_ARGUMENT|error', /unknown option '--out'/);
});

test('`--npu-plugin` naming a missing file fails unless --device auto is given', () => {
  const input = path.join(dir, 'x.npy');
  fs.writeFileSync(input, encodeNpy(new Float32Array(784), [1, 784]));
  failsWith(cli('run', weights, '--input', input, '--npu-plugin', '/no/such/plugin.so'), 'E_NOT_FOUND', /no such file/);
  failsWith(cli('run', weights, '--input', input, '--npu-plugin', '/no/such/plugin.so', '--device', 'npu'), 'E_NOT_FOUND', /no such file/);
  const auto = cli('run', weights, '--input', input, '--npu-plugin', '/no/such/plugin.so', '--device', 'auto', '--json');
  assert.is(auto.status, 0, auto.stderr);
  assert.ok(JSON.parse(auto.stdout).placement.every((p: { backend: string }) => p.backend !== 'npu'));
});

test('export takes a weights folder like optimize, prints --json with notes, warns about dequantized layers', () => {
  const r = cli('export', weights, '-o', path.join(dir, 'm.onnx'), '--json');
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.bytes, fs.statSync(path.join(dir, 'm.onnx')).size);
  assert.equal(out.notes, []);
  const grouped = path.join(dir, 'g.eom');
  saveModel(quantizeGraph(defaultModel(), { bits: 4, granularity: { group: 32 } }), grouped);
  const g = cli('export', grouped, '-o', path.join(dir, 'g.onnx'));
  assert.is(g.status, 0, g.stderr);
  assert.match(g.stderr, /warning: fc1, fc2 have group-wise scales.*dequantized/);
  const int8 = path.join(dir, 'q.eom');
  saveModel(quantizeGraph(defaultModel()), int8);
  const q = cli('export', int8, '-o', path.join(dir, 'q.onnx'));
  assert.match(q.stderr, /per batch.*per row/);
});

test('distill and fl simulate save their model with -o', () => {
  const d = cli('distill', '--epochs', '1', '--hidden', '8', '-o', path.join(dir, 'student.eom'), '--json');
  assert.is(d.status, 0, d.stderr);
  assert.ok(JSON.parse(d.stdout).saved.bytes > 0);
  assert.is(loadModel(path.join(dir, 'student.eom')).nodes.length, 2);
  const f = cli(
    'fl',
    'simulate',
    '--clients',
    '2',
    '--rounds',
    '1',
    '--epochs',
    '1',
    '--hidden',
    '8',
    '-o',
    path.join(dir, 'global.eom'),
    '--json',
  );
  assert.is(f.status, 0, f.stderr);
  assert.ok(JSON.parse(f.stdout).saved.bytes > 0);
  assert.is(loadModel(path.join(dir, 'global.eom')).nodes.length, 2);
});

test('fl simulate --calibrate: the JSON has the calibration, and the final accuracy is its', () => {
  const f = cli(
    'fl',
    'simulate',
    '--clients',
    '4',
    '--rounds',
    '1',
    '--non-iid',
    '2',
    '--epochs',
    '1',
    '--hidden',
    '8',
    '--calibrate',
    '--json',
  );
  assert.is(f.status, 0, f.stderr);
  const r = JSON.parse(f.stdout);
  assert.ok(r.calibration.bytesSent > 0 && r.calibration.accuracy > 0);
  assert.is(r.finalAccuracy, r.calibration.accuracy);
  assert.match(f.stderr, /calibrated: test accuracy/);
  const plain = JSON.parse(cli('fl', 'simulate', '--clients', '2', '--rounds', '1', '--epochs', '1', '--hidden', '8', '--json').stdout);
  assert.is(plain.calibration, undefined);
});

test.run();
