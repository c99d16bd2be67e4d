#!/usr/bin/env node
// `npm test`: builds the TypeScript, then runs the uvu suite once per backend
// configuration (simdjson-style): the whole suite on the default native
// kernels and on the pure-TS path (EDGEOPT_FORCE_TS=1), and the suites whose
// results depend on the kernel table once more per other native table this CPU
// runs (EDGEOPT_ISA). Ends with one "N passed, N failed" line.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const build = spawnSync(process.execPath, [path.join(__dirname, 'build-ts.js')], { stdio: 'inherit', cwd: root });
if (build.status !== 0) process.exit(build.status ?? 1);

function kernelTables() {
  try {
    return require(path.join(root, 'dist', 'index.js'))
      .backendInfo()
      .kernels.filter((k) => k !== 'ts');
  } catch {
    return [];
  }
}

const extra = process.argv.slice(2);
const ALL = '.*\\.test\\.ts$';
// Suites that run native kernels: the rest (file formats, CLI, federated...) do not change with EDGEOPT_ISA.
const KERNEL_SUITES =
  '(kernels|engine|optimizer|npu|sparse|onnx-export|cnn-fixtures|cnn-ops|cnn-onnx|cnn-optimizer|cnn-program|cnn-int8|batcher)\\.test\\.ts$';
const runs = [{ label: 'default backend', env: {}, pattern: ALL }];
const tables = kernelTables();
for (const t of tables.slice(0, -1)) runs.push({ label: `EDGEOPT_ISA=${t}`, env: { EDGEOPT_ISA: t }, pattern: KERNEL_SUITES });
runs.push({ label: 'EDGEOPT_FORCE_TS=1', env: { EDGEOPT_FORCE_TS: '1' }, pattern: ALL });

let passed = 0;
let failed = 0;
for (const run of runs) {
  console.log(`\n=== uvu: ${run.label} ===`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'node_modules', 'uvu', 'bin.js'), 'test', run.pattern, '--no-color', ...extra],
    {
      cwd: root,
      env: { ...process.env, ...run.env, FORCE_COLOR: '0' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  const total = Number(/Total:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  passed += ok;
  failed += total - ok;
  if (r.status !== 0 && total === ok) failed += 1; // crashed outside a test
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
