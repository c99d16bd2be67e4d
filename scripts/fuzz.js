#!/usr/bin/env node
// `npm run fuzz -- [--format eom|onnx|all] [--backend native|ts|all] [--cases N] [--seed S]
//                  [--slow-ms 5000] [--rss-mb 512] [--timeout-ms 30000] [--out dir] [--json]`
//
// Mutates real model files (.eom encodings of the bundled MLP: fp32, int8, pruned 4-bit,
// static int8, and of the CNN fixtures LeNet-5 and mobilenet-mini; compressed .eom of the int8
// MLP and mobilenet-mini; the ONNX fixtures in
// test/fixtures, CNNs included, and ONNX exports) and feeds each
// mutant to loadModel + EdgeInferenceEngine.loadModel + infer, once per backend, in
// worker child processes (so a crash kills a worker, not the run). Per case it records
// the outcome, the time and the RSS growth; per format and backend it counts:
//   ok / EdgeOptError by code   what is allowed
//   other errors                any exception that is not an EdgeOptError (a TypeError...)
//   crashes                     the worker died (signal, abort, exit) during the case
//   hangs                       no answer within --timeout-ms (the worker is killed)
//   slow / big                  cases over --slow-ms or +--rss-mb of RSS (growth or a new peak)
// Every case is reproducible from (format, seed, index): `--replay eom:7:1234` reruns one in
// this process and prints its stack; --out saves the bytes of every failing case.
// Needs the TypeScript build (npm run build:ts); exits 1 when anything but ok/EdgeOptError happened.
'use strict';
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

// ---------------------------------------------------------------- the corpus

function corpus(format) {
  const eo = require(path.join(root, 'dist', 'index.js'));
  const fixtures = path.join(root, 'test', 'fixtures');
  const fp32 = eo.defaultModel();
  const int8 = eo.quantizeGraph(fp32, { bits: 8 });
  if (format === 'eom') {
    const calib = eo.sliceRows(eo.mnistTest(), 0, 64);
    const staticInt8 = eo.applyStaticActivations(int8, eo.observeActivations(fp32, calib));
    const pruned4 = eo.quantizeGraph(eo.pruneGraph(fp32, { sparsity: 0.5 }), { bits: 4 });
    const cnns = ['lenet5-1x28x28', 'mobilenet-mini-1x28x28'].map((name) => eo.loadModel(path.join(fixtures, name, 'model-opset17.onnx')));
    const plain = [fp32, int8, staticInt8, pruned4, ...cnns].map((g) => Buffer.from(eo.encodeEom(g)));
    // The compressed form too: mutations then hit the envelope header and the brotli stream.
    const compressed = [int8, cnns[1]].map((g) => Buffer.from(eo.encodeEom(g, { compress: true })));
    return [...plain, ...compressed];
  }
  const files = fs
    .readdirSync(fixtures, { recursive: true })
    .filter((f) => String(f).endsWith('.onnx'))
    .map((f) => fs.readFileSync(path.join(fixtures, String(f))));
  return [...files, Buffer.from(eo.encodeOnnx(fp32)), Buffer.from(eo.encodeOnnx(int8, { int8: 'qdq' }))];
}

// ---------------------------------------------------------------- mutations

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BOUNDARY_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];
const BOUNDARY_U64 = [...BOUNDARY_U32.map(BigInt), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
const BOUNDARY_TEXT = ['0', '-1', '1e308', '2147483648', '4294967295', '9007199254740993', 'null', '[]', '{}', '"x"', 'true'];

/** One mutant of `base`, a pure function of (base, seed). */
function mutate(base, seed, format) {
  const r = rng(seed);
  const int = (n) => Math.floor(r() * n);
  let b = Buffer.from(base);
  const headerEnd = format === 'eom' && b.length >= 8 ? Math.min(b.length, 8 + Number(b.readBigUInt64LE(0))) : b.length;
  const steps = 1 + int(4);
  for (let s = 0; s < steps; s++) {
    // Half the mutations aim at the header (JSON for .eom), where the structure is.
    const span = r() < 0.5 ? headerEnd : b.length;
    const at = int(Math.max(1, span));
    switch (int(format === 'eom' ? 8 : 6)) {
      case 0: // flip bits
        b[at] ^= 1 << int(8);
        break;
      case 1: // random bytes
        for (let i = 0; i < 1 + int(8) && at + i < b.length; i++) b[at + i] = int(256);
        break;
      case 2: // a boundary integer over 4 bytes
        if (at + 4 <= b.length) b.writeUInt32LE(BOUNDARY_U32[int(BOUNDARY_U32.length)], at);
        break;
      case 3: // truncate
        b = b.subarray(0, at);
        break;
      case 4: // duplicate a chunk
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(64)), b.subarray(at)]);
        break;
      case 5: // cut a chunk out
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(64))]);
        break;
      case 6: {
        // .eom: replace a JSON number in the header with a boundary value
        const text = b.toString('latin1', 8, headerEnd);
        const numbers = [...text.matchAll(/-?\d+/g)];
        if (!numbers.length) break;
        const m = numbers[int(numbers.length)];
        const replaced = text.slice(0, m.index) + BOUNDARY_TEXT[int(BOUNDARY_TEXT.length)] + text.slice(m.index + m[0].length);
        b = withEomHeader(b, replaced, headerEnd);
        break;
      }
      case 7: // .eom: the header length itself
        if (b.length >= 8) b.writeBigUInt64LE(BOUNDARY_U64[int(BOUNDARY_U64.length)], 0);
        break;
    }
  }
  return b;
}

function withEomHeader(b, text, headerEnd) {
  const json = Buffer.from(text, 'latin1');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, b.subarray(headerEnd)]);
}

function caseBytes(format, seed, index, bases) {
  const base = bases[index % bases.length];
  return mutate(base, (seed * 1000003 + index) >>> 0, format);
}

// ---------------------------------------------------------------- one case

/** Loads, compiles and runs the bytes; returns the outcome (never throws). */
async function runCase(eo, bytes) {
  const engine = new eo.EdgeInferenceEngine({ device: 'auto' });
  try {
    const graph = eo.loadModel(bytes);
    const { inputShape } = await engine.loadModel('m', graph);
    const rowSize = inputShape.reduce((a, d) => a * d, 1);
    if (rowSize > 0 && rowSize <= 1 << 20) {
      const x = new Float32Array(2 * rowSize);
      for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 255) / 255;
      await engine.infer('m', { data: x, shape: [2, ...inputShape] });
    }
    return { outcome: 'ok' };
  } catch (err) {
    if (err instanceof eo.EdgeOptError) return { outcome: 'edgeopt', code: err.code };
    return { outcome: 'other', name: err?.name ?? typeof err, message: String(err?.message ?? err).slice(0, 300) };
  } finally {
    engine.dispose();
  }
}

function worker() {
  const eo = require(path.join(root, 'dist', 'index.js'));
  const bases = {};
  process.on('message', async ({ format, seed, index }) => {
    bases[format] ??= corpus(format);
    const bytes = caseBytes(format, seed, index, bases[format]);
    const rss0 = process.memoryUsage().rss;
    const peak0 = process.resourceUsage().maxRSS;
    const t0 = performance.now();
    const result = await runCase(eo, bytes);
    process.send({
      index,
      ...result,
      ms: performance.now() - t0,
      rssMb: (process.memoryUsage().rss - rss0) / 2 ** 20,
      peakMb: (process.resourceUsage().maxRSS - peak0) / 1024,
    });
  });
  process.send({ ready: true });
}

// ---------------------------------------------------------------- the run

function parseArgs(argv) {
  const o = {
    format: 'all',
    backend: 'all',
    cases: 300,
    seed: 1,
    slowMs: 5000,
    timeoutMs: 30_000,
    rssMb: 512,
    out: null,
    json: false,
    replay: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--format') o.format = next();
    else if (a === '--backend') o.backend = next();
    else if (a === '--cases') o.cases = Number(next());
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--timeout-ms') o.timeoutMs = Number(next());
    else if (a === '--slow-ms') o.slowMs = Number(next());
    else if (a === '--rss-mb') o.rssMb = Number(next());
    else if (a === '--out') o.out = next();
    else if (a === '--json') o.json = true;
    else if (a === '--replay') o.replay = next();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** A worker for one backend, restarted after a crash or hang and every 250 cases (a fresh peak RSS). */
class Worker {
  constructor(backend) {
    this.backend = backend;
    this.done = 0;
  }
  async start() {
    const env = { ...process.env, EDGEOPT_FORCE_TS: this.backend === 'ts' ? '1' : '' };
    this.child = fork(__filename, ['--worker'], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr.resume();
    await new Promise((resolve, reject) => {
      this.child.once('message', resolve);
      this.child.once('exit', (code, signal) => reject(new Error(`fuzz worker exited at start (${code ?? signal})`)));
    });
  }
  /** Runs one case; resolves to its result, or to a crash/hang outcome. */
  run(msg, timeoutMs) {
    return new Promise((resolve) => {
      const child = this.child;
      const finish = (result) => {
        clearTimeout(timer);
        child.removeAllListeners('message');
        child.removeAllListeners('exit');
        resolve(result);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        this.child = null;
        finish({ index: msg.index, outcome: 'hang', ms: timeoutMs });
      }, timeoutMs);
      child.once('message', finish);
      child.once('exit', (code, signal) => {
        this.child = null;
        finish({ index: msg.index, outcome: 'crash', detail: signal ?? `exit ${code}` });
      });
      child.send(msg);
    });
  }
  async case(msg, timeoutMs) {
    if (!this.child || this.done++ % 250 === 0) {
      this.child?.kill('SIGKILL');
      await this.start();
    }
    return this.run(msg, timeoutMs);
  }
  stop() {
    this.child?.kill('SIGKILL');
  }
}

function summarize(results, o) {
  const s = {
    cases: results.length,
    ok: 0,
    edgeOptErrors: {},
    other: 0,
    crashes: 0,
    hangs: 0,
    slow: 0,
    big: 0,
    maxMs: 0,
    maxRssMb: 0,
    examples: [],
  };
  for (const r of results) {
    if (r.outcome === 'ok') s.ok++;
    else if (r.outcome === 'edgeopt') s.edgeOptErrors[r.code] = (s.edgeOptErrors[r.code] ?? 0) + 1;
    else if (r.outcome === 'other') s.other++;
    else if (r.outcome === 'crash') s.crashes++;
    else if (r.outcome === 'hang') s.hangs++;
    if (r.ms > o.slowMs) s.slow++;
    const mb = Math.max(r.rssMb ?? 0, r.peakMb ?? 0);
    if (mb > o.rssMb) s.big++;
    s.maxMs = Math.max(s.maxMs, r.ms ?? 0);
    s.maxRssMb = Math.max(s.maxRssMb, mb);
    if (!['ok', 'edgeopt'].includes(r.outcome) || r.ms > o.slowMs || mb > o.rssMb) if (s.examples.length < 10) s.examples.push(r);
  }
  s.maxMs = Math.round(s.maxMs);
  s.maxRssMb = Math.round(s.maxRssMb);
  return s;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--worker') return worker();
  const o = parseArgs(argv);
  if (o.replay) {
    const [format, seed, index] = o.replay.split(':');
    const eo = require(path.join(root, 'dist', 'index.js'));
    const bytes = caseBytes(format, Number(seed), Number(index), corpus(format));
    const engine = new eo.EdgeInferenceEngine();
    const g = eo.loadModel(bytes); // throws with the full stack
    await engine.loadModel('m', g);
    return console.log('loads');
  }
  const formats = o.format === 'all' ? ['eom', 'onnx'] : [o.format];
  const backends = o.backend === 'all' ? ['native', 'ts'] : [o.backend];
  const report = [];
  for (const format of formats)
    for (const backend of backends) {
      const w = new Worker(backend);
      const results = [];
      try {
        for (let index = 0; index < o.cases; index++) {
          const r = await w.case({ format, seed: o.seed, index }, o.timeoutMs);
          results.push({ ...r, replay: `${format}:${o.seed}:${index}` });
          if (o.out && !['ok', 'edgeopt'].includes(r.outcome)) {
            fs.mkdirSync(o.out, { recursive: true });
            fs.writeFileSync(
              path.join(o.out, `${format}-${backend}-${o.seed}-${index}.bin`),
              caseBytes(format, o.seed, index, corpus(format)),
            );
          }
        }
      } finally {
        w.stop();
      }
      const s = { format, backend, ...summarize(results, o) };
      report.push(s);
      if (!o.json)
        console.log(
          `${format} on ${backend}: ${s.cases} cases, ${s.ok} ok, EdgeOptError ${JSON.stringify(s.edgeOptErrors)}, ` +
            `${s.other} other errors, ${s.crashes} crashes, ${s.hangs} hangs, ${s.slow} over ${o.slowMs} ms, ` +
            `${s.big} over +${o.rssMb} MB; max ${s.maxMs} ms, +${s.maxRssMb} MB` +
            s.examples
              .map((e) => `\n  ${e.replay}: ${e.outcome} ${e.name ?? ''} ${e.message ?? e.detail ?? ''} (${Math.round(e.ms ?? 0)} ms)`)
              .join(''),
        );
    }
  if (o.json) console.log(JSON.stringify(report));
  const bad = report.some((s) => s.other || s.crashes || s.hangs || s.slow || s.big);
  process.exitCode = bad ? 1 : 0;
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(2);
});
