/** examples/: the README's code blocks are these files verbatim, and every one of them runs. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(__dirname, '..');
const { check, examplesIn } = require(path.join(root, 'scripts', 'readme-examples.js')) as {
  check(readme: string): string[];
  examplesIn(readme: string): string[];
};
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-examples-'));

function run(file: string, ...args: string[]) {
  // tsx's CLI, by path: the examples run in a temp folder, where a bare --import tsx would not resolve.
  const runner = file.endsWith('.mts') ? [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs')] : [];
  return spawnSync(process.execPath, [...runner, path.join(root, file), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
}

test('every js/ts block of the README is an examples/ file, verbatim', () => {
  assert.equal(check(readme), []);
  assert.ok(examplesIn(readme).length >= 6);
});

test('the check fails when a block and its file differ, or a block has no file', () => {
  const [first] = examplesIn(readme);
  assert.ok(
    check(readme.replace(`<!-- example: ${first} -->\n\`\`\`js\n`, `<!-- example: ${first} -->\n\`\`\`js\n// edited\n`)).length === 1,
  );
  assert.ok(check(`${readme}\n\`\`\`ts\nconst x = 1;\n\`\`\`\n`).some((p) => /no <!-- example/.test(p)));
});

// The examples import 'edgeopt' by name: Node resolves it to this package (self-reference through "exports").
const expectations: Record<string, RegExp> = {
  'examples/quick-start.mjs': /408224 -> \d+ bytes[\s\S]*logits \[ 4, 10 \]/,
  'examples/optimize.mjs': /int8: \d+ bytes, top-1 9\d\.\d\d %/,
  'examples/budget.mjs': /chosen: \d+ bytes, validation -0\.\d\d, test -\d\.\d\d points[\s\S]*\d\.\d\dx smaller than the best uniform/,
  'examples/onnx.mjs': /fp32 0\.933, int8 0\.9\d+[\s\S]*wrote model-int8\.onnx/,
  'examples/training.mjs': /distilled 784-32-10 student: test \d+\.\d+ %/,
  'examples/federated.mjs': /round 2: test accuracy[\s\S]*done: 2 rounds/,
  'examples/npu.mjs': /outputs 8,10/,
  'examples/cnn.mjs': /logits \[ 8, 10 \][\s\S]*arenaBytes: 200704/,
  'examples/cnn-training.mjs':
    /mobilenet-mini, 1 epoch on 1000 digits: test \d+\.\d\d %\n25 % filters: \d+\.\d\d % before fine-tuning, \d+\.\d\d % after 1 epoch/,
  'examples/require.cjs': /predicted 0 1 2 3 4 5 6 7 \d 9 labels 0 1 2 3 4 5 6 7 8 9/,
  'examples/typescript.mts': /refused with E_SHAPE/,
  'examples/onnxruntime-port.cjs': /\[ 'input' \] \[ 'logits' \] logits \[1,10\] digit 0/,
  'examples/serving.mjs':
    /dtype: 'uint8'[\s\S]*100 runs in \d+ batches, identical to unbatched runs: true\nAbortError \(E_ABORTED\)\nHTTP 200: digit 7, label 7\nedgeopt_requests_total\{model="mnist",code="200"\} 1/,
};

for (const [file, expected] of Object.entries(expectations)) {
  test(`${file} runs`, () => {
    const r = run(file);
    assert.is(r.status, 0, `${file} exited ${r.status}: ${r.stderr}`);
    assert.match(r.stdout, expected);
  });
}

test('examples/ has no file the tests do not run', () => {
  const files = fs.readdirSync(path.join(root, 'examples')).filter((f) => /\.(mjs|cjs|mts)$/.test(f));
  assert.equal(files.map((f) => `examples/${f}`).sort(), Object.keys(expectations).sort());
});

test('federated example with one client: both sides say they are waiting, the client gives up at --timeout', () => {
  const r = run('examples/federated.mjs', '--clients', '1', '--timeout', '15');
  assert.is(r.status, 1);
  assert.match(r.stdout, /alice: waiting: round 1 has 1 of the 2 updates/);
  assert.match(r.stderr, /E_TIMEOUT: client 'alice': gave up after timeoutMs \(15000 ms\)/);
});

test.run();
