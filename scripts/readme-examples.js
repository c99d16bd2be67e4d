#!/usr/bin/env node
// README code blocks are the files in examples/, verbatim: a block preceded by
// `<!-- example: examples/<file> -->` must equal that file. `--write` copies the files into the
// README; the default checks and exits non-zero on any difference or on a js/ts block without a
// marker (test/examples.test.ts runs the check and every example).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const readmePath = path.join(root, 'README.md');
const BLOCK = /(<!-- example: (examples\/[^ ]+) -->\n```[a-z]*\n)([\s\S]*?)```/g;
const CODE_LANGS = /^```(js|mjs|cjs|ts|mts|javascript|typescript)\s*$/;

/** Problems in the README (empty when it agrees with examples/). */
function check(readme) {
  const problems = [];
  const marked = new Set();
  for (const m of readme.matchAll(BLOCK)) {
    const file = path.join(root, m[2]);
    marked.add(m.index + m[1].indexOf('```'));
    if (!fs.existsSync(file)) problems.push(`${m[2]}: no such example file`);
    else if (fs.readFileSync(file, 'utf8') !== m[3])
      problems.push(`${m[2]}: the README block differs from the file (run node scripts/readme-examples.js --write)`);
  }
  let offset = 0;
  for (const line of readme.split('\n')) {
    if (CODE_LANGS.test(line) && !marked.has(offset))
      problems.push(
        `README line ${readme.slice(0, offset).split('\n').length}: a ${line} block with no <!-- example: examples/... --> marker`,
      );
    offset += line.length + 1;
  }
  return problems;
}

function write(readme) {
  return readme.replace(BLOCK, (_, head, file) => head + fs.readFileSync(path.join(root, file), 'utf8') + '```');
}

if (require.main === module) {
  const readme = fs.readFileSync(readmePath, 'utf8');
  if (process.argv.includes('--write')) fs.writeFileSync(readmePath, write(readme));
  const problems = check(fs.readFileSync(readmePath, 'utf8'));
  for (const p of problems) console.error(`readme-examples: ${p}`);
  process.exit(problems.length ? 1 : 0);
}

module.exports = { check, examplesIn: (readme) => [...readme.matchAll(BLOCK)].map((m) => m[2]) };
