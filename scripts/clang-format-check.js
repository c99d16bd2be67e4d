#!/usr/bin/env node
// Checks (or with --fix, applies) .clang-format on native/**/*.{cc,h}. Skips with a
// note when clang-format is not installed (Debian: apt install clang-format).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const fix = process.argv.includes('--fix');

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(cc|h)$/.test(e.name) ? [p] : [];
  });
}

const probe = spawnSync('clang-format', ['--version'], { encoding: 'utf8' });
if (probe.error) {
  console.log('clang-format-check: clang-format is not installed; native sources not checked');
  process.exit(0);
}
const files = sources(path.join(root, 'native'));
const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
const r = spawnSync('clang-format', args, { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
