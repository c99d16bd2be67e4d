/** Quantization and pruning passes on the real fixture weights, and the pipeline's report. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, kernels } from '../lib/backends';
import { tsKernels } from '../lib/backends/ts/kernels';
import { defaultModel, mnistTest } from '../lib/data/bundled';
import { sliceRows } from '../lib/data/dataset';
import { EdgeModelOptimizer } from '../lib/optimizer/optimizer';
import { prune, pruneGraph } from '../lib/optimizer/prune';
import { quantize, quantizeGraph } from '../lib/optimizer/quantize';
import { sameFloats, sameInts, throwsCode } from './helpers';

const fp32 = defaultModel();
const w1 = fp32.tensors['fc1.weight'].data as Float32Array;

test('per-channel int8 on fc1: PyTorch-style scales (max|w| / 127) and round-half-even values', () => {
  const q = quantizeGraph(fp32);
  const t = q.tensors['fc1.weight'];
  assert.is(t.dtype, 'int8');
  assert.is(t.quant!.scale.length, 128);
  for (let r = 0; r < 128; r++) {
    let mx = 0;
    for (let i = 0; i < 784; i++) mx = Math.max(mx, Math.abs(w1[r * 784 + i]));
    assert.is(t.quant!.scale[r], Math.fround(mx / 127), `scale ${r}`);
  }
  const ref = tsKernels.quantizeSymmetric(w1, 128, 784, 8, true);
  sameInts(t.data!, ref.q, 'q');
  assert.is(fp32.tensors['fc1.weight'].dtype, 'float32', 'the input graph is not mutated');
});

test('native and TS quantization give identical bytes on the real weights', () => {
  if (!backendInfo().native) return;
  for (const perChannel of [true, false]) {
    const a = kernels().quantizeSymmetric(w1, 128, 784, 8, perChannel);
    const b = tsKernels.quantizeSymmetric(w1, 128, 784, 8, perChannel);
    sameInts(a.q, b.q, 'q');
    sameFloats(a.scales, b.scales, 'scales');
  }
});

test('per-layer pruning zeroes exactly floor(n * sparsity) weights and keeps a mask', () => {
  const p = pruneGraph(fp32, { sparsity: 0.7 });
  for (const name of ['fc1.weight', 'fc2.weight']) {
    const t = p.tensors[name];
    const zeros = (t.data as Float32Array).filter((v) => v === 0).length;
    assert.is(zeros, Math.floor(t.data!.length * 0.7), name);
    assert.is(t.mask!.filter((v) => v === 0).length, zeros);
  }
  const q = quantizeGraph(p);
  const m = q.tensors['fc1.weight'];
  for (let i = 0; i < m.data!.length; i++) if (!m.mask![i]) assert.is(m.data![i], 0, 'pruned weights stay zero after quantization');
});

test('the pipeline reports size and accuracy for every pass', async () => {
  const evaluation = sliceRows(mnistTest(), 0, 500);
  const opt = new EdgeModelOptimizer().addOptimization('prune', prune({ sparsity: 0.5 })).addOptimization('int8', quantize({ bits: 8 }));
  const { model, report } = await opt.optimize(fp32, { evaluation });
  assert.is(report.passes.length, 2);
  assert.ok(report.bytesAfter < report.bytesBefore * 0.3, `${report.bytesAfter} bytes`);
  for (const p of report.passes) {
    assert.type(p.accuracyBefore, 'number');
    assert.type(p.accuracyAfter, 'number');
    assert.ok(p.accuracyAfter! > 0.85, `${p.name}: ${p.accuracyAfter}`);
  }
  assert.is(model.nodes[0].op, 'QDense');
});

test('bad optimizer arguments are E_ARGUMENT', () => {
  throwsCode(() => quantizeGraph(fp32, { bits: 9 }), 'E_ARGUMENT', /bits/);
  throwsCode(() => quantizeGraph(fp32, { granularity: 'row' as never }), 'E_ARGUMENT', /granularity/);
  throwsCode(() => pruneGraph(fp32, { sparsity: 1.5 }), 'E_ARGUMENT', /sparsity/);
  throwsCode(() => pruneGraph(quantizeGraph(fp32), { sparsity: 0.5 }), 'E_ARGUMENT', /already quantized/);
  throwsCode(() => new EdgeModelOptimizer().addOptimization('x', 3 as never), 'E_ARGUMENT', /function/);
});

test.run();
