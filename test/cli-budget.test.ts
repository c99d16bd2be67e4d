/**
 * `edgeopt optimize --budget` and `edgeopt sensitivity` end to end on the bundled model and
 * MNIST folder: the acceptance (size objective, 0.5 points), Ctrl-C, bad flags.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';
import type { AutoOptimizeReport } from '../lib/optimizer/auto-optimize';

const root = path.resolve(__dirname, '..');
const args = (...a: string[]) => ['--import', 'tsx', path.join(root, 'lib', 'cli', 'index.ts'), ...a];
const cli = (...a: string[]) => spawnSync(process.execPath, args(...a), { cwd: root, encoding: 'utf8' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-budget-'));
const MLP = 'data/models/mlp-784-128-10';

test('bad budget flags fail with E_ARGUMENT and write nothing', () => {
  const out = path.join(dir, 'bad.eom');
  const cases: Array<[string[], RegExp]> = [
    [['--budget', '0.5'], /--validation/],
    [['--budget', 'half', '--validation', 'data/mnist'], /--budget must be a number/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--quantize', 'int4'], /--quantize/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--objective', 'fast'], /--objective/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--report', 'r.png'], /--report/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--validation-rows', '0'], /--validation-rows/],
    [['--budget', '0.5', '--validation', 'data/mnist/test-images.npy.gz', '--fine-tune', '1'], /--fine-tune needs --validation <folder>/],
    [['--budget', '-1', '--validation', 'data/mnist'], /--budget must be a number in 0\.\.100, got '-1'/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--fine-tune', '0'], /--fine-tune must be an integer in 1\.\.1000/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--seed', '1.5'], /--seed must be an integer/],
    [['--budget', '0.5', '--validation', 'data/mnist', '--objective', 'latency', '--no-latency'], /latency/],
  ];
  for (const [flags, message] of cases) {
    const r = cli('optimize', MLP, '-o', out, ...flags);
    assert.is(r.status, 1, `${flags.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /E_ARGUMENT/, flags.join(' '));
    assert.match(r.stderr, message, flags.join(' '));
  }
  assert.not.ok(fs.existsSync(out));
  const r = cli(
    'optimize',
    MLP,
    '-o',
    out,
    '--budget',
    '0.5',
    '--validation',
    'data/mnist',
    '--report',
    path.join(dir, 'no', 'such', 'r.svg'),
  );
  assert.is(r.status, 1);
  assert.match(r.stderr, /E_IO: --report .*does not exist/);
});

test('a CNN needs calibration rows: from --calibration, or the train rows before --validation <folder>; a file alone is E_ARGUMENT', () => {
  const out = path.join(dir, 'cnn.eom');
  const r = cli(
    'optimize',
    'test/fixtures/mobilenet-mini-1x28x28/model.onnx',
    '-o',
    out,
    '--budget',
    '0.5',
    '--validation',
    'data/mnist/test-images.npy.gz',
  );
  assert.is(r.status, 1, r.stdout);
  assert.match(r.stderr, /E_ARGUMENT.*is a CNN: its int8 layers need --calibration/);
  assert.not.ok(fs.existsSync(out));
});

// The search verifies ~20 models over ~240 sensitivity evaluations of 1000 rows: minutes on the
// TypeScript backend, which gives the same numbers (int8 is exact, float32 agrees to 1e-6); run it natively.
const native = backendInfo().native;

test('acceptance: --budget 0.5 --objective size on mlp-784-128-10: test within 0.6 points, >= 1.3x smaller than the best uniform, side by side', () => {
  if (!native) return console.log('  (skipped on the TypeScript backend: see the comment above)');
  const out = path.join(dir, 'm.eom');
  const svg = path.join(dir, 'report.svg');
  const r = cli(
    'optimize',
    MLP,
    '--budget',
    '0.5',
    '--objective',
    'size',
    '--validation',
    'data/mnist',
    '--eval',
    'data/mnist',
    '-o',
    out,
    '--report',
    svg,
    '--no-latency',
  );
  assert.is(r.status, 0, r.stderr);
  for (const row of ['float32', 'uniform int8', 'best uniform (int4 per-channel)', 'chosen (per layer)'])
    assert.match(r.stdout, new RegExp(`^${row.replace(/[()]/g, '\\$&')} +[\\d,]+ `, 'm'), row);
  assert.match(r.stdout, /chosen is \d+\.\d\dx smaller than the best uniform setting within the budget/);
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as AutoOptimizeReport;
  assert.ok(report.chosen.accuracyDrop <= 0.5 + 1e-9, `validation drop ${report.chosen.accuracyDrop}`);
  assert.ok(report.chosen.testDrop! <= 0.6, `test drop ${report.chosen.testDrop}`);
  assert.ok(report.gainOverUniform! >= 1.3, `gain ${report.gainOverUniform}`);
  assert.ok(report.bestUniform!.accuracyDrop <= 0.5 + 1e-9);
  assert.equal([report.validationRows, report.testRows], [1000, 2000]);
  assert.is(fs.statSync(out).size, report.chosen.bytes);
  assert.ok(fs.readFileSync(svg, 'utf8').startsWith('<svg'));
  assert.is(report.points.filter((p) => p.source === 'uniform').length, 15);
});

test('sensitivity prints one row per layer and setting (JSON)', () => {
  if (!native) return console.log('  (skipped on the TypeScript backend: ~240 evaluations)');
  const r = cli('sensitivity', MLP, '--validation', 'data/mnist', '--validation-rows', '200', '--no-latency', '--json');
  assert.is(r.status, 0, r.stderr);
  const t = JSON.parse(r.stdout);
  assert.equal(
    t.layers.map((l: { node: string; candidates: unknown[] }) => [l.node, l.candidates.length]),
    [
      // float32 + (no pruning, 6 sparsities, 3 unit sparsities) x 5 widths x 3 granularities
      ['fc1', 1 + 10 * 15],
      // the last layer: no unit pruning, and a group of 128 is its whole K (per-channel), so it is left out
      ['fc2', 1 + 7 * 10],
    ],
  );
  assert.is(t.validationRows, 200);
});

test('Ctrl-C during the search: exit 130, nothing written (no model, no report, no temporary file)', async () => {
  const sub = fs.mkdtempSync(path.join(dir, 'sigint-'));
  const child = spawn(
    process.execPath,
    args(
      'optimize',
      MLP,
      '--budget',
      '0.5',
      '--validation',
      'data/mnist',
      '-o',
      path.join(sub, 'm.eom'),
      '--report',
      path.join(sub, 'r.svg'),
    ),
    {
      cwd: root,
    },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) =>
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('started')) resolve();
    }),
  );
  child.kill('SIGINT');
  assert.is(await exited, 130, stderr);
  assert.match(stderr, /stopped; nothing was written/);
  assert.equal(fs.readdirSync(sub), []);
});

test.run();
