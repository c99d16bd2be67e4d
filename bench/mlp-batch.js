// `npm run bench -- mlp-batch [--batches=1,64,256] [--rounds=15] [--json] [--no-write]`: the
// 1024-4096-4096-1024 MLP, int8, one thread, edgeopt against onnxruntime-node int8 in CPU time
// (process.cpuUsage around each call: on this shared machine, time other processes hold the
// core does not count), with the split of edgeopt's call:
//   infer       engine.infer() (libuv's pool; the input copied when the call is made)
//   inferSync   engine.inferSync() (the calling thread)
//   ort         onnxruntime-node int8 (DynamicQuantizeLinear + MatMulInteger), session.run()
//   gemm        the bare int8 GEMMs of the three layers at the same rows (KernelBench: packed
//               weights, no quantization, no epilogue, no JS), thread CPU time
// Contenders alternate within each round (rotated start), so a load change hits them alike.
// "rest" = inferSync - gemm: activation quantization, epilogues, copies, call overhead.
// Results go to bench/results/mlp-batch.json (read by `npm run bench -- report`).
'use strict';
const C = require('./support/common');

const SIZES = [1024, 4096, 4096, 1024];

function parseArgs(argv) {
  const o = { batches: [1, 64, 256], rounds: 15, json: false, write: true };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--batches') o.batches = v.split(',').map(Number);
    else if (k === '--rounds') o.rounds = Number(v);
    else if (k === '--json') o.json = true;
    else if (k === '--no-write') o.write = false;
    else throw new Error(`mlp-batch bench: unknown argument ${a}`);
  }
  if (!o.batches.every((b) => Number.isInteger(b) && b > 0) || !(o.rounds >= 3))
    throw new Error('mlp-batch bench: batches must be positive integers and rounds >= 3');
  return o;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function run(argv) {
  const o = parseArgs(argv);
  const E = C.loadEdgeopt();
  const ort = require('onnxruntime-node');
  const addon = require('node-gyp-build')(C.ROOT);
  const t0 = C.now();
  const machine = C.machine();
  const graph = C.syntheticMlp(SIZES, 42);
  const int8 = E.quantizeGraph(graph, { bits: 8, granularity: 'channel' });
  const engine = new E.EdgeInferenceEngine({ device: 'cpu', threads: 1, strict: true });
  engine.loadModelSync('m', int8);
  const session = await ort.InferenceSession.create(E.encodeOnnx(int8, { int8: 'integer' }), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const source = C.randomRows(256, SIZES[0], 7);
  const rows = [];
  for (const batch of o.batches) {
    const x = new Float32Array(batch * SIZES[0]);
    for (let r = 0; r < batch; r++) x.set(source.subarray((r % 256) * SIZES[0], ((r % 256) + 1) * SIZES[0]), r * SIZES[0]);
    const layers = SIZES.slice(1).map((n, i) => new addon.KernelBench('int8', batch, SIZES[i], n, machine.edgeopt.kernel, 1));
    const contenders = {
      infer: async () => engine.infer('m', { data: x, shape: [batch, SIZES[0]] }),
      inferSync: async () => engine.inferSync('m', { data: x, shape: [batch, SIZES[0]] }),
      ort: async () => session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, SIZES[0]]) }),
      gemm: async () => layers.reduce((ms, l) => ms + l.run(1).cpuSeconds * 1000, 0),
    };
    const names = Object.keys(contenders);
    const cpu = Object.fromEntries(names.map((n) => [n, []]));
    for (const n of names) await contenders[n](); // warm-up
    for (let r = 0; r < o.rounds; r++)
      for (let i = 0; i < names.length; i++) {
        const n = names[(i + r) % names.length];
        const c0 = cpuMs();
        const bare = await contenders[n]();
        cpu[n].push(n === 'gemm' ? bare : cpuMs() - c0);
      }
    const ms = Object.fromEntries(names.map((n) => [n, C.round(median(cpu[n]), 3)]));
    const macs = batch * SIZES.slice(1).reduce((s, n, i) => s + n * SIZES[i], 0);
    const row = {
      batch,
      cpuMs: ms,
      inferVsOrt: C.round(ms.ort / ms.infer, 3),
      inferSyncVsOrt: C.round(ms.ort / ms.inferSync, 3),
      gemmShare: C.round(ms.gemm / ms.inferSync, 3),
      restMs: C.round(ms.inferSync - ms.gemm, 3),
      gemmGops: C.round((2 * macs) / (ms.gemm * 1e6), 1),
    };
    rows.push(row);
    if (!o.json)
      console.log(
        `batch ${String(batch).padStart(3)}: CPU ms infer ${ms.infer} inferSync ${ms.inferSync} ORT ${ms.ort} bare GEMMs ${ms.gemm} ` +
          `| ORT/infer ${row.inferVsOrt}x ORT/inferSync ${row.inferSyncVsOrt}x | GEMMs ${(row.gemmShare * 100).toFixed(1)} % of inferSync, rest ${row.restMs} ms`,
      );
  }
  machine.loadavgEnd = C.machine().loadavg;
  const result = {
    command: `npm run bench -- mlp-batch${argv.length ? ' ' + argv.join(' ') : ''}`,
    durationSeconds: C.round((C.now() - t0) / 1000, 1),
    machine,
    rounds: o.rounds,
    rows,
  };
  if (o.json) console.log(JSON.stringify(result, null, 1));
  if (o.write) C.writeResult('mlp-batch', result);
}

module.exports = { run };
