// The CNN part of `npm run bench -- compare`: edgeopt native fp32 against
// onnxruntime-node fp32 on the same ONNX bytes, one thread, same-run medians of
// interleaved rounds. Models: the bundled mobilenet-mini-1x28x28 and the LeNet-5
// fixture (PyTorch exports, MNIST digits as input), and a torchvision-style
// MobileNetV2-1.0 224x224 and ResNet-18 224x224 that edgeopt's GraphBuilder
// makes with seeded weights and exports to ONNX, so onnxruntime runs the
// identical model (seeded [0, 1) inputs). Times are measurements, never assertions.
//
// int8 rows (batch 1; mobilenet-mini, LeNet-5 and MobileNetV2-224): the fp32 graph quantized to
// static int8 (per-channel weights, min/max activation grids calibrated on the first 500 train
// digits, or on 4 seeded inputs for MobileNetV2), run by edgeopt (1 and 2 threads) and by
// onnxruntime-node on edgeopt's own QDQ export of that quantized model, in the same interleaved
// rounds as the fp32 rows. Beside wall-clock medians, each row has the median process CPU time per
// call (process.cpuUsage: every thread of the process, so other processes' load does not count).
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

/** Models that get int8 rows (ResNet-18 stays fp32: the issue asks for MobileNetV2). */
const INT8_MODELS = new Set(['mobilenet-mini', 'lenet5', 'mobilenetv2']);

function prepare(E, which) {
  const digits = () => E.mnistTest().data;
  const digitCalibration = () => E.sliceRows(E.mnistTrain(), 0, 500);
  if (which === 'mobilenet-mini' || which === 'lenet5') {
    const file =
      which === 'lenet5'
        ? path.join(ROOT, 'test', 'fixtures', 'lenet5-1x28x28', 'model.onnx')
        : path.join(ROOT, 'data', 'models', 'mobilenet-mini-1x28x28', 'model.onnx');
    const bytes = fs.readFileSync(file);
    const id = which === 'lenet5' ? 'lenet5-1x28x28' : 'mobilenet-mini-1x28x28';
    return { id, bytes, shape: [1, 28, 28], source: digits(), digits: true, calibration: INT8_MODELS.has(which) && digitCalibration };
  }
  const graph = which === 'mobilenetv2' ? E.mobileNetV2() : E.resNet18();
  const calibration = INT8_MODELS.has(which) && (() => ({ data: C.randomRows(4, 3 * 224 * 224, 11), shape: [4, 3, 224, 224] }));
  return { id: graph.name, bytes: E.encodeOnnx(graph), shape: [3, 224, 224], source: C.randomRows(4, 3 * 224 * 224, 9), calibration };
}

const argmaxes = (y, rows) => {
  const n = y.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < n; j++) if (y[r * n + j] > y[r * n + best]) best = j;
    return best;
  });
};

/**
 * The int8 contenders for `model`: its fp32 graph quantized to static int8, run by edgeopt (1 and 2
 * threads) and by onnxruntime-node on edgeopt's QDQ export of the same quantized graph. Also the
 * file sizes and, on the digit models, top-1 on the 2000 test digits and the argmax agreement with ORT.
 */
async function int8Contenders(E, ort, model, sessionOptions) {
  const fp32 = E.loadModel(model.bytes);
  const t0 = C.now();
  const q = E.quantizeGraph(fp32, { activations: 'static', calibration: model.calibration() });
  const quantizeSeconds = C.round((C.now() - t0) / 1000, 1);
  const edgeopt = (threads) => {
    const e = new E.EdgeInferenceEngine({ device: 'cpu', threads, strict: true });
    e.loadModelSync('q', q);
    return e;
  };
  const e1 = edgeopt(1);
  const e2 = edgeopt(2);
  const qdq = E.encodeOnnx(q);
  const session = await ort.InferenceSession.create(qdq, sessionOptions);
  const [input, output] = [session.inputNames[0], session.outputNames[0]];
  const shape = (b) => [b, ...model.shape];
  const ortRun = async (x, b) => (await session.run({ [input]: new ort.Tensor('float32', x, shape(b)) }))[output].data;
  const engines = [
    { key: 'edgeopt-native-int8', run: (x, b) => e1.infer('q', { data: x, shape: shape(b) }).then((r) => r.data) },
    { key: 'edgeopt-native-int8-sync', run: async (x, b) => e1.inferSync('q', { data: x, shape: shape(b) }).data },
    { key: 'edgeopt-native-int8-sync-2t', run: async (x, b) => e2.inferSync('q', { data: x, shape: shape(b) }).data },
    { key: 'ort-int8-qdq', run: ortRun },
  ];
  const info = {
    quantizeSeconds,
    kernel: e1.placement('q').find((p) => p.op === 'Conv')?.kernel ?? null,
    bytes: {
      fp32Eom: E.encodeEom(fp32).length,
      int8Eom: E.encodeEom(q).length,
      int8EomCompressed: E.encodeEom(q, { compress: true }).length,
      qdqOnnx: qdq.length,
    },
  };
  if (model.digits) {
    const test = E.mnistTest();
    const rows = test.shape[0];
    const x = test.data;
    const fpEngine = new E.EdgeInferenceEngine({ device: 'cpu', threads: 1, strict: true });
    fpEngine.loadModelSync('f', fp32);
    const top1 = (pred) => C.round((100 * pred.filter((p, i) => p === test.labels[i]).length) / rows, 2);
    const yq = e1.inferSync('q', { data: x, shape: shape(rows) }).data;
    const yo = await ortRun(x, rows);
    const pq = argmaxes(yq, rows);
    const po = argmaxes(yo, rows);
    info.accuracy = {
      rows,
      fp32: top1(argmaxes(fpEngine.inferSync('f', { data: x, shape: shape(rows) }).data, rows)),
      int8: top1(pq),
      ortInt8: top1(po),
      argmaxAgreementWithOrt: C.round(pq.filter((p, i) => p === po[i]).length / rows, 4),
      maxAbsDiffVsOrt: C.round(
        yq.reduce((m, v, i) => Math.max(m, Math.abs(v - yo[i])), 0),
        4,
      ),
    };
    fpEngine.dispose();
  } else {
    const x2 = inputFor(model, 2);
    const [a, b] = [await engines[1].run(x2, 2), await ortRun(x2, 2)];
    const range = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    info.maxRelDiffVsOrt = Number((a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0) / range).toPrecision(3));
  }
  const release = async () => {
    e1.dispose();
    e2.dispose();
    await session.release();
  };
  return { engines, info, release, graph: q };
}

function inputFor(model, batch) {
  const per = model.shape.reduce((a, b) => a * b, 1);
  const rows = model.source.length / per;
  const x = new Float32Array(batch * per);
  for (let r = 0; r < batch; r++) x.set(model.source.subarray((r % rows) * per, ((r % rows) + 1) * per), r * per);
  return x;
}

/** Same-run medians of wall-clock and process CPU time per call, engines interleaved in rotated rounds. */
async function measure(engines, x, batch, budgetMs, rounds) {
  for (const e of engines) await e.run(x, batch); // warm-up
  const samples = engines.map(() => []);
  const cpu = engines.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < engines.length; i++) {
      const k = (i + round) % engines.length;
      const end = C.now() + budgetMs / rounds;
      do {
        const c0 = process.cpuUsage();
        const t0 = C.now();
        await engines[k].run(x, batch);
        samples[k].push(C.now() - t0);
        const c = process.cpuUsage(c0);
        cpu[k].push((c.user + c.system) / 1000);
      } while (C.now() < end);
    }
  }
  return samples.map((s, k) => ({ ...C.summarize(s), cpuMedian: C.summarize(cpu[k]).median }));
}

/**
 * Where the time goes: each op's median seconds over `runs` single runs of the native program
 * (one thread), summed by kernel, with the end-to-end median of the same program for the
 * executor's own overhead (everything outside the ops).
 */
function profile(E, graph, shape, batch, runs) {
  const addon = E.backendInfo().native ? require(path.join(ROOT, 'lib', 'backends', 'index.ts')).nativeAddon() : null;
  if (!addon) return null;
  const program = E.lowerGraph(graph);
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
      shape:
        op.op === 'conv' || op.op === 'qconv'
          ? `${op.kh}x${op.kw}/${op.strideH} g${op.groups} ${op.inC}->${op.outC} @${op.outH}x${op.outW}`
          : '',
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
    const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
    const session = await ort.mod.InferenceSession.create(model.bytes, sessionOptions);
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
    const int8 = model.calibration ? await int8Contenders(E, ort.mod, model, sessionOptions) : null;
    if (int8) {
      entry.int8 = int8.info;
      log(`  ${model.id.padEnd(24)} int8: ${JSON.stringify(int8.info)}`);
    }
    const big = model.shape[0] === 3;
    for (const batch of big ? [1] : batches) {
      const contenders = batch === 1 && int8 ? [...engines, ...int8.engines] : engines;
      const stats = await measure(contenders, inputFor(model, batch), batch, budget * 1000 * (big ? 3 : 1), rounds);
      const rows = contenders.map((e, i) => ({
        engine: e.key,
        samples: stats[i].n,
        medianMs: C.round(stats[i].median, 4),
        p10Ms: C.round(stats[i].p10, 4),
        p90Ms: C.round(stats[i].p90, 4),
        cpuMedianMs: C.round(stats[i].cpuMedian, 4),
      }));
      const ms = (key, field = 'medianMs') => rows.find((r) => r.engine === key)[field];
      // ORT's run() computes on the main thread; inferSync is the like-for-like edgeopt call.
      const ratio = C.round(ms('ort-fp32') / ms('edgeopt-native-fp32-sync'), 3);
      const asyncRatio = C.round(ms('ort-fp32') / ms('edgeopt-native-fp32'), 3);
      const config = { threads: 1, batch, rows, edgeoptVsOrt: ratio, edgeoptAsyncVsOrt: asyncRatio };
      log(
        `  ${model.id.padEnd(24)} batch ${String(batch).padStart(3)}  edgeopt inferSync ${rows[1].medianMs.toFixed(3).padStart(8)} ms (infer ${rows[0].medianMs.toFixed(3)} ms)  ORT ${rows[2].medianMs.toFixed(3).padStart(8)} ms  edgeopt speed ${ratio}x ORT (infer: ${asyncRatio}x)`,
      );
      if (contenders !== engines) {
        const both = (a, b) => ({ wall: C.round(ms(a) / ms(b), 3), cpu: C.round(ms(a, 'cpuMedianMs') / ms(b, 'cpuMedianMs'), 3) });
        config.int8 = {
          // Each ratio is how many times faster the second-named contender is: slower median / faster median.
          int8VsFp32: both('edgeopt-native-fp32-sync', 'edgeopt-native-int8-sync'),
          int8VsOrtInt8: both('ort-int8-qdq', 'edgeopt-native-int8-sync'),
          int8AsyncVsOrtInt8: both('ort-int8-qdq', 'edgeopt-native-int8'),
          ortInt8VsOrtFp32: both('ort-fp32', 'ort-int8-qdq'),
          twoThreadsVsOne: both('edgeopt-native-int8-sync', 'edgeopt-native-int8-sync-2t'),
        };
        const c = config.int8;
        log(
          `  ${model.id.padEnd(24)} int8 batch 1: edgeopt inferSync ${ms('edgeopt-native-int8-sync').toFixed(3)} ms (2 threads ${ms('edgeopt-native-int8-sync-2t').toFixed(3)} ms), ` +
            `ORT int8 (QDQ) ${ms('ort-int8-qdq').toFixed(3)} ms; edgeopt int8 ${c.int8VsFp32.wall}x its fp32 (CPU ${c.int8VsFp32.cpu}x), ` +
            `${c.int8VsOrtInt8.wall}x ORT int8 (CPU ${c.int8VsOrtInt8.cpu}x), 2 threads ${c.twoThreadsVsOne.wall}x 1 thread`,
        );
      }
      entry.configs.push(config);
    }
    entry.profile = profile(E, E.loadOnnx(model.bytes), model.shape, 1, model.shape[0] === 3 ? 15 : 400);
    if (int8) entry.int8.profile = profile(E, int8.graph, model.shape, 1, model.shape[0] === 3 ? 15 : 400);
    if (entry.profile) {
      const pr = entry.profile;
      log(`    profile, batch 1: ops ${pr.opsMs} ms of a ${pr.runMs} ms run; by kernel ${JSON.stringify(pr.byKernel)}`);
    }
    if (entry.int8?.profile) {
      const pr = entry.int8.profile;
      log(`    int8 profile, batch 1: ops ${pr.opsMs} ms of a ${pr.runMs} ms run; by kernel ${JSON.stringify(pr.byKernel)}`);
    }
    out.models.push(entry);
    if (int8) await int8.release();
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
  // Issue 16's int8 targets (one thread, batch 1 unless named), same rounds. Process CPU time per call
  // for the one-thread ratios (a loaded shared machine stretches wall time, not CPU time); wall clock
  // for 2 threads against 1, where the CPU time is the same work spread over two cores.
  const int8Targets = [
    ['mobilenet-mini-1x28x28', 'int8VsFp32', 'cpu', 1.8, 'edgeopt int8 >= 1.8x edgeopt fp32 (inferSync, CPU time)'],
    ['mobilenetv2-224', 'int8VsOrtInt8', 'cpu', 1.0, 'edgeopt int8 (inferSync) >= 1.0x ORT int8 on the same QDQ model (CPU time)'],
    ['mobilenet-mini-1x28x28', 'twoThreadsVsOne', 'wall', 1.6, 'edgeopt int8 with 2 threads >= 1.6x 1 thread (wall clock)'],
    ['mobilenetv2-224', 'twoThreadsVsOne', 'wall', 1.6, 'edgeopt int8 with 2 threads >= 1.6x 1 thread (wall clock)'],
  ];
  for (const [id, key, clock, need, what] of int8Targets) {
    const c = find(id, 1)?.int8;
    if (!c) continue;
    const ratio = c[key][clock];
    out.summary.push({ target: `${id}, batch 1: ${what}`, engine: 'edgeopt-native-int8-sync', ratio, need, met: ratio >= need });
  }
  return out;
}

module.exports = { compareCnn, CNN_MODELS };
