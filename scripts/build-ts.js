#!/usr/bin/env node
// Compiles lib/ to dist/ (CommonJS + .d.ts) and adds the ESM entry point:
// dist/index.mjs re-exports every named export, so `import` and `require` see the same API.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
const esm = `import cjs from './index.js';\nexport const { ${names.join(', ')} } = cjs;\nexport default cjs;\n`;
fs.writeFileSync(path.join(dist, 'index.mjs'), esm);
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './index.js';\n");
fs.chmodSync(path.join(dist, 'cli', 'index.js'), 0o755);
