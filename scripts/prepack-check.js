#!/usr/bin/env node
// `prepack` (runs before `npm pack` / `npm publish`): refuses to pack a tarball without the
// prebuilt binaries users install (prebuilds/linux-x64 and linux-arm64), or with binaries older
// than a native source (a stale prebuild would ship yesterday's kernels).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const PLATFORMS = { 'linux-x64': 'npm run prebuild', 'linux-arm64': 'npm run prebuild:arm64' };

function newestSource(dir) {
  let newest = { file: '', mtime: 0 };
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const n = e.isDirectory() ? newestSource(p) : { file: p, mtime: fs.statSync(p).mtimeMs };
    if (n.mtime > newest.mtime) newest = n;
  }
  return newest;
}

const source = newestSource(path.join(root, 'native'));
const problems = [];
for (const [platform, command] of Object.entries(PLATFORMS)) {
  const binary = path.join(root, 'prebuilds', platform, 'edgeopt.node');
  if (!fs.existsSync(binary)) problems.push(`prebuilds/${platform}/edgeopt.node is missing: run \`${command}\``);
  else if (fs.statSync(binary).mtimeMs < source.mtime)
    problems.push(`prebuilds/${platform}/edgeopt.node is older than ${path.relative(root, source.file)}: run \`${command}\``);
}
if (problems.length) {
  console.error(`prepack: refusing to pack a tarball users could not install without a compiler:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
