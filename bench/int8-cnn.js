// Static int8 CNN speed against fp32: `npm run bench -- int8-cnn [--rounds=20] [--calls=200] [--json]`.
// The bundled mobilenet-mini-1x28x28, quantized as the issue's target says (static activations,
// per-channel weights, calibrated on 500 train digits), and its fp32 original, each run as one native
// Program, batch 1, on one test digit. CPU time (process.cpuUsage) per call, the contenders alternating
// in every round (fp32 and int8, 1 and 2 threads), medians over rounds, so load on the shared machine
// hits all alike. Two threads run the int8 program as a team (native/core/program_team.h); beside
// their wall time, the median of an empty team run (the caller's signal to the other core and back,
// addon.teamRoundTrip) before and after says how far apart this VM's two cores are right now,
// which is what bounds two threads on a 0.05 ms model. Then where the int8 time goes: each op's
// median seconds over single profiled runs (one thread), summed by kernel. Results go to
// bench/results/int8-cnn.json; `npm run bench -- report` renders them.
'use strict';
const path = require('node:path');
const os = require('node:os');
const C = require('./support/common');

function arg(argv, name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : dflt;
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

// Milliseconds since some start: the process's CPU time (both cores' work) or wall time.
const clocks = {
  cpu: () => {
    const t = process.cpuUsage();
    return (t.user + t.system) / 1000;
  },
  wall: () => C.now(),
};

/** ms per call of each contender on `clock`, medians of `rounds` alternating rounds of `calls` calls. */
function measure(contenders, x, rounds, calls, clock) {
  for (const c of contenders) for (let i = 0; i < calls; i++) c.program.runSync([x], 1); // warm-up
  const perRound = contenders.map(() => []);
  for (let r = 0; r < rounds; r++)
    for (let i = 0; i < contenders.length; i++) {
      const k = (i + r) % contenders.length;
      const t0 = clocks[clock]();
      for (let j = 0; j < calls; j++) contenders[k].program.runSync([x], 1);
      perRound[k].push((clocks[clock]() - t0) / calls);
    }
  return perRound.map(median);
}

/** The int8 program's op times by kernel (µs per call, one thread, medians over `runs` profiled runs). */
function breakdown(program, ops, x, runs) {
  const samples = [];
  for (let r = 0; r < runs; r++) samples.push(program.profile([x], 1, 1));
  const byKernel = {};
  ops.forEach((op, i) => {
    const k = program.opKernels[i] || op.op;
    byKernel[k] = C.round((byKernel[k] ?? 0) + median(samples.map((s) => s[i])) * 1e6, 2);
  });
  return Object.entries(byKernel)
    .sort((a, b) => b[1] - a[1])
    .map(([kernel, us]) => ({ kernel, us }));
}

async function run(argv) {
  const E = C.loadEdgeopt();
  const addon = require(path.join(C.ROOT, 'lib', 'backends', 'index.ts')).nativeAddon();
  if (!addon) throw new Error('int8-cnn needs the native addon (npm run build:native)');
  const rounds = arg(argv, 'rounds', 20);
  const calls = arg(argv, 'calls', 200);
  const fp32 = E.loadModel(path.join(C.ROOT, 'data', 'models', 'mobilenet-mini-1x28x28', 'model.onnx'));
  const calibration = E.sliceRows(E.mnistTrain(), 0, 500);
  const quantized = E.quantizeGraph(fp32, { activations: 'static', calibration });
  const x = E.mnistTest().data.slice(0, 784);
  const programs = { fp32: E.lowerGraph(fp32), int8: E.lowerGraph(quantized) };
  const contenders = [];
  for (const threads of [1, 2])
    for (const kind of ['fp32', 'int8']) contenders.push({ kind, threads, program: new addon.Program(programs[kind], undefined, threads) });
  const load = os.loadavg().map((v) => C.round(v, 2));
  const roundTrip = () => C.round(addon.teamRoundTrip(2, 20000) * 1e6, 2);
  const teamRoundTripUs = [roundTrip()];
  const cpu = measure(contenders, x, rounds, calls, 'cpu');
  // Thread scaling in wall time (CPU time adds both cores up): the int8 programs alone.
  const int8 = contenders.filter((c) => c.kind === 'int8');
  const wall = measure(int8, x, rounds, calls, 'wall');
  teamRoundTripUs.push(roundTrip());
  const loadEnd = os.loadavg().map((v) => C.round(v, 2));
  const at = (kind, threads) => cpu[contenders.findIndex((c) => c.kind === kind && c.threads === threads)];
  const result = {
    machine: { ...C.machine(), loadavg: load, loadavgEnd: loadEnd },
    table: int8[0].program.kernel,
    model: 'mobilenet-mini-1x28x28, static int8 (per-channel weights, 500 calibration rows), batch 1',
    rounds,
    calls,
    cpuMsPerCall: contenders.map((c, i) => ({ kind: c.kind, threads: c.threads, ms: C.round(cpu[i], 4) })),
    int8VsFp32: { threads1: C.round(at('fp32', 1) / at('int8', 1), 3), threads2: C.round(at('fp32', 2) / at('int8', 2), 3) },
    int8WallMs: { threads1: C.round(wall[0], 4), threads2: C.round(wall[1], 4) },
    int8TwoThreadSpeedup: C.round(wall[0] / wall[1], 3),
    teamBarriers: int8[1].program.teamBarriers,
    teamRoundTripUs,
    breakdownUs: breakdown(int8[0].program, programs.int8.ops, x, 400),
  };
  C.writeResult('int8-cnn', result);
  if (argv.includes('--json')) return console.log(JSON.stringify(result, null, 2));
  console.log(`${result.model}; table ${result.table}; load ${load.join(' ')} -> ${loadEnd.join(' ')}`);
  for (const r of result.cpuMsPerCall) console.log(`  ${r.kind} ${r.threads} thread(s): ${r.ms} ms CPU per image`);
  console.log(`  int8 vs fp32 (CPU time): 1 thread ${result.int8VsFp32.threads1}x, 2 threads ${result.int8VsFp32.threads2}x`);
  console.log(
    `  int8 wall ms: 1 thread ${result.int8WallMs.threads1}, 2 threads ${result.int8WallMs.threads2} (${result.int8TwoThreadSpeedup}x; ` +
      `a team run with ${result.teamBarriers} barriers; an empty team run ${teamRoundTripUs.join(' -> ')} µs)`,
  );
  console.log(`  int8 by kernel (µs, 1 thread): ${result.breakdownUs.map((b) => `${b.kernel} ${b.us}`).join(', ')}`);
}

module.exports = { run };
