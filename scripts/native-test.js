#!/usr/bin/env node
// `npm run test:native`: the native unit tests (native/test, plain C++, no Node)
// built twice with CMake and run with ctest:
//   1. build-native/          -DEDGEOPT_SANITIZE=ON (AddressSanitizer + UBSan)
//   2. build-native-release/  Release, as shipped (-O3 code paths differ)
// then checks the Release objects for ISA portability: only native/kernels/<isa>.cc
// may contain AVX (VEX/EVEX) instructions, and never in the table getter that
// baseline code calls (the binary must load on any x86-64 CPU).
// Exits non-zero on the first failure. Uses at most 2 parallel compile jobs.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jobs = String(Math.max(1, Math.min(2, os.availableParallelism ? os.availableParallelism() : os.cpus().length)));

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    console.error(`native-test: ${cmd} exited with ${r.status ?? r.signal}`);
    process.exit(1);
  }
}

function buildAndTest(dir, cmakeArgs, env) {
  const build = path.join(root, dir);
  run('cmake', ['-S', root, '-B', build, ...cmakeArgs]);
  run('cmake', ['--build', build, '--', `-j${jobs}`]);
  run('ctest', ['--test-dir', build, '--output-on-failure'], { env: { ...process.env, ...env } });
  return build;
}

// Instructions needing AVX or later: VEX (v*) or EVEX/AMX (k*, t*) mnemonics.
const AVX_INSN = /^\s*[0-9a-f]+:\s+(v[a-z0-9]+|k(?:mov|and|or|xor|not|test|shift)[a-z]*|t(?:ile|dp)[a-z0-9]*)\s/;

function avxFunctions(object) {
  const r = spawnSync('objdump', ['-d', '--no-show-raw-insn', '-C', object], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`objdump failed on ${object}`);
  const found = new Set();
  let fn = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) fn = head[1];
    else if (fn && AVX_INSN.test(line)) found.add(fn);
  }
  return found;
}

function checkPortability(build) {
  if (process.arch !== 'x64') return console.log('portability check: x86-64 only, skipped');
  if (spawnSync('objdump', ['--version']).status !== 0) return console.log('portability check: no objdump, skipped');
  const objects = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.cc.o') && p.includes('edgeopt_core.dir')) objects.push(p);
    }
  };
  walk(path.join(build, 'CMakeFiles'));
  const isaFiles = new Set([
    'avx2.cc.o',
    'avx2_u8s8.cc.o',
    'sparse_avx2.cc.o',
    'cnn_avx2.cc.o',
    'requantize_avx2.cc.o',
    'avx512vnni.cc.o',
    'avxvnni.cc.o',
    'amx.cc.o',
  ]);
  let bad = 0;
  for (const o of objects) {
    const fns = avxFunctions(o);
    const name = path.basename(o);
    const offenders = isaFiles.has(name) ? [...fns].filter((f) => /_kernels\(\)$/.test(f)) : [...fns];
    for (const f of offenders) console.error(`portability: ${name}: ${f} uses AVX but baseline code calls it`);
    bad += offenders.length;
  }
  if (bad) process.exit(1);
  console.log(`portability check: ${objects.length} objects, AVX only inside target-attributed ISA kernels`);
}

buildAndTest('build-native', ['-DEDGEOPT_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
});
const release = buildAndTest('build-native-release', ['-DEDGEOPT_SANITIZE=OFF', '-DCMAKE_BUILD_TYPE=Release'], {});
checkPortability(release);
console.log('native tests passed');
