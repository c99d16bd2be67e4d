// The CNN part of `npm run bench -- compare`: edgeopt native fp32 against
// onnxruntime-node fp32 on the same ONNX bytes, one thread, same-run medians of
// interleaved rounds. Models: the bundled mobilenet-mini-1x28x28 and the LeNet-5
// fixture (PyTorch exports, MNIST digits as input), and a torchvision-style
// MobileNetV2-1.0 224x224 and ResNet-18 224x224 that edgeopt's GraphBuilder
// makes with seeded weights and exports to ONNX, so onnxruntime runs the
// identical model (seeded [0, 1) inputs). Times are measurements, never assertions.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const C = require('./support/common');

const ROOT = path.resolve(__dirname, '..');

const CNN_MODELS = {
  'mobilenet-mini': 'mobilenet-mini-1x28x28 (bundled, PyTorch-trained, ONNX opset 13) on MNIST test digits',
  lenet5: 'lenet5-1x28x28 (test fixture, PyTorch-trained) on MNIST test digits',
  mobilenetv2: 'MobileNetV2-1.0 224x224 (GraphBuilder, seeded weights, BatchNormalization nodes) exported to ONNX',
  resnet18: 'ResNet-18 224x224 (GraphBuilder, seeded weights) exported to ONNX',
};

function prepare(E, which) {
  const digits = () => E.mnistTest().data;
  if (which === 'mobilenet-mini') {
    const bytes = fs.readFileSync(path.join(ROOT, 'data', 'models', 'mobilenet-mini-1x28x28', 'model.onnx'));
    return { id: 'mobilenet-mini-1x28x28', bytes, shape: [1, 28, 28], source: digits() };
  }
  if (which === 'lenet5') {
    const bytes = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'lenet5-1x28x28', 'model.onnx'));
    return { id: 'lenet5-1x28x28', bytes, shape: [1, 28, 28], source: digits() };
  }
  const graph = which === 'mobilenetv2' ? E.mobileNetV2() : E.resNet18();
  return { id: graph.name, bytes: E.encodeOnnx(graph), shape: [3, 224, 224], source: C.randomRows(4, 3 * 224 * 224, 9) };
}

function inputFor(model, batch) {
  const per = model.shape.reduce((a, b) => a * b, 1);
  const rows = model.source.length / per;
  const x = new Float32Array(batch * per);
  for (let r = 0; r < batch; r++) x.set(model.source.subarray((r % rows) * per, ((r % rows) + 1) * per), r * per);
  return x;
}

async function measure(engines, x, batch, budgetMs, rounds) {
  for (const e of engines) await e.run(x, batch); // warm-up
  const samples = engines.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < engines.length; i++) {
      const k = (i + round) % engines.length;
      const end = C.now() + budgetMs / rounds;
      do {
        const t0 = C.now();
        await engines[k].run(x, batch);
        samples[k].push(C.now() - t0);
      } while (C.now() < end);
    }
  }
  return samples.map((s) => C.summarize(s));
}

/**
 * Where the time goes: each op's median seconds over `runs` single runs of the native program
 * (one thread), summed by kernel, with the end-to-end median of the same program for the
 * executor's own overhead (everything outside the ops).
 */
function profile(E, bytes, shape, batch, runs) {
  const addon = E.backendInfo().native ? require(path.join(ROOT, 'lib', 'backends', 'index.ts')).nativeAddon() : null;
  if (!addon) return null;
  const program = E.lowerGraph(E.loadOnnx(bytes));
  const native = new addon.Program(program, undefined, 1);
  const x = new Float32Array(batch * shape.reduce((a, b) => a * b, 1)).map((_, i) => (Math.sin(i) + 1) / 2);
  native.runSync([x], batch);
  // Profiled and plain runs alternate, so a load change on this shared machine hits both alike.
  const samples = [];
  const total = [];
  for (let r = 0; r < runs; r++) {
    samples.push(native.profile([x], batch, 1));
    const t0 = C.now();
    native.runSync([x], batch);
    total.push(C.now() - t0);
  }
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const perOp = program.ops.map((_, i) => median(samples.map((s) => s[i])) * 1000);
  const byKernel = {};
  program.ops.forEach((op, i) => {
    const k = native.opKernels[i] || op.op;
    byKernel[k] = C.round((byKernel[k] ?? 0) + perOp[i], 4);
  });
  const opsMs = perOp.reduce((a, b) => a + b, 0);
  const top = program.ops
    .map((op, i) => ({
      node: op.node,
      kernel: native.opKernels[i] || op.op,
      shape: op.op === 'conv' ? `${op.kh}x${op.kw}/${op.strideH} g${op.groups} ${op.inC}->${op.outC} @${op.outH}x${op.outW}` : '',
      ms: C.round(perOp[i], 4),
    }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 8);
  return { batch, opsMs: C.round(opsMs, 4), runMs: C.round(median(total), 4), byKernel, top };
}

/** Rows of the CNN comparison, and the targets from them. */
async function compareCnn({ models, batches, budget, rounds, log }) {
  const E = C.loadEdgeopt();
  const ort = C.optional('onnxruntime-node');
  const out = { models: [], summary: [], notes: [] };
  if (!ort.mod) {
    out.notes.push(`CNN rows skipped: ${ort.note}`);
    return out;
  }
  for (const which of models) {
    const model = prepare(E, which);
    const engine = new E.EdgeInferenceEngine({ device: 'cpu', threads: 1, strict: true });
    engine.loadModelSync('m', model.bytes);
    const session = await ort.mod.InferenceSession.create(model.bytes, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const input = session.inputNames[0];
    const output = session.outputNames[0];
    const engines = [
      { key: 'edgeopt-native-fp32', run: (x, b) => engine.infer('m', { data: x, shape: [b, ...model.shape] }).then((r) => r.data) },
      { key: 'edgeopt-native-fp32-sync', run: async (x, b) => engine.inferSync('m', { data: x, shape: [b, ...model.shape] }).data },
      {
        key: 'ort-fp32',
        run: async (x, b) => (await session.run({ [input]: new ort.mod.Tensor('float32', x, [b, ...model.shape]) }))[output].data,
      },
    ];
    const entry = { model: model.id, describe: CNN_MODELS[which], memory: engine.memory('m'), configs: [] };
    // Same input, both engines: largest difference relative to the output range.
    const x2 = inputFor(model, 2);
    const [a, b] = [await engines[0].run(x2, 2), await engines[2].run(x2, 2)];
    const range = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    entry.maxRelDiff = Number((a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0) / range).toPrecision(3));
    const big = model.shape[0] === 3;
    for (const batch of big ? [1] : batches) {
      const stats = await measure(engines, inputFor(model, batch), batch, budget * 1000 * (big ? 3 : 1), rounds);
      const rows = engines.map((e, i) => ({
        engine: e.key,
        samples: stats[i].n,
        medianMs: C.round(stats[i].median, 4),
        p10Ms: C.round(stats[i].p10, 4),
        p90Ms: C.round(stats[i].p90, 4),
      }));
      // ORT's run() computes on the main thread; inferSync is the like-for-like edgeopt call.
      const ratio = C.round(rows[2].medianMs / rows[1].medianMs, 3);
      const asyncRatio = C.round(rows[2].medianMs / rows[0].medianMs, 3);
      entry.configs.push({ threads: 1, batch, rows, edgeoptVsOrt: ratio, edgeoptAsyncVsOrt: asyncRatio });
      log(
        `  ${model.id.padEnd(24)} batch ${String(batch).padStart(3)}  edgeopt inferSync ${rows[1].medianMs.toFixed(3).padStart(8)} ms (infer ${rows[0].medianMs.toFixed(3)} ms)  ORT ${rows[2].medianMs.toFixed(3).padStart(8)} ms  edgeopt speed ${ratio}x ORT (infer: ${asyncRatio}x)`,
      );
    }
    entry.profile = profile(E, model.bytes, model.shape, 1, model.shape[0] === 3 ? 15 : 400);
    if (entry.profile) {
      const pr = entry.profile;
      log(`    profile, batch 1: ops ${pr.opsMs} ms of a ${pr.runMs} ms run; by kernel ${JSON.stringify(pr.byKernel)}`);
    }
    out.models.push(entry);
    await session.release();
    engine.dispose();
  }
  const find = (id, batch) => out.models.find((m) => m.model === id)?.configs.find((c) => c.batch === batch);
  const targets = [
    ['mobilenet-mini-1x28x28', 1, 1.0],
    ['mobilenetv2-224', 1, 0.8],
  ];
  for (const [id, batch, need] of targets) {
    const c = find(id, batch);
    if (c)
      out.summary.push({
        target: `${id}, batch ${batch}, 1 thread: edgeopt fp32 (inferSync) >= ${need}x ORT fp32`,
        engine: 'edgeopt-native-fp32-sync',
        ratio: c.edgeoptVsOrt,
        need,
        met: c.edgeoptVsOrt >= need,
      });
  }
  return out;
}

module.exports = { compareCnn, CNN_MODELS };
