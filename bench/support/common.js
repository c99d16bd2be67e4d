// Shared helpers of bench/compare.js, bench/table.js and bench/report.js: loading
// edgeopt from its TypeScript sources (through tsx, a devDependency, so a fresh
// clone measures the code it has, not a stale dist/), seeded models and inputs,
// timing statistics, the event-loop probe, machine description, result files.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

let edgeopt;
/** edgeopt's public API, from lib/ via tsx (falls back to dist/ when tsx is missing). */
function loadEdgeopt() {
  if (edgeopt) return edgeopt;
  try {
    require('tsx/cjs/api').register();
    edgeopt = require(path.join(ROOT, 'lib', 'index.ts'));
  } catch (e) {
    if (e && e.code !== 'MODULE_NOT_FOUND') throw e;
    edgeopt = require(path.join(ROOT, 'dist', 'index.js'));
  }
  return edgeopt;
}

/** An optional package: the module, or null and a note saying why it is skipped. */
function optional(name) {
  try {
    return { mod: require(name), version: require(`${name}/package.json`).version };
  } catch (e) {
    return { mod: null, note: `${name} is not installed (${String(e.message).split('\n')[0]}); install the devDependencies to include it` };
  }
}

/** The same seeded generator training uses, so the synthetic model is the same in every run. */
const rng = (seed) => loadEdgeopt().seededRandom(seed);

/** A ReLU MLP with He-uniform weights from `seed` (PyTorch layout [out][in]); no activation after the last layer. */
function syntheticMlp(sizes, seed = 42) {
  const { denseGraph } = loadEdgeopt();
  const r = rng(seed);
  const layers = [];
  for (let i = 1; i < sizes.length; i++) {
    const k = sizes[i - 1],
      n = sizes[i];
    const bound = Math.sqrt(6 / k);
    const weight = new Float32Array(n * k);
    for (let j = 0; j < weight.length; j++) weight[j] = (r() * 2 - 1) * bound;
    const bias = new Float32Array(n);
    for (let j = 0; j < n; j++) bias[j] = (r() * 2 - 1) * 0.05;
    layers.push({ name: `fc${i}`, weight, bias, outFeatures: n, inFeatures: k, activation: i < sizes.length - 1 ? 'relu' : 'none' });
  }
  return denseGraph(`mlp-${sizes.join('-')}`, layers);
}

function randomRows(rows, features, seed = 7) {
  const r = rng(seed);
  const x = new Float32Array(rows * features);
  for (let i = 0; i < x.length; i++) x[i] = r();
  return x;
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summarize(samplesMs) {
  const s = Float64Array.from(samplesMs).sort();
  return {
    n: s.length,
    median: quantile(s, 0.5),
    p10: quantile(s, 0.1),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s[s.length - 1],
  };
}

const now = () => performance.now();

/**
 * Runs `work` (async) back to back for `durationMs` while a 1 ms timer re-arms
 * itself; returns how late that timer fired (ms past its due time).
 */
async function eventLoopLateness(work, durationMs) {
  const late = [];
  let stop = false;
  let timer;
  const arm = () => {
    const due = now() + 1;
    timer = setTimeout(() => {
      late.push(Math.max(0, now() - due));
      if (!stop) arm();
    }, 1);
  };
  arm();
  const end = now() + durationMs;
  let calls = 0;
  while (now() < end) {
    await work();
    calls++;
  }
  stop = true;
  await new Promise((r) => setTimeout(r, 3));
  clearTimeout(timer);
  return { calls, ...summarize(late) };
}

function cpuFlags() {
  try {
    const line = fs
      .readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    return line ? line.split(':')[1].trim().split(/\s+/) : [];
  } catch {
    return [];
  }
}

/** Where and when a result was measured. */
function machine() {
  const flags = cpuFlags();
  const simd = flags.filter((f) => /^(sse4_2|avx|avx2|fma|f16c|avx512\w*|avx_vnni|amx\w*|asimd|asimddp|i8mm|sve\w*)$/.test(f));
  const { backendInfo } = loadEdgeopt();
  let git = null;
  try {
    git = require('node:child_process')
      .execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    /* not a git checkout */
  }
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0] ? os.cpus()[0].model : 'unknown',
    cores: os.cpus().length,
    simdFlags: simd,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    edgeopt: backendInfo(),
    commit: git,
  };
}

function writeResult(name, data) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 1)}\n`);
  return file;
}

function readResult(name) {
  const file = path.join(RESULTS_DIR, `${name}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
}

function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

module.exports = {
  ROOT,
  RESULTS_DIR,
  loadEdgeopt,
  optional,
  rng,
  syntheticMlp,
  randomRows,
  summarize,
  quantile,
  now,
  eventLoopLateness,
  machine,
  writeResult,
  readResult,
  round,
};
