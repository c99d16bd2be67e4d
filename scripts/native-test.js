#!/usr/bin/env node
// `npm run test:native`: the native unit tests (native/test, plain C++, no Node)
// built twice with CMake and run with ctest:
//   1. build-native/          -DEDGEOPT_SANITIZE=ON (AddressSanitizer + UBSan)
//   2. build-native-release/  Release, as shipped (-O3 code paths differ)
// On x86-64 each build also has the emulated x86 tables (the same kernel
// sources against SIMDe and an AMX tile emulation, native/test/emulate), so
// every table is tested whatever this CPU lacks (needs libsimde-dev, which
// .ci/run installs). Then checks the Release objects for ISA
// portability: per kernel file, only the instruction classes of its ISA
// (AVX/VEX, AVX-512/EVEX, AMX), none anywhere else, and none in the table
// getters that baseline code calls: the binary must load on any x86-64 CPU.
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
  run('cmake', ['-S', root, '-B', build, ...cmakeArgs, ...emulatedArgs()]);
  run('cmake', ['--build', build, '--', `-j${jobs}`]);
  run('ctest', ['--test-dir', build, '--output-on-failure'], { env: { ...process.env, ...env } });
  return build;
}

// SIMDe (header-only, Debian libsimde-dev; .ci/run installs it): CMake refuses
// to configure without it, saying so.
function emulatedArgs() {
  return process.arch === 'x64' ? ['-DEDGEOPT_EMULATED_TESTS=ON'] : [];
}

// The instruction classes each kernel object may contain; every other object
// of the core must be baseline x86-64.
const ALLOWED = {
  'avx2.cc.o': ['avx'],
  'sparse_avx2.cc.o': ['avx'],
  'cnn_avx2.cc.o': ['avx'],
  'cnn_avx512.cc.o': ['avx', 'avx512'],
  'avxvnni.cc.o': ['avx'],
  'avx512.cc.o': ['avx', 'avx512'],
  'avx512vnni.cc.o': ['avx', 'avx512'],
  'amx.cc.o': ['avx', 'avx512', 'amx'],
};
const LEGACY_PREFIX = new Set(['66', 'f2', 'f3', '2e', '3e', '26', '64', '65', '36', '67', 'f0']);

// 'amx', 'avx512' (EVEX-encoded, or opmask/zmm), 'avx' (VEX-encoded) or null, from objdump's bytes and text.
function instructionClass(bytes, text) {
  const words = text.trim().split(/\s+/);
  const mnemonic = words[0].startsWith('{') ? words[1] : words[0];
  if (/^(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilezero|tilerelease|tdp\w+)$/.test(mnemonic)) return 'amx';
  const opcode = bytes.find((b) => !LEGACY_PREFIX.has(b));
  if (opcode === '62' || /^k[a-z]/.test(mnemonic) || /%(zmm|k[0-7]\b)/.test(text)) return 'avx512';
  if (opcode === 'c4' || opcode === 'c5' || /^v[a-z]/.test(mnemonic)) return 'avx';
  return null;
}

// Function name -> the instruction classes it uses.
function isaUse(object) {
  const r = spawnSync('objdump', ['-d', '-C', object], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`objdump failed on ${object}`);
  const found = new Map();
  let fn = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) fn = head[1];
    const fields = line.split('\t');
    if (!fn || fields.length < 3 || !/^\s*[0-9a-f]+:$/.test(fields[0])) continue;
    const cls = instructionClass(fields[1].trim().split(/\s+/), fields[2]);
    if (!cls) continue;
    if (!found.has(fn)) found.set(fn, new Set());
    found.get(fn).add(cls);
  }
  return found;
}

function checkPortability(build) {
  if (process.arch !== 'x64') return console.log('portability check: x86-64 only, skipped');
  if (spawnSync('objdump', ['--version']).status !== 0) return console.log('portability check: no objdump, skipped');
  // The objects of the core's sources (a build dir may hold stale ones of removed files).
  const core = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8')).core;
  const objects = core.map((src) => path.join(build, 'CMakeFiles', 'edgeopt_core.dir', `${src}.o`));
  let bad = 0;
  const seen = new Set();
  for (const o of objects) {
    const name = path.basename(o);
    const allowed = ALLOWED[name] || [];
    for (const [fn, classes] of isaUse(o)) {
      for (const cls of classes) seen.add(`${name}:${cls}`);
      const getter = /_kernels\(\)|make_table|_with_int8/.test(fn); // what baseline code calls
      const wrong = [...classes].filter((c) => getter || !allowed.includes(c));
      if (wrong.length)
        console.error(`portability: ${name}: ${fn} uses ${wrong.join('+')} but ${getter ? 'baseline code calls it' : `${name} may not`}`);
      bad += wrong.length > 0;
    }
  }
  if (bad) process.exit(1);
  // The check must see what it checks: each ISA file's own class.
  for (const [name, classes] of Object.entries(ALLOWED))
    if (!seen.has(`${name}:${classes[classes.length - 1]}`)) {
      console.error(`portability: found no ${classes[classes.length - 1]} instructions in ${name}: is the classifier broken?`);
      process.exit(1);
    }
  console.log(`portability check: ${objects.length} objects; AVX, AVX-512 and AMX only inside their ISA files' kernels`);
}

buildAndTest('build-native', ['-DEDGEOPT_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
});
const release = buildAndTest('build-native-release', ['-DEDGEOPT_SANITIZE=OFF', '-DCMAKE_BUILD_TYPE=Release'], {});
checkPortability(release);
console.log('native tests passed');
