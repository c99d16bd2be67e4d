/**
 * The README's "Coming from onnxruntime-node" snippet, run as a user would: the block is read from
 * README.md, `require('edgeopt')` points at this checkout, and it runs in its own process on a model.onnx
 * exported from the bundled MNIST model.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel } from '../lib/data/bundled';
import { saveOnnx } from '../lib/model/onnx';

const ROOT = path.join(__dirname, '..');

function readmeBlock(marker: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- readme-snippet: ${marker}`);
  assert.ok(at >= 0, `README.md has no snippet marked ${marker}`);
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `no js block after the ${marker} marker`);
  return m![1];
}

test("the README's onnxruntime-node port runs and prints a [1,10] output", () => {
  const code = readmeBlock('ort-port');
  assert.match(code, /EdgeInferenceEngine\.create\('\.\/model\.onnx'\)/);
  assert.match(code, /\{ data, dims: \[1, 784\] \}/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-readme-'));
  try {
    saveOnnx(defaultModel(), path.join(dir, 'model.onnx'));
    const file = path.join(dir, 'snippet.cjs');
    const runnable = code
      .replace("require('edgeopt')", `require(${JSON.stringify(path.join(ROOT, 'lib', 'index.ts'))})`)
      .replace("'./model.onnx'", JSON.stringify(path.join(dir, 'model.onnx')));
    fs.writeFileSync(file, runnable);
    // From the checkout, so `--import tsx` resolves (the model path is absolute).
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[ 'input' \] \[ '[^']+' \] \[1,10\] Float32Array\(10\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
