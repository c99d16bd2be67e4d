// `npm run bench -- large-batch [--rows 200000] [--json]`: one async call on a huge batch of
// the bundled MNIST MLP (fp32, 784 inputs), two ways, each in its own process so RSS is its own:
//   engine   engine.infer(): the input snapshotted once, then streamed in blocks through libuv
//   single   the native Program's run() on the whole batch at once (one libuv job: the input
//            copied on the calling thread, outputs written into the result arrays)
// Per way: wall time, extra RSS over the process with its input allocated (peak, from
// getrusage), and the longest the event loop went without a turn (a setImmediate chain).
// Needs the TypeScript build (npm run build:ts) and the native addon.
'use strict';
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

async function child(way, rows) {
  const eo = require(path.join(root, 'dist', 'index.js'));
  const graph = eo.defaultModel();
  const x = new Float32Array(rows * 784);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 255) / 255;
  let run;
  if (way === 'engine') {
    const engine = new eo.EdgeInferenceEngine({ device: 'cpu' });
    engine.loadModelSync('m', graph);
    run = () => engine.infer('m', { data: x, shape: [rows, 784] }).then((r) => r.data);
  } else {
    const addon = require(path.join(root, 'dist', 'backends', 'native', 'addon.js')).loadAddon().addon;
    const program = new addon.Program(eo.lowerGraph(graph));
    run = () => program.run([x], rows).then((ys) => ys[0]);
  }
  const peak0 = process.resourceUsage().maxRSS / 1024;
  const rss0 = process.memoryUsage().rss / 2 ** 20;
  let last = performance.now();
  let maxGap = 0;
  let turning = true;
  const turn = () => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    if (turning) setImmediate(turn);
  };
  setImmediate(turn);
  const t0 = performance.now();
  last = t0;
  const y = await run();
  const ms = performance.now() - t0;
  turning = false;
  turn();
  const peakMb = process.resourceUsage().maxRSS / 1024 - Math.max(peak0, rss0);
  process.stdout.write(JSON.stringify({ way, rows, ms, extraPeakMb: peakMb, maxLoopGapMs: maxGap, y0: y[0] }));
}

async function run(argv) {
  if (argv[0] === '--child') return child(argv[1], Number(argv[2]));
  const rowsAt = argv.indexOf('--rows');
  const rows = rowsAt >= 0 ? Number(argv[rowsAt + 1]) : 200_000;
  const results = [];
  for (const way of ['engine', 'single']) {
    const r = spawnSync(process.execPath, [__filename, '--child', way, String(rows)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`${way}: ${r.stderr}`);
    results.push(JSON.parse(r.stdout));
  }
  if (results[0].y0 !== results[1].y0) throw new Error(`the two ways disagree: ${results[0].y0} vs ${results[1].y0}`);
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  if (argv.includes('--json')) return console.log(JSON.stringify({ load, input: rows * 784 * 4, results }));
  console.log(`${rows} rows x 784 float32 (${((rows * 784 * 4) / 2 ** 20).toFixed(0)} MiB input); load average ${load}`);
  for (const r of results)
    console.log(
      `${r.way.padEnd(7)} ${r.ms.toFixed(0).padStart(6)} ms   +${r.extraPeakMb.toFixed(0).padStart(5)} MB peak RSS   ` +
        `longest event-loop stall ${r.maxLoopGapMs.toFixed(1)} ms`,
    );
}

module.exports = { run };
if (require.main === module) run(process.argv.slice(2));
