#!/usr/bin/env node
// Prints the commands of the README's first "Quick start" sh block, comments removed, one per
// line: .ci/run runs exactly these, so CI breaks when the README's promise breaks.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Quick start'));
const block = /```sh\n([\s\S]*?)```/.exec(section);
if (!block) {
  console.error('readme-quickstart: no sh block under "## Quick start"');
  process.exit(1);
}
const commands = block[1]
  .split('\n')
  .map((l) => l.replace(/\s+#.*$/, '').trim())
  .filter(Boolean);
console.log(commands.join('\n'));
