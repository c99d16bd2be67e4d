// The seed's optimization table, measured: `npm run bench -- table [--json] [--quick] [--no-write]`.
//
// On the bundled mlp-784-128-10 (PyTorch-trained) and the 2000 MNIST test digits, every row is
// made by edgeopt's own passes in this run and compared with the fp32 model:
//   compression = fp32 .eom bytes / row .eom bytes (what saveModel writes),
//   accuracy loss = fp32 top-1 - row top-1, in points,
//   speed-up = fp32 median latency / row median latency on the native engine (threads 1),
//              batch 1 and 64, in interleaved rounds (every model in every round).
// Fine-tuning trains on the bundled 8000-digit train split (never the test split). Distillation
// runs only when lib/optimizer/distill.ts exists in this checkout; otherwise the row says so.
// Nothing here is copied from the seed or asserted: a claim not met shows as measured.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const C = require('./support/common');

function parseArgs(argv) {
  const o = { json: false, quick: false, write: true };
  for (const a of argv) {
    if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-write') o.write = false;
    else throw new Error(`table bench: unknown argument ${a}`);
  }
  o.epochs = o.quick ? 1 : 3;
  o.budget = o.quick ? 0.15 : 0.5; // seconds per model per batch
  o.rounds = o.quick ? 3 : 5;
  return o;
}

function loadDistill() {
  const file = path.join(C.ROOT, 'lib', 'optimizer', 'distill.ts');
  if (!fs.existsSync(file)) return null;
  try {
    return require(file);
  } catch {
    return null;
  }
}

async function run(argv) {
  const o = parseArgs(argv);
  const E = C.loadEdgeopt();
  const log = (...a) => (o.json ? console.error(...a) : console.log(...a));
  const started = C.now();
  const fp32 = E.defaultModel();
  const test = E.mnistTest();
  const trainSet = E.mnistTrain();
  const ft = { data: trainSet, epochs: o.epochs, lr: 0.01, batchSize: 32, seed: 1 };
  const notes = [
    `fine-tuning: ${o.epochs} epoch(s) of SGD (lr 0.01, momentum 0.9, batch 32) on the 8000-digit train split, polynomial sparsity schedule for unstructured/global pruning`,
    'speed-up: pruned fp32 layers run the dense fp32 kernels, so pruning alone changes size, not speed; pruned int8 layers get the sparse int8 kernels where the measured crossover says they win (engine sparse: auto); neuron pruning physically shrinks the layers',
    'int4 weights are unpacked to int8 at load; group-32 scales run through the grouped path of the native plan (one int8 GEMM per 32-wide K group), so int4 g32 is slower than int8',
  ];
  const q8 = (g) => E.quantizeGraph(g, { bits: 8, granularity: 'channel' });
  const q4 = (g) => E.quantizeGraph(g, { bits: 4, granularity: { group: 32 } });
  const pr = (g, sparsity, mode, tune) => E.pruneGraph(g, { sparsity, mode, ...(tune ? { fineTune: ft } : {}) });
  const recipes = [
    { key: 'fp32', label: 'fp32 (baseline)', seed: 'baseline', make: () => fp32 },
    { key: 'int8', label: 'int8 per channel, dynamic activations', seed: 'quantization: 4x smaller, 2-4x faster', make: () => q8(fp32) },
    { key: 'int4-g32', label: 'int4, group 32', seed: 'quantization: 4x smaller, 2-4x faster', make: () => q4(fp32) },
  ];
  for (const s of [0.5, 0.7, 0.9]) {
    recipes.push({
      key: `prune-${s * 100}`,
      label: `unstructured ${s * 100} %`,
      seed: 'pruning: 2-10x smaller, 2-3x faster',
      make: () => pr(fp32, s, 'unstructured', false),
    });
    recipes.push({
      key: `prune-${s * 100}-ft`,
      label: `unstructured ${s * 100} % + fine-tuning`,
      seed: 'pruning: 2-10x smaller, 2-3x faster',
      make: () => pr(fp32, s, 'unstructured', true),
    });
  }
  recipes.push({
    key: 'prune-2of4',
    label: '2:4 structured',
    seed: 'pruning: 2-10x smaller, 2-3x faster',
    make: () => pr(fp32, 0.5, '2:4', false),
  });
  recipes.push({
    key: 'prune-2of4-ft',
    label: '2:4 structured + fine-tuning',
    seed: 'pruning: 2-10x smaller, 2-3x faster',
    make: () => pr(fp32, 0.5, '2:4', true),
  });
  recipes.push({
    key: 'neurons-50',
    label: 'neurons 50 % (hidden 128 -> 64)',
    seed: 'pruning: 2-10x smaller, 2-3x faster',
    make: () => pr(fp32, 0.5, 'neurons', false),
  });
  recipes.push({
    key: 'neurons-50-ft',
    label: 'neurons 50 % + fine-tuning',
    seed: 'pruning: 2-10x smaller, 2-3x faster',
    make: () => pr(fp32, 0.5, 'neurons', true),
  });
  const distill = loadDistill();
  const skipped = [];
  if (distill) {
    let tracked = false;
    try {
      require('node:child_process').execSync('git ls-files --error-unmatch lib/optimizer/distill.ts', { cwd: C.ROOT, stdio: 'ignore' });
      tracked = true;
    } catch {
      /* untracked or not a git checkout */
    }
    notes.push(
      `distillation: distill() from lib/optimizer/distill.ts${tracked ? '' : ' (present in the working tree, not yet committed, when this ran)'}; student 784-32-10 trained ${o.epochs * 2} epochs on the train split with the fp32 model as teacher (T 4, alpha 0.9)`,
    );
    const student = () =>
      distill.distill({
        teacher: fp32,
        student: E.mlp([784, 32, 10], { seed: 3 }),
        data: trainSet,
        epochs: o.epochs * 2,
        lr: 0.05,
        batchSize: 32,
        seed: 1,
      }).model;
    recipes.push({ key: 'distill-32', label: 'distilled student 784-32-10', seed: 'distillation: 2x smaller, 1.5x faster', make: student });
    recipes.push({
      key: 'distill-32-int8',
      label: 'distilled student 784-32-10 + int8',
      seed: 'distillation: 2x smaller, 1.5x faster',
      make: (done) => q8(done['distill-32']),
    });
  } else {
    skipped.push({
      key: 'distill',
      label: 'distillation to a smaller student',
      reason: 'lib/optimizer/distill.ts is not in this checkout; no distillation row is reported',
    });
  }
  recipes.push({
    key: 'combo-ft70-int4',
    label: 'unstructured 70 % + fine-tuning + int4 group 32',
    seed: 'combination',
    make: (done) => q4(done['prune-70-ft']),
  });
  recipes.push({
    key: 'combo-ft90-int8',
    label: 'unstructured 90 % + fine-tuning + int8',
    seed: 'combination',
    make: (done) => q8(done['prune-90-ft']),
  });
  recipes.push({
    key: 'combo-neurons-ft-int8',
    label: 'neurons 50 % + fine-tuning + int8',
    seed: 'combination',
    make: (done) => q8(done['neurons-50-ft']),
  });

  const done = {};
  const rows = [];
  const base = E.evaluateModel(fp32, test);
  const baseBytes = E.modelFileSize(fp32);
  for (const r of recipes) {
    const t0 = C.now();
    let g;
    try {
      g = r.make(done);
    } catch (e) {
      skipped.push({ key: r.key, label: r.label, reason: `failed: ${e.message.split('\n')[0]}` });
      continue;
    }
    done[r.key] = g;
    const ev = E.evaluateModel(g, test);
    const bytes = E.modelFileSize(g);
    rows.push({
      key: r.key,
      label: r.label,
      seedClaim: r.seed,
      bytes,
      compression: C.round(baseBytes / bytes, 2),
      accuracy: C.round(ev.accuracy * 100, 2),
      lossPoints: C.round((base.accuracy - ev.accuracy) * 100, 2),
      buildSeconds: C.round((C.now() - t0) / 1000, 1),
    });
    log(
      `  built ${r.label.padEnd(50)} ${String(bytes).padStart(8)} B  top-1 ${(ev.accuracy * 100).toFixed(2)} %  (${((C.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  // Speed, interleaved: every model in every round, one engine per model (threads 1).
  const engines = rows.map((r) => {
    const e = new E.EdgeInferenceEngine({ device: 'cpu', threads: 1, strict: true });
    e.loadModelSync('m', done[r.key]);
    return { key: r.key, e };
  });
  for (const batch of [1, 64]) {
    const x = test.data.subarray(0, batch * 784);
    const samples = new Map(engines.map((en) => [en.key, []]));
    for (const en of engines) await en.e.infer('m', { data: x, shape: [batch, 784] });
    const slice = (o.budget * 1000) / o.rounds;
    for (let round = 0; round < o.rounds; round++) {
      for (let i = 0; i < engines.length; i++) {
        const en = engines[(i + round) % engines.length];
        const end = C.now() + slice;
        do {
          const t0 = C.now();
          await en.e.infer('m', { data: x, shape: [batch, 784] });
          samples.get(en.key).push(C.now() - t0);
        } while (C.now() < end);
      }
    }
    const med = new Map([...samples].map(([k, s]) => [k, C.summarize(s).median]));
    for (const r of rows) {
      r[`medianMsBatch${batch}`] = C.round(med.get(r.key), 4);
      r[`speedupBatch${batch}`] = C.round(med.get('fp32') / med.get(r.key), 2);
    }
  }
  // The best combination: the smallest file within 1 point of fp32.
  const within = rows.filter((r) => r.lossPoints <= 1 && r.key !== 'fp32').sort((a, b) => a.bytes - b.bytes);
  const best = within[0] ? within[0].key : null;
  const result = {
    bench: 'table',
    command: `npm run bench -- table${argv
      .filter((a) => a !== '--json')
      .map((a) => ' ' + a)
      .join('')}`,
    machine: C.machine(),
    model: 'mlp-784-128-10 (bundled, PyTorch-trained)',
    evaluation: `MNIST test split, ${test.shape[0]} digits`,
    baseline: { bytes: baseBytes, accuracy: C.round(base.accuracy * 100, 2) },
    notes,
    rows,
    skipped,
    best: best && { key: best, rule: 'smallest file with accuracy loss <= 1 point' },
    durationSeconds: C.round((C.now() - started) / 1000, 1),
  };
  if (o.write) log(`wrote ${path.relative(process.cwd(), C.writeResult(o.quick ? 'table-quick' : 'table', result))}`);
  if (o.json) console.log(JSON.stringify(result, null, 1));
  else print(result);
  return result;
}

function print(r) {
  console.log(`\n${r.model}, ${r.evaluation}: fp32 ${r.baseline.accuracy} %, ${r.baseline.bytes} bytes`);
  console.log(
    `${'recipe'.padEnd(50)} ${'bytes'.padStart(8)} ${'smaller'.padStart(8)} ${'top-1 %'.padStart(8)} ${'loss pt'.padStart(8)} ${'b1 x'.padStart(6)} ${'b64 x'.padStart(6)}`,
  );
  for (const x of r.rows) {
    console.log(
      `${(x.label + (r.best && r.best.key === x.key ? ' *' : '')).padEnd(50)} ${String(x.bytes).padStart(8)} ${x.compression.toFixed(2).padStart(8)} ${x.accuracy.toFixed(2).padStart(8)} ${x.lossPoints.toFixed(2).padStart(8)} ${x.speedupBatch1.toFixed(2).padStart(6)} ${x.speedupBatch64.toFixed(2).padStart(6)}`,
    );
  }
  for (const s of r.skipped) console.log(`${s.label.padEnd(50)} ${s.reason}`);
  if (r.best) console.log(`* best combination (${r.best.rule})`);
  for (const n of r.notes) console.log(`note: ${n}`);
  console.log(`${r.durationSeconds} s`);
}

module.exports = { run };

if (require.main === module) {
  run(process.argv.slice(2)).catch((e) => {
    console.error(e.stack || e.message);
    process.exit(1);
  });
}
