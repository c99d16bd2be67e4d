// Side by side: edgeopt (native int8/fp32, TypeScript int8/fp32, the reference NPU
// plugin) against onnxruntime-node (fp32 and its DynamicQuantizeLinear + MatMulInteger
// int8 graph) and TensorFlow.js (wasm and cpu backends) on the same models and inputs.
//
//   npm run bench -- compare [--json] [--quick] [--batches=1,8,64,256] [--threads=1,2]
//                            [--models=mnist,big,mobilenet-mini,lenet5,mobilenetv2,resnet18]
//                            [--budget=0.8] [--no-write]
//
// The CNN models (bench/compare-cnn.js) compare edgeopt native fp32 with onnxruntime-node fp32
// on the same ONNX file, one thread, batches 1 and 64 (the 224x224 graphs: batch 1), and at batch 1
// edgeopt int8 with onnxruntime-node running edgeopt's QDQ export of the same int8 model. A run of
// CNN models only (--models=mobilenet-mini,lenet5,mobilenetv2,...) writes bench/results/compare-cnn.json,
// which the report prefers for its CNN section, so the MLP figures of compare.json stay.
//
// For every model x threads x batch, all engines run in interleaved rounds (each round
// visits every engine, in a rotated order, for a slice of its time budget), so a load
// change on this shared machine hits all of them alike. Reported per engine: median,
// p10 and p90 latency of one call, rows/s at the median, and the speed-up over
// onnxruntime-node int8 measured in the same rounds (ORT int8 median / engine median).
// Then, per model at batch 1 and 64 (1 thread), how late a 1 ms timer fires while the
// engine runs back to back with one event-loop turn between calls (p99): edgeopt's infer()
// runs on libuv's pool (calls under inlineMacs inline); ORT's run() (a setImmediate around
// a synchronous run) and TF.js run on the main thread. Results go to bench/results/compare.json (read by
// `npm run bench -- report`). Times are measurements, never assertions.
'use strict';
const path = require('node:path');
const C = require('./support/common');
const { compareCnn, CNN_MODELS } = require('./compare-cnn');

const MODELS = {
  mnist: 'mlp-784-128-10 (bundled, PyTorch-trained) on MNIST test digits',
  big: 'synthetic mlp-1024-4096-4096-1024 (seeded He-uniform weights) on seeded uniform [0,1) inputs',
};

function parseArgs(argv) {
  const o = {
    json: false,
    quick: false,
    write: true,
    batches: null,
    threads: [1, 2],
    models: ['mnist', 'big', ...Object.keys(CNN_MODELS)],
    budget: null,
  };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--json') o.json = true;
    else if (k === '--quick') o.quick = true;
    else if (k === '--no-write') o.write = false;
    else if (k === '--batches') o.batches = v.split(',').map(Number);
    else if (k === '--threads') o.threads = v.split(',').map(Number);
    else if (k === '--models') o.models = v.split(',');
    else if (k === '--budget') o.budget = Number(v);
    else throw new Error(`compare bench: unknown argument ${a}`);
  }
  o.batches ??= o.quick ? [1, 64] : [1, 8, 64, 256];
  o.budget ??= o.quick ? 0.25 : 0.8; // seconds per engine per (model, threads, batch)
  o.rounds = o.quick ? 3 : 5;
  o.maxCallMs = o.quick ? 60 : 400; // slow secondary engines skip batches predicted to exceed this per call
  o.loopMs = o.quick ? 120 : 400; // event-loop probe duration per engine
  for (const m of o.models)
    if (!MODELS[m] && !CNN_MODELS[m])
      throw new Error(`compare bench: unknown model ${m} (${[...Object.keys(MODELS), ...Object.keys(CNN_MODELS)].join(', ')})`);
  o.cnnModels = o.models.filter((m) => CNN_MODELS[m]);
  o.models = o.models.filter((m) => MODELS[m]);
  return o;
}

const log = (o, ...a) => {
  if (!o.json) console.log(...a);
  else console.error(...a);
};

// ---------------------------------------------------------------- models and inputs

function prepareModel(E, which) {
  if (which === 'mnist') {
    const graph = E.defaultModel();
    const ds = E.mnistTest();
    return {
      id: 'mlp-784-128-10',
      describe: MODELS.mnist,
      graph,
      features: 784,
      source: ds.data,
      sourceRows: ds.shape[0],
      calibration: E.sliceRows ? E.sliceRows(ds, 0, 256) : { data: ds.data.subarray(0, 256 * 784), shape: [256, 784] },
    };
  }
  const graph = C.syntheticMlp([1024, 4096, 4096, 1024], 42);
  const rows = 256;
  const source = C.randomRows(rows, 1024, 7);
  return {
    id: 'mlp-1024-4096-4096-1024',
    describe: MODELS.big,
    graph,
    features: 1024,
    source,
    sourceRows: rows,
    calibration: { data: C.randomRows(32, 1024, 8), shape: [32, 1024] },
  };
}

function inputFor(model, batch) {
  const x = new Float32Array(batch * model.features);
  for (let r = 0; r < batch; r++)
    x.set(
      model.source.subarray((r % model.sourceRows) * model.features, ((r % model.sourceRows) + 1) * model.features),
      r * model.features,
    );
  return x;
}

// ---------------------------------------------------------------- engines

/**
 * An engine: { key, label, family, threaded (runs at every thread count) or not (threads 1 only),
 * primary (never skipped for time), setup(model, threads) -> { run(x, batch) -> Promise<Float32Array>, activate?() } }.
 */
function engines(E, ort, tfc, notes) {
  const list = [];
  const eoEngine = (device, threads, graph, extra = {}) => {
    // strict for the CPU engines (a silent TS fallback would mislabel the row); the NPU engine
    // may place layers the plugin refuses (over 2048 channels) on the CPU, and says so in a note.
    const e = new E.EdgeInferenceEngine({ device, threads, strict: device === 'cpu', ...extra });
    e.loadModelSync('m', graph);
    return e;
  };
  list.push({
    key: 'edgeopt-native-int8',
    label: 'edgeopt native int8',
    family: 'edgeopt',
    threaded: true,
    primary: true,
    setup: (m, t) => {
      const e = eoEngine('cpu', t, m.int8);
      return { run: (x, b) => e.infer('m', { data: x, shape: [b, m.features] }).then((r) => r.data), engine: e };
    },
  });
  list.push({
    key: 'edgeopt-native-int8-sync',
    label: 'edgeopt native int8 (inferSync)',
    family: 'edgeopt',
    threaded: true,
    primary: true,
    setup: (m, t) => {
      const e = eoEngine('cpu', t, m.int8);
      return { run: async (x, b) => e.inferSync('m', { data: x, shape: [b, m.features] }).data };
    },
  });
  list.push({
    // 7-bit weights fit AVX2's exact vpmaddubsw layout (native/kernels/x86_pack.cc); same file size.
    key: 'edgeopt-native-int7',
    label: 'edgeopt native int8, 7-bit weights',
    family: 'edgeopt',
    threaded: true,
    primary: true,
    setup: (m, t) => {
      const e = eoEngine('cpu', t, m.int7);
      return { run: (x, b) => e.infer('m', { data: x, shape: [b, m.features] }).then((r) => r.data) };
    },
  });
  list.push({
    key: 'edgeopt-native-fp32',
    label: 'edgeopt native fp32',
    family: 'edgeopt',
    threaded: true,
    primary: true,
    setup: (m, t) => {
      const e = eoEngine('cpu', t, m.graph);
      return { run: (x, b) => e.infer('m', { data: x, shape: [b, m.features] }).then((r) => r.data) };
    },
  });
  for (const [kind, pick] of [
    ['int8', (m) => m.int8],
    ['fp32', (m) => m.graph],
  ]) {
    list.push({
      key: `edgeopt-ts-${kind}`,
      label: `edgeopt TypeScript ${kind}`,
      family: 'edgeopt',
      threaded: false,
      setup: (m) => {
        const e = eoEngine('ts', 1, pick(m));
        return { run: (x, b) => e.infer('m', { data: x, shape: [b, m.features] }).then((r) => r.data) };
      },
    });
  }
  let npuPath = null;
  try {
    npuPath = E.referenceNpuPluginPath();
  } catch (e) {
    notes.push(`reference NPU plugin skipped: ${e.message}`);
  }
  if (npuPath) {
    list.push({
      key: 'edgeopt-npu-ref',
      label: 'edgeopt reference NPU plugin (int8 static, CPU-simulated)',
      family: 'edgeopt',
      threaded: false,
      setup: (m) => {
        const e = eoEngine('npu', 1, m.int8static, { npuPlugin: npuPath });
        const placed = e.placement('m');
        if (!placed.some((p) => p.backend === 'npu'))
          throw new Error(
            `no node runs on the plugin (${placed.find((p) => p.reason)?.reason ?? 'unsupported'}); the row would be native int8`,
          );
        const off = placed.filter((p) => p.backend !== 'npu' && /Dense/.test(p.op));
        const note =
          `${placed.filter((p) => p.backend === 'npu').length}/${placed.length} nodes on the plugin` +
          (off.length ? `; on ${off[0].backend}: ${off.map((p) => p.node).join(', ')} (${off[0].reason})` : '');
        return { run: (x, b) => e.infer('m', { data: x, shape: [b, m.features] }).then((r) => r.data), note };
      },
    });
  }
  if (ort.mod) {
    const o = ort.mod;
    const labels = {
      int8: 'onnxruntime-node int8 (DynamicQuantizeLinear+MatMulInteger)',
      int7: 'onnxruntime-node int8, 7-bit weights',
      fp32: 'onnxruntime-node fp32',
    };
    for (const [kind, bytes] of [
      ['int8', (m) => m.onnxInt8],
      ['int7', (m) => m.onnxInt7],
      ['fp32', (m) => m.onnxFp32],
    ]) {
      list.push({
        key: `ort-${kind}`,
        label: labels[kind],
        family: 'onnxruntime',
        threaded: true,
        primary: true,
        setup: async (m, t) => {
          const s = await o.InferenceSession.create(bytes(m), {
            intraOpNumThreads: t,
            interOpNumThreads: 1,
            executionMode: 'sequential',
            graphOptimizationLevel: 'all',
          });
          const input = s.inputNames[0],
            output = s.outputNames[0];
          return {
            run: async (x, b) => (await s.run({ [input]: new o.Tensor('float32', x, [b, m.features]) }))[output].data,
            release: () => s.release(),
          };
        },
      });
    }
  } else notes.push(`onnxruntime-node skipped: ${ort.note}`);
  if (tfc.mod) {
    for (const backend of ['wasm', 'cpu']) {
      list.push({
        key: `tfjs-${backend}`,
        label: `TensorFlow.js ${backend}${backend === 'wasm' ? ' (XNNPACK, SIMD, 1 thread)' : ' (plain JS)'}`,
        family: 'tfjs',
        threaded: false,
        setup: async (m) => tfjsRunner(tfc.mod, backend, m),
      });
    }
  } else notes.push(`TensorFlow.js skipped: ${tfc.note}`);
  return list;
}

/**
 * fp32 forward pass in TF.js: fused matMul + bias + ReLU per layer, weights kept on `backend`.
 * Weights are transposed to [in, out] once here: tfjs-backend-wasm 4.22's fused matMul with
 * transposeB plus bias/activation computes a wrong result (it differed from the cpu backend by up
 * to 8 logits), so the timed call must not use transposeB.
 */
async function tfjsRunner(tf, backend, m) {
  await tf.setBackend(backend);
  await tf.ready();
  const layers = m.graph.nodes
    .filter((n) => n.op === 'Dense')
    .map((n) => {
      const w = m.graph.tensors[n.inputs[1]];
      const b = n.inputs[2] ? m.graph.tensors[n.inputs[2]] : null;
      const [out, inp] = w.shape;
      const wt = new Float32Array(out * inp);
      for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) wt[i * out + o] = w.data[o * inp + i];
      return { w: tf.tensor2d(wt, [inp, out]), b: b ? tf.tensor1d(b.data) : undefined, relu: n.attrs.activation === 'relu' };
    });
  const activate = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  const run = async (x, batch) => {
    await activate();
    const y = tf.tidy(() => {
      let h = tf.tensor2d(x, [batch, m.features]);
      for (const l of layers) h = tf.fused.matMul({ a: h, b: l.w, bias: l.b, activation: l.relu ? 'relu' : 'linear' });
      return h;
    });
    const out = await y.data();
    y.dispose();
    return out;
  };
  return { run, activate, release: () => layers.forEach((l) => (l.w.dispose(), l.b && l.b.dispose())) };
}

function loadTfjs(notes) {
  const core = C.optional('@tensorflow/tfjs-core');
  if (!core.mod) return core;
  const warn = console.warn;
  try {
    console.warn = () => {}; // TF.js prints a "use tfjs-node" hint on first use
    require('@tensorflow/tfjs-backend-cpu');
    require('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    notes.push(`TensorFlow.js backends missing: ${e.message.split('\n')[0]}`);
    return { mod: null, note: e.message.split('\n')[0] };
  } finally {
    console.warn = warn;
  }
  notes.push(
    'TensorFlow.js: tfjs-core + tfjs-backend-wasm + tfjs-backend-cpu (' +
      core.version +
      '); tfjs-node is not included: its install downloads a libtensorflow binary',
  );
  return core;
}

// ---------------------------------------------------------------- measurement

function agreement(ref, out, rows) {
  let maxAbs = 0,
    maxRef = 0,
    same = 0;
  const n = ref.length / rows;
  for (let i = 0; i < ref.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(ref[i] - out[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  for (let r = 0; r < rows; r++) {
    let a = 0,
      b = 0;
    for (let j = 1; j < n; j++) {
      if (ref[r * n + j] > ref[r * n + a]) a = j;
      if (out[r * n + j] > out[r * n + b]) b = j;
    }
    if (a === b) same++;
  }
  return { maxRelErr: C.round(maxAbs / (maxRef || 1), 5), argmaxAgree: C.round(same / rows, 4) };
}

/**
 * ORT int8 against edgeopt int8 on the same quantized weights, one row at a time (so both quantize
 * the activations with the same grid: DynamicQuantizeLinear is per tensor, edgeopt per row). Exact
 * int8 arithmetic gives the same outputs up to float rounding; ORT's AVX2 kernel without VNNI sums
 * u8 x s8 pairs with vpmaddubsw, which saturates for 8-bit weights but not for 7-bit ones.
 */
async function exactness(model, active) {
  const out = [];
  for (const [eo, ort] of [
    ['edgeopt-native-int8', 'ort-int8'],
    ['edgeopt-native-int7', 'ort-int7'],
  ]) {
    const a = active.find((x) => x.def.key === eo),
      b = active.find((x) => x.def.key === ort);
    if (!a || !b) continue;
    let differ = 0,
      maxRel = 0;
    const rows = 8,
      all = inputFor(model, rows);
    for (let r = 0; r < rows; r++) {
      const x = all.subarray(r * model.features, (r + 1) * model.features);
      const y = await a.run(x, 1),
        z = await b.run(x, 1);
      let scale = 0,
        diff = 0;
      for (let i = 0; i < y.length; i++) {
        scale = Math.max(scale, Math.abs(y[i]));
        diff = Math.max(diff, Math.abs(y[i] - z[i]));
      }
      const rel = diff / (scale || 1);
      maxRel = Math.max(maxRel, rel);
      if (rel > 1e-5) differ++;
    }
    out.push({ edgeopt: eo, ort, rows, rowsDiffering: differ, maxRelDiff: Number(maxRel.toPrecision(3)) });
  }
  return out;
}

async function measureConfig(o, model, threads, batch, active, perRowMs) {
  const x = inputFor(model, batch);
  const runnable = [];
  const skipped = [];
  for (const a of active) {
    const key = a.def.key;
    const predicted = perRowMs.get(key) != null ? perRowMs.get(key) * batch : 0;
    if (!a.def.primary && predicted > o.maxCallMs) {
      skipped.push({
        engine: key,
        reason: `skipped: ~${Math.round(predicted)} ms per call predicted from the smaller batch (limit ${o.maxCallMs} ms)`,
      });
      continue;
    }
    if (a.activate) await a.activate();
    const t0 = C.now();
    await a.run(x, batch); // warm-up
    const first = C.now() - t0;
    if (!a.def.primary && first > o.maxCallMs * 1.5) {
      skipped.push({ engine: key, reason: `skipped: one call took ${Math.round(first)} ms (limit ${o.maxCallMs} ms)` });
      perRowMs.set(key, first / batch);
      continue;
    }
    runnable.push({ a, samples: [], first });
  }
  const slice = (o.budget * 1000) / o.rounds;
  for (let round = 0; round < o.rounds; round++) {
    for (let i = 0; i < runnable.length; i++) {
      const r = runnable[(i + round) % runnable.length];
      if (r.a.activate) await r.a.activate();
      const end = C.now() + slice;
      do {
        const t0 = C.now();
        await r.a.run(x, batch);
        r.samples.push(C.now() - t0);
      } while (C.now() < end);
    }
  }
  const rows = runnable.map((r) => {
    const s = C.summarize(r.samples);
    perRowMs.set(r.a.def.key, s.median / batch);
    return {
      engine: r.a.def.key,
      samples: s.n,
      medianMs: C.round(s.median, 4),
      p10Ms: C.round(s.p10, 4),
      p90Ms: C.round(s.p90, 4),
      rowsPerSec: Math.round((batch * 1000) / s.median),
    };
  });
  const ref = rows.find((r) => r.engine === 'ort-int8');
  for (const r of rows) r.vsOrtInt8 = ref ? C.round(ref.medianMs / r.medianMs, 3) : null;
  return { rows, skipped };
}

async function probeLoop(o, model, batch, active) {
  const x = inputFor(model, batch);
  const out = [];
  const idle = await C.eventLoopLateness(() => new Promise((r) => setTimeout(r, 5)), o.loopMs);
  out.push({
    engine: 'idle',
    batch,
    calls: idle.calls,
    p50Ms: C.round(idle.median, 3),
    p99Ms: C.round(idle.p99, 3),
    maxMs: C.round(idle.max, 3),
  });
  for (const a of active) {
    if (a.perRow != null && !a.def.primary && a.perRow * batch > o.maxCallMs) continue;
    if (a.activate) await a.activate();
    // Between calls the loop gets one turn (setImmediate), as a server handling one request per
    // I/O callback would give it; lateness then shows how long one call holds the main thread.
    const work = async () => {
      await a.run(x, batch);
      await new Promise((r) => setImmediate(r));
    };
    const r = await C.eventLoopLateness(work, Math.max(o.loopMs, 0));
    out.push({ engine: a.def.key, batch, calls: r.calls, p50Ms: C.round(r.median, 3), p99Ms: C.round(r.p99, 3), maxMs: C.round(r.max, 3) });
  }
  return out;
}

// ---------------------------------------------------------------- main

async function run(argv) {
  const o = parseArgs(argv);
  const E = C.loadEdgeopt();
  const notes = [];
  const ort = C.optional('onnxruntime-node');
  const tfc = loadTfjs(notes);
  const defs = engines(E, ort, tfc, notes);
  const started = C.now();
  const result = {
    bench: 'compare',
    command: `npm run bench -- compare${argv.length ? ' ' + argv.filter((a) => a !== '--json').join(' ') : ''}`,
    machine: C.machine(),
    versions: { onnxruntimeNode: ort.version ?? null, tfjs: tfc.version ?? null },
    settings: {
      batches: o.batches,
      threads: o.threads,
      budgetSecondsPerEngine: o.budget,
      rounds: o.rounds,
      maxCallMs: o.maxCallMs,
      eventLoopProbeMs: o.loopMs,
    },
    notes,
    models: [],
  };
  notes.push(
    'latency: one call = input in, Float32Array out (edgeopt infer() / inferSync(), ORT session.run(), TF.js matMul chain + data()); medians of interleaved rounds',
  );
  notes.push(
    'TypeScript, NPU-reference and TF.js engines run at threads=1 only (TS and TF.js are single-threaded here; the reference plugin ignores threads) and skip batches predicted to take longer than the per-call limit',
  );
  for (const which of o.models) {
    const t0 = C.now();
    const model = prepareModel(E, which);
    model.int8 = E.quantizeGraph(model.graph, { bits: 8, granularity: 'channel' });
    model.int7 = E.quantizeGraph(model.graph, { bits: 7, granularity: 'channel' });
    model.int8static = E.quantizeGraph(model.graph, {
      bits: 8,
      granularity: 'channel',
      activations: 'static',
      calibration: model.calibration,
      requantize: false,
    }); // NPU ABI v1 layers end in the float epilogue
    model.onnxFp32 = E.encodeOnnx(model.graph);
    model.onnxInt8 = E.encodeOnnx(model.int8, { int8: 'integer' });
    model.onnxInt7 = E.encodeOnnx(model.int7, { int8: 'integer' });
    log(o, `\n## ${model.id}: ${model.describe} (prepared in ${((C.now() - t0) / 1000).toFixed(1)} s)`);
    const entry = {
      model: model.id,
      describe: model.describe,
      onnxBytes: { fp32: model.onnxFp32.length, int8: model.onnxInt8.length },
      configs: [],
      eventLoop: [],
      accuracyCheck: [],
      exactness: [],
    };
    result.models.push(entry);
    for (const threads of o.threads) {
      const active = [];
      for (const def of defs) {
        if (!def.threaded && threads !== 1) continue;
        try {
          const r = await def.setup(model, threads);
          active.push({ def, ...r });
        } catch (e) {
          notes.push(`${def.key} on ${model.id}: setup failed: ${e.message.split('\n')[0]}`);
        }
      }
      for (const a of active) if (a.note && threads === 1) notes.push(`${a.def.key} on ${model.id}: ${a.note}`);
      // Same input, every engine: outputs against edgeopt fp32 (batch 8).
      if (threads === o.threads[0]) {
        const x8 = inputFor(model, 8);
        const ref = await active.find((a) => a.def.key === 'edgeopt-native-fp32').run(x8, 8);
        for (const a of active) {
          if (a.activate) await a.activate();
          entry.accuracyCheck.push({ engine: a.def.key, ...agreement(ref, await a.run(x8, 8), 8) });
        }
        entry.exactness.push(...(await exactness(model, active)));
      }
      const perRowMs = new Map();
      for (const batch of o.batches) {
        const { rows, skipped } = await measureConfig(o, model, threads, batch, active, perRowMs);
        entry.configs.push({ threads, batch, rows, skipped });
        if (!o.json) printConfig(model.id, threads, batch, rows, skipped, defs);
      }
      if (threads === 1) {
        for (const a of active) a.perRow = perRowMs.get(a.def.key);
        for (const batch of [1, 64].filter((b) => o.batches.includes(b)))
          entry.eventLoop.push(...(await probeLoop(o, model, batch, active)));
        if (!o.json) printLoop(entry.eventLoop, defs);
      }
      for (const a of active) if (a.release) await a.release();
    }
  }
  if (o.cnnModels.length) {
    log(o, '\n## CNNs: edgeopt native fp32 vs onnxruntime-node fp32 (same ONNX file) and int8 (edgeopt QDQ export), 1 thread');
    const cnn = await compareCnn({
      models: o.cnnModels,
      batches: [1, 64],
      budget: o.budget,
      rounds: o.rounds,
      log: (...a) => log(o, ...a),
    });
    result.cnn = cnn.models;
    result.cnnSummary = cnn.summary;
    notes.push(...cnn.notes);
  }
  result.machine.loadavgEnd = require('node:os')
    .loadavg()
    .map((x) => Math.round(x * 100) / 100);
  result.durationSeconds = Math.round((C.now() - started) / 100) / 10;
  result.summary = [...summary(result), ...(result.cnnSummary ?? [])];
  if (o.write) {
    const name = o.models.length ? 'compare' : 'compare-cnn';
    const file = C.writeResult(o.quick ? `${name}-quick` : name, result);
    log(o, `\nwrote ${path.relative(process.cwd(), file)}`);
  }
  if (o.json) console.log(JSON.stringify(result, null, 1));
  else printSummary(result);
  return result;
}

/** The targets, from this run's same-round ratios. */
function summary(result) {
  const out = [];
  const find = (model, threads, batch, engine) => {
    const m = result.models.find((x) => x.model === model);
    const c = m && m.configs.find((x) => x.threads === threads && x.batch === batch);
    return c && c.rows.find((r) => r.engine === engine);
  };
  for (const threads of result.settings.threads) {
    for (const batch of [1, 64]) {
      for (const engine of ['edgeopt-native-int8', 'edgeopt-native-int8-sync']) {
        const r = find('mlp-1024-4096-4096-1024', threads, batch, engine);
        if (r)
          out.push({
            target: `big MLP, batch ${batch}, threads ${threads}: ${engine} faster than ORT int8`,
            engine,
            ratio: r.vsOrtInt8,
            need: 1,
            met: r.vsOrtInt8 > 1,
          });
      }
      // Both exact with 7-bit weights: the like-for-like comparison on AVX2 without VNNI.
      const r7 = find('mlp-1024-4096-4096-1024', threads, batch, 'edgeopt-native-int7');
      const o7 = find('mlp-1024-4096-4096-1024', threads, batch, 'ort-int7');
      if (r7 && o7) {
        const ratio = C.round(o7.medianMs / r7.medianMs, 3);
        out.push({
          target: `big MLP, batch ${batch}, threads ${threads}: edgeopt-native-int7 faster than ORT with the same 7-bit weights`,
          engine: 'edgeopt-native-int7',
          ratio,
          need: 1,
          met: ratio > 1,
        });
      }
    }
    for (const engine of ['edgeopt-native-int8', 'edgeopt-native-int8-sync']) {
      const r = find('mlp-784-128-10', threads, 1, engine);
      if (r)
        out.push({
          target: `mlp-784-128-10, batch 1, threads ${threads}: ${engine} >= 3x ORT int8`,
          engine,
          ratio: r.vsOrtInt8,
          need: 3,
          met: r.vsOrtInt8 >= 3,
        });
    }
  }
  return out;
}

function label(defs, key) {
  const d = defs.find((x) => x.key === key);
  return d ? d.label : key;
}

function printConfig(model, threads, batch, rows, skipped, defs) {
  console.log(`\n${model}  threads ${threads}  batch ${batch}`);
  console.log(
    `  ${'engine'.padEnd(58)} ${'median ms'.padStart(10)} ${'p10'.padStart(9)} ${'p90'.padStart(9)} ${'rows/s'.padStart(10)} ${'vs ORT int8'.padStart(11)}`,
  );
  for (const r of rows) {
    console.log(
      `  ${label(defs, r.engine).padEnd(58)} ${r.medianMs.toFixed(4).padStart(10)} ${r.p10Ms.toFixed(3).padStart(9)} ${r.p90Ms.toFixed(3).padStart(9)} ${String(r.rowsPerSec).padStart(10)} ${(r.vsOrtInt8 == null ? '-' : r.vsOrtInt8.toFixed(2) + 'x').padStart(11)}`,
    );
  }
  for (const s of skipped) console.log(`  ${label(defs, s.engine).padEnd(58)} ${s.reason}`);
}

function printLoop(rows, defs) {
  console.log('\n  event loop: lateness of a 1 ms timer while the engine runs back to back (threads 1)');
  for (const r of rows)
    console.log(
      `  batch ${String(r.batch).padStart(3)} ${label(defs, r.engine).padEnd(58)} p50 ${r.p50Ms.toFixed(3).padStart(8)} ms  p99 ${r.p99Ms.toFixed(3).padStart(8)} ms  max ${r.maxMs.toFixed(3).padStart(8)} ms`,
    );
}

function printSummary(result) {
  console.log(
    `\ntargets (same-run ratios, ORT int8 median / edgeopt median), ${result.durationSeconds} s, load ${result.machine.loadavg.join(' ')} -> ${result.machine.loadavgEnd.join(' ')}:`,
  );
  for (const s of result.summary) console.log(`  ${s.met ? 'met   ' : 'MISSED'} ${s.target}: ${s.ratio}x`);
  console.log('\nexactness: ORT vs edgeopt on the same quantized weights, batch 1 (outputs differing by > 1e-5 relative):');
  for (const m of result.models)
    for (const e of m.exactness || [])
      console.log(`  ${m.model}: ${e.ort} vs ${e.edgeopt}: ${e.rowsDiffering}/${e.rows} rows differ, max ${e.maxRelDiff}`);
  for (const n of result.notes) console.log(`  note: ${n}`);
}

module.exports = { run, summary };

if (require.main === module) {
  run(process.argv.slice(2)).catch((e) => {
    console.error(e.stack || e.message);
    process.exit(1);
  });
}
