#!/usr/bin/env node
// `npm run bench -- <name> [args...]`: runs bench/<name>.js, whose module
// exports `async function run(argv)`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [name, ...argv] = process.argv.slice(2);
  const available = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && f !== 'index.js')
    .map((f) => f.slice(0, -3));
  if (!name || !available.includes(name)) {
    console.error(`usage: npm run bench -- <${available.join('|')}> [--json]`);
    process.exit(2);
  }
  await require(path.join(__dirname, `${name}.js`)).run(argv);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
