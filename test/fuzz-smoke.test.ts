/**
 * The fuzz harness (scripts/fuzz.js) on a few cases per format, on the backend
 * this run uses: mutated .eom and ONNX files only ever load or throw EdgeOptError,
 * no worker crashes or hangs. The full runs (thousands of cases) are `npm run fuzz`.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';

test('20 mutated .eom and 20 mutated ONNX files: only loads and EdgeOptErrors', () => {
  const backend = backendInfo().native ? 'native' : 'ts';
  const r = spawnSync(
    process.execPath,
    [path.join(__dirname, '..', 'scripts', 'fuzz.js'), '--cases', '20', '--backend', backend, '--seed', '11', '--json'],
    {
      encoding: 'utf8',
      timeout: 180_000,
    },
  );
  assert.ok(r.stdout, `no report: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as Array<{
    format: string;
    cases: number;
    ok: number;
    other: number;
    crashes: number;
    hangs: number;
    examples: unknown[];
  }>;
  assert.equal(
    report.map((s) => s.format),
    ['eom', 'onnx'],
  );
  for (const s of report) {
    assert.is(s.cases, 20);
    assert.is(s.other + s.crashes + s.hangs, 0, `${s.format}: ${JSON.stringify(s.examples)}`);
  }
  assert.ok(
    report.some((s) => s.ok > 0),
    'some mutants still load and run',
  );
  assert.is(r.status, 0, r.stderr);
});

test.run();
