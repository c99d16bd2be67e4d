#!/usr/bin/env node
// Prints native source files of the given groups (from native/sources.json), space separated.
// binding.gyp calls it; CMakeLists.txt reads the same JSON directly.
const list = require('../native/sources.json');
const groups = process.argv.slice(2);
process.stdout.write(groups.flatMap((g) => list[g]).join(' '));
