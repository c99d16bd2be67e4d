#!/usr/bin/env bash
# Proves the install paths users get: prebuild, pack, then install the tarball
# into an empty folder with no compiler or make on PATH, and check that the
# prebuilt native binary loads (backendInfo().native === true) and the CLI runs;
# then install it with --build-from-source and check the compiled addon loads.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
npm run prebuild --silent
# The tarball ships linux-arm64 too (cross-built; see scripts/prebuild-arm64.sh).
[ -f prebuilds/linux-arm64/edgeopt.node ] || npm run prebuild:arm64 --silent
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
tar tzf "$work/$tarball" > "$work/contents"  # a file, not a pipe: grep -q would SIGPIPE tar under pipefail
for p in linux-x64 linux-arm64; do
  grep -q "^package/prebuilds/$p/edgeopt.node$" "$work/contents" || { echo "pack-test: no prebuilds/$p in $tarball"; exit 1; }
done

# A PATH with node and npm but no g++, c++, cc, gcc or make.
mkdir -p "$work/bin" "$work/app"
for tool in node npm npx sh bash env; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
cd "$work/app"
echo '{ "name": "pack-test", "version": "1.0.0", "private": true }' > package.json
PATH="$work/bin" npm install --no-audit --no-fund "$work/$tarball" > install.log 2>&1 || { cat install.log; exit 1; }
if PATH="$work/bin" command -v g++ >/dev/null || PATH="$work/bin" command -v make >/dev/null; then
  echo "pack-test: the compiler was not hidden"; exit 1
fi
info="$(PATH="$work/bin" npx --no-install edgeopt info --json)"
echo "installed from $tarball without a compiler: $info"
PATH="$work/bin" node -e '
  const info = require("edgeopt").backendInfo();
  if (!info.native) { console.error("pack-test: prebuilt binary did not load:", info.reason); process.exit(1); }
  import("edgeopt").then((m) => { if (m.backendInfo().kernel !== info.kernel) process.exit(1); console.log("pack-test: ok (require and import)"); });
'

# The other install path: no prebuild for the platform, so node-gyp-build compiles
# the package's own sources (binding.gyp and what it runs must be in the tarball).
mkdir -p "$work/src-app" && cd "$work/src-app"
echo '{ "name": "pack-test-source", "version": "1.0.0", "private": true }' > package.json
npm install --no-audit --no-fund --build-from-source "$work/$tarball" > install.log 2>&1 || { cat install.log; exit 1; }
[ -f node_modules/edgeopt/build/Release/edgeopt.node ] || { cat install.log; echo "pack-test: no source build"; exit 1; }
node -e '
  const info = require("edgeopt").backendInfo();
  if (!info.native) { console.error("pack-test: the source build did not load:", info.reason); process.exit(1); }
  console.log("pack-test: ok (built from source:", info.kernel + ")");
'
