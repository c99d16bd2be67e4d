// Training and filter pruning of CNNs on the bundled digits: `npm run bench -- train-cnn
// [scratch|fine-tune|filters|qat] [--json] [--epochs=N] [--lr=x] [--shift=2] [--sparsity=0.25] [--plain] [--only=filters]`.
//   scratch:   mobilenet-mini (BN kept as nodes) from seeded weights, Adam + cosine schedule, seeded
//              shift augmentation, on the 8000 train rows; test accuracy on the 2000 test rows after
//              every epoch and seconds per epoch. PyTorch: 96.85 % after 8 epochs of Adam (fixture.json).
//   fine-tune: the bundled mobilenet-mini pruned 50 % unstructured and 25 % filters, accuracy before
//              and after --epochs (default 2) of fine-tuning with pruneGraph's CNN defaults (Adam
//              lr 0.001, cosine, BatchNorm refit, the unpruned model as teacher; --plain: labels only,
//              no refit; --lr=x; --polynomial: gradual unstructured pruning; --only=unstructured|filters),
//              with .eom bytes.
//   filters:   the bundled mobilenet-mini and its --sparsity filter-pruned copy: .eom bytes, accuracy
//              before fine-tuning, and batch-1 latency (native, one thread, same-run medians of
//              interleaved rounds of 200 calls).
//   qat:       the bundled mobilenet-mini in fp32, static int8 after calibration on --calibration-rows
//              (default 500) train rows (--observer=minmax|entropy|percentile:P, --bits=8), and the same
//              int8 model after --epochs (default 2) of quantization-aware training on the 8000 train rows
//              (Adam, --lr=0.0001, cosine, seed 0); test accuracy on the 2000 test rows, CPU seconds of QAT.
// Results go to bench/results/train-cnn-<mode>.json (qat with another observer: train-cnn-qat-<observer>.json); `npm run bench -- report` renders them.
'use strict';
const path = require('node:path');
const C = require('./support/common');

function arg(argv, name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : dflt;
}

function scratch(e, argv) {
  const epochs = arg(argv, 'epochs', 5);
  const lr = arg(argv, 'lr', 0.003);
  const shift = arg(argv, 'shift', 2);
  const data = e.mnistTrain();
  const test = e.mnistTest();
  const rows = [];
  const net = e.Network.fromGraph(e.mobileNetMini({ seed: 0 }));
  let t = performance.now();
  const steps = e.trainSteps(net, data, {
    epochs,
    batchSize: 64,
    optimizer: 'adam',
    lr,
    schedule: { kind: 'cosine' },
    augment: { shift },
    seed: 0,
    onEpoch: (s) => {
      const seconds = (performance.now() - t) / 1000;
      const accuracy = e.evaluateModel(net.toGraph(), test).accuracy;
      rows.push({ name: `epoch ${s.epoch}`, loss: s.loss, trainAccuracy: s.accuracy, accuracy, seconds });
      if (!argv.includes('--json'))
        console.error(`epoch ${s.epoch}: loss ${s.loss.toFixed(4)}, test ${(accuracy * 100).toFixed(2)} %, ${seconds.toFixed(1)} s`);
      t = performance.now();
    },
  });
  while (!steps.next().done);
  return rows;
}

function fineTune(e, argv) {
  const epochs = arg(argv, 'epochs', 2);
  const lr = arg(argv, 'lr', undefined);
  const gradual = argv.includes('--polynomial'); // unstructured: Zhu & Gupta's gradual schedule instead of one-shot
  const plain = argv.includes('--plain'); // labels only, no BatchNorm refit: what fine-tuning did before
  const only = argv.find((a) => a.startsWith('--only='))?.split('=')[1];
  const data = e.mnistTrain();
  const test = e.mnistTest();
  const model = e.defaultCnn();
  const acc = (g) => e.evaluateModel(g, test).accuracy;
  const rows = [{ name: 'fp32', accuracy: acc(model), bytes: e.encodeEom(model).length, seconds: 0 }];
  for (const [name, options, schedule] of [
    ['50 % unstructured', { sparsity: 0.5, mode: 'unstructured' }, gradual ? 'polynomial' : 'one-shot'],
    ['25 % filters', { sparsity: 0.25, mode: 'filters' }, 'one-shot'],
  ]) {
    if (only && options.mode !== only) continue;
    const pruned = e.pruneGraph(model, options);
    rows.push({ name: `${name}, no fine-tuning`, accuracy: acc(pruned), bytes: e.encodeEom(pruned).length, seconds: 0 });
    const t = performance.now();
    // The library's CNN defaults (Adam, cosine, BatchNorm refit, the unpruned model as teacher) unless --plain.
    const tuned = e.pruneGraph(model, {
      ...options,
      fineTune: { data, epochs, lr, schedule, seed: 0, ...(plain ? { refitBatchNorm: false, distill: false } : {}) },
    });
    rows.push({
      name: `${name} + ${epochs} epochs ${schedule}${plain ? ' plain' : ''}`,
      accuracy: acc(tuned),
      bytes: e.encodeEom(tuned).length,
      seconds: (performance.now() - t) / 1000,
    });
  }
  return rows;
}

function qat(e, argv) {
  const epochs = arg(argv, 'epochs', 2);
  const lr = arg(argv, 'lr', 0.0001);
  const bits = arg(argv, 'bits', 8);
  const observer = (argv.find((a) => a.startsWith('--observer=')) ?? '--observer=minmax').slice('--observer='.length);
  const data = e.mnistTrain();
  const test = e.mnistTest();
  const model = e.defaultCnn();
  const quantize = {
    bits,
    activations: 'static',
    calibration: e.sliceRows(data, 0, arg(argv, 'calibration-rows', 500)),
    observer: e.parseObserver(observer),
  };
  const acc = (g) => e.evaluateModel(g, test).accuracy;
  const rows = [{ name: 'fp32', accuracy: acc(model), seconds: 0 }];
  const ptq = e.quantizeGraph(model, quantize);
  rows.push({ name: `int${bits} ${observer}, post-training`, accuracy: acc(ptq), bytes: e.encodeEom(ptq).length, seconds: 0 });
  const cpu = process.cpuUsage();
  const trained = e.quantizeGraph(model, { ...quantize, qat: { data, epochs, lr, seed: 0 } });
  const used = process.cpuUsage(cpu);
  rows.push({
    name: `int${bits} ${observer}, ${epochs} epochs QAT`,
    accuracy: acc(trained),
    bytes: e.encodeEom(trained).length,
    seconds: (used.user + used.system) / 1e6,
  });
  return rows;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function filters(e, argv) {
  const sparsity = arg(argv, 'sparsity', 0.25);
  const test = e.mnistTest();
  const model = e.defaultCnn();
  const pruned = e.pruneGraph(model, { sparsity, mode: 'filters' });
  const engine = new e.EdgeInferenceEngine({ device: 'cpu', threads: 1 });
  const models = [
    ['fp32', model],
    [`${sparsity * 100} % filters`, pruned],
  ];
  for (const [id, g] of models) engine.loadModelSync(id, g);
  const x = { data: test.data.subarray(0, 784), shape: [1, 1, 28, 28] };
  const times = models.map(() => []);
  for (let round = 0; round < 15; round++)
    models.forEach(([id], i) => {
      const t = performance.now();
      for (let k = 0; k < 200; k++) engine.inferSync(id, x);
      times[i].push(((performance.now() - t) / 200) * 1000);
    });
  return models.map(([id, g], i) => ({
    name: id,
    accuracy: e.evaluateModel(g, test).accuracy,
    bytes: e.encodeEom(g).length,
    microseconds: median(times[i]),
    ratio: median(times[0]) / median(times[i]),
  }));
}

exports.run = async function run(argv) {
  const e = require(path.join(__dirname, '..', 'dist', 'index.js'));
  const mode = argv.find((a) => !a.startsWith('--')) ?? 'scratch';
  const modes = { scratch, 'fine-tune': fineTune, filters, qat };
  if (!modes[mode]) throw new Error(`train-cnn: mode must be one of ${Object.keys(modes).join(', ')}, got '${mode}'`);
  const started = performance.now();
  const rows = modes[mode](e, argv);
  // Non-default observers keep their own result file (qat-entropy), so one run does not replace the other.
  const observer = argv.find((a) => a.startsWith('--observer='))?.slice('--observer='.length);
  const result = mode === 'qat' && observer && observer !== 'minmax' ? `${mode}-${observer.replace(/[^a-z0-9.]/gi, '-')}` : mode;
  C.writeResult(`train-cnn-${result}`, {
    command: `npm run bench -- train-cnn ${argv.filter((a) => a !== '--json').join(' ')}`.trim(),
    durationSeconds: C.round((performance.now() - started) / 1000, 1),
    machine: C.machine(),
    rows,
  });
  if (argv.includes('--json')) return console.log(JSON.stringify({ backend: e.backendInfo().kernel, mode, rows }, null, 2));
  for (const r of rows)
    console.log(
      `${r.name.padEnd(36)} ${(r.accuracy * 100).toFixed(2)} %${r.bytes ? `  ${r.bytes} bytes` : ''}` +
        `${r.microseconds ? `  ${r.microseconds.toFixed(1)} us/image (${r.ratio.toFixed(2)}x)` : ''}${r.seconds ? `  (${r.seconds.toFixed(1)} s)` : ''}`,
    );
};
