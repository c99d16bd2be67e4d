// The HTTP server under load: `npm run bench -- serve [--quick] [--json] [--seconds=10] [--rounds=2]
// [--concurrency=1,16,64,256] [--burst-seconds=10] [--models=mnist,big,mobilenet]`.
//
// For each model, starts `edgeopt serve` twice in child processes, one with dynamic batching and
// one without, and drives both from this process with autocannon at fixed connection counts,
// interleaved round by round so each ratio compares the same minutes of this shared machine.
// Models: the bundled MNIST MLP (int8; the acceptance model), a seeded
// 1024-4096-4096-1024 MLP (int8; bench compare's big MLP) whose rows cost more than the HTTP
// around them, and the bundled CNN mobilenet-mini (fp32), a deployed model's per-row work in
// between. Each request is one row as raw float32 with an x-request-id; the server echoes the
// id, and every answer is counted (none lost, none twice) and checked (argmax equal to the
// engine's own answer for that row). Then a burst: 256 connections, each pipelining several
// requests, against a batching MNIST server with a small queue, which must answer 503 E_BUSY
// rather than grow: its RSS is sampled before, during and after.
// Writes bench/results/serve.json (serve-quick.json with --quick).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const C = require('./support/common');

const BATCHING = { maxBatch: 64, maxDelayMs: 0, maxQueue: 1024 };
/** One intra-op thread: the load generator shares this 2-core machine, and a batch split over threads waits for its slowest one. */
const THREADS = 1;
const BURST = { maxBatch: 64, maxDelayMs: 0, maxQueue: 128, pipelining: 8, connections: 256 };

function arg(argv, name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

/** Starts `edgeopt serve` (from lib/ through tsx) on a free port; resolves when it prints its URL. */
function startServer(modelFile, flags) {
  const cli = path.join(C.ROOT, 'lib', 'cli', 'index.ts');
  const args = ['--import', 'tsx', cli, 'serve', `m=${modelFile}`, '--port', '0', '--threads', String(THREADS), ...flags];
  const child = spawn(process.execPath, args, {
    cwd: C.ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A crash of this process (an exception inside autocannon's callbacks) must not leave servers behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let log = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      log += d;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolve({ child, url: m[1], flags, log: () => log });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (log += d));
    child.once('exit', (code) => reject(new Error(`edgeopt serve exited (${code}) before listening:\n${log}`)));
  });
}

async function stopServer(s) {
  const exited = new Promise((resolve) => s.child.once('exit', (code, signal) => resolve({ code, signal })));
  s.child.kill('SIGTERM');
  return exited;
}

function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The server's counters and histograms (Prometheus text -> { 'name{labels}': value }). */
async function scrape(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

const sumWhere = (m, prefix) =>
  Object.entries(m)
    .filter(([k]) => k.startsWith(prefix))
    .reduce((a, [, v]) => a + v, 0);

/** Waits until the server has answered everything it received (requests of closed connections included). */
async function drained(url) {
  for (let i = 0; i < 200; i++) {
    const m = await scrape(url);
    if (m.edgeopt_inflight_requests === 0) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} still has requests in flight after 10 s`);
}

/** Upper bound of the bucket holding quantile q of a Prometheus histogram (delta of two scrapes). */
function histogramQuantile(before, after, name, q) {
  const buckets = Object.keys(after)
    .filter((k) => k.startsWith(`${name}_bucket`))
    .map((k) => ({ le: Number(/le="([^"]+)"/.exec(k)[1].replace('+Inf', 'Infinity')), n: after[k] - (before[k] || 0) }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.length ? buckets[buckets.length - 1].n : 0;
  if (!total) return null;
  return buckets.find((b) => b.n >= q * total).le;
}

/** One autocannon run; every request carries an id and every answer is counted and checked. */
async function load(autocannon, server, opts, data) {
  const before = await drained(server.url);
  const rssBefore = rssBytes(server.child.pid);
  const sentAt = new Map();
  const latencies = [];
  const status = {};
  let seq = 0;
  let duplicates = 0;
  let unknown = 0;
  let wrong = 0;
  const answered = new Set();
  let rssPeak = rssBefore || 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(server.child.pid) || 0)), 200);
  const result = await autocannon({
    url: `${server.url}/v1/models/m:predict`,
    connections: opts.connections,
    pipelining: opts.pipelining || 1,
    duration: opts.seconds,
    timeout: 20,
    method: 'POST',
    requests: [
      {
        setupRequest(req) {
          const id = ++seq;
          const row = id % data.rows;
          sentAt.set(id, performance.now());
          req.headers = {
            'content-type': 'application/octet-stream',
            accept: 'application/json',
            'x-edgeopt-dims': data.dims.join(','),
            'x-request-id': String(id),
          };
          req.body = data.bodies[row];
          return req;
        },
        onResponse(code, body, _ctx, headers) {
          const id = Number(headers['x-request-id']);
          const t = sentAt.get(id);
          status[code] = (status[code] || 0) + 1;
          if (t === undefined) return void unknown++;
          if (answered.has(id)) return void duplicates++;
          answered.add(id);
          latencies.push(performance.now() - t);
          if (code === 200) {
            const out = Object.values(JSON.parse(body).outputs)[0].data;
            let best = 0;
            for (let j = 1; j < out.length; j++) if (out[j] > out[best]) best = j;
            if (best !== data.argmax[id % data.rows]) wrong++;
          }
        },
      },
    ],
  });
  const after = await drained(server.url);
  clearInterval(sampler);
  const lat = C.summarize(latencies);
  const received = (after['edgeopt_requests_received_total{model="m"}'] || 0) - (before['edgeopt_requests_received_total{model="m"}'] || 0);
  const answeredByServer = sumWhere(after, 'edgeopt_requests_total{') - sumWhere(before, 'edgeopt_requests_total{');
  const batches = (after['edgeopt_batch_size_count{model="m"}'] || 0) - (before['edgeopt_batch_size_count{model="m"}'] || 0);
  const batchRows = (after['edgeopt_batch_size_sum{model="m"}'] || 0) - (before['edgeopt_batch_size_sum{model="m"}'] || 0);
  const batchSeconds =
    (after['edgeopt_batch_duration_seconds_sum{model="m"}'] || 0) - (before['edgeopt_batch_duration_seconds_sum{model="m"}'] || 0);
  const ok = status[200] || 0;
  return {
    connections: opts.connections,
    pipelining: opts.pipelining || 1,
    seconds: opts.seconds,
    requestsPerSec: C.round(ok / opts.seconds, 1),
    p50Ms: C.round(lat.median, 3),
    p99Ms: C.round(lat.p99, 3),
    maxMs: C.round(lat.max, 3),
    status,
    errors: result.errors,
    timeouts: result.timeouts,
    count: {
      sent: seq,
      answered: answered.size,
      duplicates,
      unknownIds: unknown,
      wrongArgmax: wrong,
      inFlightAtStop: seq - answered.size,
      serverReceived: received,
      serverAnswered: answeredByServer,
    },
    batches,
    meanBatchRows: batches ? C.round(batchRows / batches, 2) : null,
    meanBatchMs: batches ? C.round((batchSeconds / batches) * 1000, 4) : null,
    serverRunP99Ms: histogramQuantile(before, after, 'edgeopt_run_duration_seconds', 0.99) * 1000,
    rssBeforeBytes: rssBefore,
    rssPeakBytes: rssPeak,
    rssAfterBytes: rssBytes(server.child.pid),
  };
}

const flagsOf = (b) => ['--max-batch', String(b.maxBatch), '--max-delay-ms', String(b.maxDelayMs), '--max-queue', String(b.maxQueue)];

/** A model to serve: its .eom file, request bodies (one row each) and the engine's argmax per row. */
function prepare(E, dir, key) {
  const spec =
    key === 'mnist'
      ? {
          graph: E.quantizeGraph(E.defaultModel(), { bits: 8 }),
          describe: 'mlp-784-128-10 (bundled, PyTorch-trained), int8, MNIST test rows',
        }
      : key === 'mobilenet'
        ? {
            graph: E.loadOnnx(path.join(C.ROOT, 'data', 'models', 'mobilenet-mini-1x28x28', 'model.onnx')),
            describe: 'mobilenet-mini-1x28x28 (bundled CNN, PyTorch-trained), fp32, MNIST test rows',
          }
        : {
            graph: E.quantizeGraph(C.syntheticMlp([1024, 4096, 4096, 1024]), { bits: 8 }),
            describe: 'mlp-1024-4096-4096-1024 (seeded), int8, seeded random rows',
          };
  const file = path.join(dir, `${key}.eom`);
  E.saveModel(spec.graph, file);
  const dims = [1, ...spec.graph.inputs[0].shape.slice(1)]; // one row
  const features = dims.reduce((a, b) => a * b, 1);
  const x = key === 'big' ? C.randomRows(256, features, 7) : E.mnistTest().data.subarray(0, 2000 * 784);
  const rows = x.length / features;
  const engine = new E.EdgeInferenceEngine();
  engine.loadModelSync('m', spec.graph);
  const argmax = Array.from(E.argmaxRows(engine.inferSync('m', { data: x, shape: [rows, ...dims.slice(1)] }).data, rows));
  engine.dispose();
  const bodies = Array.from({ length: rows }, (_, r) => Buffer.from(x.slice(r * features, (r + 1) * features).buffer));
  return {
    key,
    file,
    graph: spec.graph,
    describe: spec.describe,
    data: { rows, features, dims, input: spec.graph.inputs[0].name, bodies, argmax },
  };
}

/**
 * The same closed loop without HTTP: `connections` callers in this process, each awaiting
 * session.run of one row at a time, batching off and on interleaved. Separates what batching
 * saves in the engine from what HTTP costs around it.
 */
async function inProcess(E, m, connections, seconds, rounds) {
  const once = async (batching) => {
    const engine = new E.EdgeInferenceEngine({ threads: THREADS });
    const s = engine.loadModelSync('m', m.graph, { batching });
    const f = m.data.features;
    const rows = m.data.bodies.map((b) => new Float32Array(b.buffer, b.byteOffset, f));
    let done = 0;
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        for (let i = c; performance.now() < end; i += connections) {
          await s.run({ [m.data.input]: { data: rows[i % rows.length], dims: m.data.dims } });
          done++;
        }
      }),
    );
    await s.release();
    engine.dispose();
    return done / seconds;
  };
  const out = { connections, seconds, off: [], on: [] };
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 ? ['on', 'off'] : ['off', 'on']) out[mode].push(C.round(await once(mode === 'on' ? BATCHING : false), 1));
  }
  return out;
}

const med = (xs) => C.quantile(Float64Array.from(xs).sort(), 0.5);

function summarize(runs, levels, rounds) {
  return levels.map((connections) => {
    const pick = (mode) => runs.filter((r) => r.mode === mode && r.connections === connections);
    const ratios = [...Array(rounds).keys()].map((round) => {
      const [on, off] = ['on', 'off'].map((mode) => pick(mode).find((r) => r.round === round));
      return on.requestsPerSec / off.requestsPerSec;
    });
    const on = pick('on');
    const all = runs.filter((r) => r.connections === connections);
    const batchMs = med(on.map((r) => r.meanBatchMs || 0));
    return {
      connections,
      offRequestsPerSec: C.round(med(pick('off').map((r) => r.requestsPerSec)), 1),
      onRequestsPerSec: C.round(med(on.map((r) => r.requestsPerSec)), 1),
      ratios: ratios.map((x) => C.round(x, 2)),
      offP99Ms: C.round(med(pick('off').map((r) => r.p99Ms)), 3),
      onP99Ms: C.round(med(on.map((r) => r.p99Ms)), 3),
      onServerRunP99Ms: med(on.map((r) => r.serverRunP99Ms)),
      onMeanBatchRows: C.round(med(on.map((r) => r.meanBatchRows || 0)), 2),
      onMeanBatchMs: C.round(batchMs, 4),
      /** The bound: 2 x (maxDelayMs + one batch's compute time). */
      p99BoundMs: C.round(2 * (BATCHING.maxDelayMs + batchMs), 3),
      lost: all.reduce((a, r) => a + (r.count.serverReceived - r.count.serverAnswered) + r.count.unknownIds, 0),
      duplicates: all.reduce((a, r) => a + r.count.duplicates, 0),
      wrong: all.reduce((a, r) => a + r.count.wrongArgmax, 0),
      non200: all.reduce(
        (a, r) => a + Object.entries(r.status).reduce((s, [k, v]) => s + (k === '200' ? 0 : v), 0) + r.errors + r.timeouts,
        0,
      ),
    };
  });
}

async function run(argv) {
  const quick = argv.includes('--quick');
  const json = argv.includes('--json');
  const seconds = Number(arg(argv, 'seconds', quick ? 3 : 10));
  const rounds = Number(arg(argv, 'rounds', quick ? 1 : 2));
  const burstSeconds = Number(arg(argv, 'burst-seconds', quick ? 5 : 10));
  const levels = arg(argv, 'concurrency', '1,16,64,256').split(',').map(Number);
  const keys = arg(argv, 'models', 'mnist,big').split(',');
  const autocannon = C.optional('autocannon');
  if (!autocannon.mod) throw new Error(autocannon.note);
  const E = C.loadEdgeopt();
  const started = performance.now();
  const machine = C.machine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-serve-'));
  const log = (line) => json || console.error(line);

  const models = [];
  let burst;
  let shutdown;
  try {
    for (const key of keys) {
      const m = prepare(E, dir, key);
      const servers = { off: await startServer(m.file, ['--no-batching']), on: await startServer(m.file, flagsOf(BATCHING)) };
      const runs = [];
      try {
        for (let round = 0; round < rounds; round++) {
          for (const connections of levels) {
            for (const mode of round % 2 ? ['on', 'off'] : ['off', 'on']) {
              const r = await load(autocannon.mod, servers[mode], { connections, seconds }, m.data);
              runs.push({ round, mode, ...r });
              log(
                `${key} round ${round + 1} c=${connections} batching ${mode}: ${r.requestsPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, batch ${r.meanBatchRows ?? '-'} rows`,
              );
            }
          }
        }
      } finally {
        for (const s of Object.values(servers)) await stopServer(s);
      }
      const engineOnly = await inProcess(E, m, 64, Math.min(seconds, 5), rounds);
      log(`${key} in-process, 64 callers: off ${engineOnly.off.join(', ')} runs/s, on ${engineOnly.on.join(', ')} runs/s`);
      models.push({ key, describe: m.describe, runs, summary: summarize(runs, levels, rounds), inProcess: engineOnly });
    }
    // The burst: more requests outstanding than the queue holds, on the MNIST model.
    const m = prepare(E, dir, 'mnist');
    const burstServer = await startServer(m.file, flagsOf(BURST));
    try {
      const idleRss = rssBytes(burstServer.child.pid);
      burst = await load(
        autocannon.mod,
        burstServer,
        { connections: BURST.connections, pipelining: BURST.pipelining, seconds: burstSeconds },
        m.data,
      );
      burst.rssIdleBytes = idleRss;
      burst.healthzAfter = (await fetch(`${burstServer.url}/healthz`)).status;
      // The same burst again: memory that is bounded comes back to where the first burst left it.
      const again = await load(
        autocannon.mod,
        burstServer,
        { connections: BURST.connections, pipelining: BURST.pipelining, seconds: burstSeconds },
        m.data,
      );
      burst.second = { status: again.status, errors: again.errors, rssPeakBytes: again.rssPeakBytes, rssAfterBytes: again.rssAfterBytes };
    } finally {
      shutdown = await stopServer(burstServer);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  machine.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const result = {
    command: `npm run bench -- serve${argv.length ? ' ' + argv.join(' ') : ''}`,
    durationSeconds: C.round((performance.now() - started) / 1000, 1),
    machine,
    autocannon: autocannon.version,
    settings: { seconds, rounds, levels, threads: THREADS, batching: BATCHING, burst: { ...BURST, seconds: burstSeconds } },
    models,
    burst,
    shutdown,
  };
  C.writeResult(quick ? 'serve-quick' : 'serve', result);
  if (json) return console.log(JSON.stringify(result, null, 2));
  for (const m of models) {
    console.log(`\n${m.describe}; ${seconds} s per run, ${rounds} round(s), interleaved; batching ${JSON.stringify(BATCHING)}`);
    console.log('conns  off req/s  on req/s  ratio/round  off p99  on p99  srv run p99  bound  batch rows  lost dup wrong non200');
    for (const s of m.summary)
      console.log(
        [
          s.connections,
          s.offRequestsPerSec,
          s.onRequestsPerSec,
          s.ratios.join(','),
          s.offP99Ms,
          s.onP99Ms,
          `<=${s.onServerRunP99Ms}`,
          s.p99BoundMs,
          s.onMeanBatchRows,
          s.lost,
          s.duplicates,
          s.wrong,
          s.non200,
        ]
          .map(String)
          .join('  '),
      );
  }
  const mb = (b) => (b == null ? '-' : `${(b / 2 ** 20).toFixed(1)} MiB`);
  console.log(
    `\nburst: ${BURST.connections} connections x ${BURST.pipelining} pipelined, ${burstSeconds} s, maxQueue ${BURST.maxQueue}: status ${JSON.stringify(burst.status)}, errors ${burst.errors}, timeouts ${burst.timeouts}; ` +
      `RSS idle ${mb(burst.rssIdleBytes)}, peak ${mb(burst.rssPeakBytes)}, after ${mb(burst.rssAfterBytes)}; /healthz after: ${burst.healthzAfter}; ` +
      `second burst: status ${JSON.stringify(burst.second.status)}, RSS peak ${mb(burst.second.rssPeakBytes)}, after ${mb(burst.second.rssAfterBytes)}; SIGTERM exit ${JSON.stringify(shutdown)}`,
  );
  console.log(`wrote bench/results/${quick ? 'serve-quick' : 'serve'}.json`);
}

module.exports = { run };
