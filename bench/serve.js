// The HTTP server under load: `npm run bench -- serve [--quick] [--json] [--seconds=10] [--rounds=2]
// [--concurrency=1,16,64,256] [--burst-seconds=10] [--model=int8|fp32]`.
//
// Starts `edgeopt serve` twice on the bundled MNIST model (int8 by default) in child processes,
// one with dynamic batching and one without, and drives both from this process with autocannon
// at fixed connection counts, interleaved round by round so each ratio compares the same minutes
// of this shared machine. Each request is one MNIST test row as raw float32 with an
// x-request-id; the server echoes the id, and every answer is counted (none lost, none twice) and
// checked (argmax equal to the engine's own answer for that row). Then a burst: 256 connections,
// each pipelining several requests, against a batching server with a small queue, which must
// answer 503 E_BUSY rather than grow: its RSS is sampled before, during and after.
// Writes bench/results/serve.json (serve-quick.json with --quick).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const C = require('./support/common');

const BATCHING = { maxBatch: 64, maxDelayMs: 2, maxQueue: 1024 };
const BURST = { maxBatch: 64, maxDelayMs: 2, maxQueue: 128, pipelining: 8, connections: 256 };

function arg(argv, name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

/** Starts `edgeopt serve` (from lib/ through tsx) on a free port; resolves when it prints its URL. */
function startServer(modelFile, flags) {
  const cli = path.join(C.ROOT, 'lib', 'cli', 'index.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', `mnist=${modelFile}`, '--port', '0', ...flags], {
    cwd: C.ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    url: `${server.url}/v1/models/mnist:predict`,
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
            'x-edgeopt-dims': '1,784',
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
  clearInterval(sampler);
  const after = await drained(server.url);
  const lat = C.summarize(latencies);
  const received =
    (after['edgeopt_requests_received_total{model="mnist"}'] || 0) - (before['edgeopt_requests_received_total{model="mnist"}'] || 0);
  const answeredByServer = sumWhere(after, 'edgeopt_requests_total{') - sumWhere(before, 'edgeopt_requests_total{');
  const batches = (after['edgeopt_batch_size_count{model="mnist"}'] || 0) - (before['edgeopt_batch_size_count{model="mnist"}'] || 0);
  const batchRows = (after['edgeopt_batch_size_sum{model="mnist"}'] || 0) - (before['edgeopt_batch_size_sum{model="mnist"}'] || 0);
  const batchSeconds =
    (after['edgeopt_batch_duration_seconds_sum{model="mnist"}'] || 0) - (before['edgeopt_batch_duration_seconds_sum{model="mnist"}'] || 0);
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

async function run(argv) {
  const quick = argv.includes('--quick');
  const json = argv.includes('--json');
  const seconds = Number(arg(argv, 'seconds', quick ? 3 : 10));
  const rounds = Number(arg(argv, 'rounds', quick ? 1 : 2));
  const burstSeconds = Number(arg(argv, 'burst-seconds', quick ? 5 : 10));
  const levels = arg(argv, 'concurrency', '1,16,64,256').split(',').map(Number);
  const precision = arg(argv, 'model', 'int8');
  const autocannon = C.optional('autocannon');
  if (!autocannon.mod) throw new Error(autocannon.note);
  const E = C.loadEdgeopt();
  const started = performance.now();
  const machine = C.machine();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-serve-'));
  const modelFile = path.join(dir, `mnist-${precision}.eom`);
  const graph = precision === 'fp32' ? E.defaultModel() : E.quantizeGraph(E.defaultModel(), { bits: 8 });
  E.saveModel(graph, modelFile);
  const test = E.mnistTest();
  const rows = test.shape[0];
  const engine = new E.EdgeInferenceEngine();
  engine.loadModelSync('m', graph);
  const argmax = Array.from(E.argmaxRows(engine.inferSync('m', { data: test.data, shape: test.shape }).data, rows));
  const bodies = Array.from({ length: rows }, (_, r) => Buffer.from(test.data.slice(r * 784, (r + 1) * 784).buffer));
  const data = { rows, bodies, argmax };

  const servers = {
    off: await startServer(modelFile, ['--no-batching']),
    on: await startServer(modelFile, flagsOf(BATCHING)),
  };
  const runs = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const connections of levels) {
        const order = round % 2 ? ['on', 'off'] : ['off', 'on'];
        for (const mode of order) {
          const r = await load(autocannon.mod, servers[mode], { connections, seconds }, data);
          runs.push({ round, mode, ...r });
          if (!json)
            console.error(
              `round ${round + 1} c=${connections} batching ${mode}: ${r.requestsPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, batch ${r.meanBatchRows ?? '-'} rows`,
            );
        }
      }
    }
  } finally {
    for (const s of Object.values(servers)) await stopServer(s);
  }

  // The burst: more requests outstanding than the queue holds.
  const burstServer = await startServer(modelFile, flagsOf(BURST));
  let burst;
  let shutdown;
  try {
    const idleRss = rssBytes(burstServer.child.pid);
    burst = await load(
      autocannon.mod,
      burstServer,
      { connections: BURST.connections, pipelining: BURST.pipelining, seconds: burstSeconds },
      data,
    );
    burst.rssIdleBytes = idleRss;
    const health = await fetch(`${burstServer.url}/healthz`);
    burst.healthzAfter = health.status;
  } finally {
    shutdown = await stopServer(burstServer);
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const summary = levels.map((connections) => {
    const pick = (mode) => runs.filter((r) => r.mode === mode && r.connections === connections);
    const ratios = [...Array(rounds).keys()].map((round) => {
      const on = runs.find((r) => r.mode === 'on' && r.connections === connections && r.round === round);
      const off = runs.find((r) => r.mode === 'off' && r.connections === connections && r.round === round);
      return on.requestsPerSec / off.requestsPerSec;
    });
    const med = (xs) => C.quantile(Float64Array.from(xs).sort(), 0.5);
    const on = pick('on');
    return {
      connections,
      offRequestsPerSec: C.round(med(pick('off').map((r) => r.requestsPerSec)), 1),
      onRequestsPerSec: C.round(med(on.map((r) => r.requestsPerSec)), 1),
      ratios: ratios.map((x) => C.round(x, 2)),
      offP99Ms: C.round(med(pick('off').map((r) => r.p99Ms)), 3),
      onP99Ms: C.round(med(on.map((r) => r.p99Ms)), 3),
      onMeanBatchRows: C.round(med(on.map((r) => r.meanBatchRows || 0)), 2),
      onMeanBatchMs: C.round(med(on.map((r) => r.meanBatchMs || 0)), 4),
      /** The bound: 2 x (maxDelayMs + one batch's compute time). */
      p99BoundMs: C.round(2 * (BATCHING.maxDelayMs + med(on.map((r) => r.meanBatchMs || 0))), 3),
      lost: runs
        .filter((r) => r.connections === connections)
        .reduce((a, r) => a + (r.count.serverReceived - r.count.serverAnswered) + r.count.unknownIds, 0),
      duplicates: runs.filter((r) => r.connections === connections).reduce((a, r) => a + r.count.duplicates, 0),
      wrong: runs.filter((r) => r.connections === connections).reduce((a, r) => a + r.count.wrongArgmax, 0),
    };
  });
  machine.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const result = {
    command: `npm run bench -- serve${argv.length ? ' ' + argv.join(' ') : ''}`,
    durationSeconds: C.round((performance.now() - started) / 1000, 1),
    machine,
    autocannon: autocannon.version,
    model: `mlp-784-128-10 (bundled), ${precision}`,
    settings: { seconds, rounds, levels, batching: BATCHING, burst: { ...BURST, seconds: burstSeconds } },
    runs,
    summary,
    burst,
    shutdown,
  };
  C.writeResult(quick ? 'serve-quick' : 'serve', result);
  if (json) return console.log(JSON.stringify(result, null, 2));
  console.log(`\n${result.model}; ${seconds} s per run, ${rounds} round(s), interleaved; batching ${JSON.stringify(BATCHING)}`);
  console.log('conns  off req/s  on req/s  ratio (per round)  off p99 ms  on p99 ms  bound ms  batch rows  lost  dup  wrong');
  for (const s of summary)
    console.log(
      `${String(s.connections).padStart(5)}  ${String(s.offRequestsPerSec).padStart(9)}  ${String(s.onRequestsPerSec).padStart(8)}  ${s.ratios.join(', ').padStart(17)}  ${String(s.offP99Ms).padStart(10)}  ${String(s.onP99Ms).padStart(9)}  ${String(s.p99BoundMs).padStart(8)}  ${String(s.onMeanBatchRows).padStart(10)}  ${String(s.lost).padStart(4)}  ${String(s.duplicates).padStart(3)}  ${String(s.wrong).padStart(5)}`,
    );
  const mb = (b) => (b == null ? '-' : `${(b / 2 ** 20).toFixed(1)} MiB`);
  console.log(
    `burst: ${BURST.connections} connections x ${BURST.pipelining} pipelined, ${burstSeconds} s, maxQueue ${BURST.maxQueue}: status ${JSON.stringify(burst.status)}, errors ${burst.errors}, timeouts ${burst.timeouts}; ` +
      `RSS idle ${mb(burst.rssIdleBytes)}, peak ${mb(burst.rssPeakBytes)}, after ${mb(burst.rssAfterBytes)}; /healthz after: ${burst.healthzAfter}; SIGTERM exit ${JSON.stringify(shutdown)}`,
  );
  console.log(`wrote bench/results/${quick ? 'serve-quick' : 'serve'}.json`);
}

module.exports = { run };
