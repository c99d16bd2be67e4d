/**
 * ONNX import keeps one copy of the weights: float32 initializers are copied once
 * into the arrays the graph keeps, int8 ones stay int8 (never widened to float64),
 * and QDQ weights are dequantized to float only if something needs the floats (a
 * QDense takes the int8 values). Measured as the peak RSS growth of the import in
 * a fresh process; it once was 13x the file for int8 QDQ models.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { denseGraph } from '../lib/model/build';
import { saveOnnx } from '../lib/model/onnx/export';
import { quantizeGraph } from '../lib/optimizer/quantize';

test('importing a 64 MB fp32 and a 16 MB int8 QDQ ONNX file peaks at under 1.5x the file', () => {
  if (process.platform !== 'linux') return; // getrusage's maxRSS is in KB on Linux
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-onnx-memory-'));
  try {
    const [k, n] = [4096, 4096];
    const weight = new Float32Array(k * n).map((_, i) => (((i * 7919) % 1001) - 500) / 5e4);
    const graph = denseGraph('wide', [
      { name: 'fc', weight, outFeatures: n, inFeatures: k, bias: new Float32Array(n), activation: 'none' },
    ]);
    saveOnnx(graph, path.join(dir, 'fp32.onnx'));
    saveOnnx(quantizeGraph(graph), path.join(dir, 'qdq.onnx'), { int8: 'qdq' });
    for (const name of ['fp32', 'qdq']) {
      const r = spawnSync(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'fixtures', 'onnx-import-memory.ts'), path.join(dir, `${name}.onnx`)],
        { encoding: 'utf8', timeout: 120_000 },
      );
      assert.is(r.status, 0, r.stderr);
      const { fileMb, peakMb } = JSON.parse(r.stdout) as { fileMb: number; peakMb: number };
      assert.ok(peakMb < 1.5 * fileMb, `${name}: the import of a ${fileMb.toFixed(0)} MB file peaked at +${peakMb.toFixed(0)} MB`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
