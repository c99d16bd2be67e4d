#!/usr/bin/env bash
# `npm run prebuild:arm64`: cross-builds prebuilds/linux-arm64/ on an x86-64
# Debian/Ubuntu host with the distribution's aarch64 cross compiler (installed
# with apt when missing).
#
# The build runs in a scratch copy of the native sources, so it never touches
# build/Release (the x64 addon other commands load). Node's headers are the
# local ones (nodedir): they are the same for every architecture, and N-API
# binaries do not depend on the Node version.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
triple=aarch64-linux-gnu

if ! command -v "$triple-g++" >/dev/null; then
  echo "prebuild-arm64: installing g++-$triple with apt"
  apt-get update -qq && apt-get install -y -qq "g++-$triple" >/dev/null
fi

nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "prebuild-arm64: no Node headers in $nodedir/include/node (set npm_config_nodedir)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$root/binding.gyp" "$root/package.json" "$root/native" "$work/"
mkdir -p "$work/scripts" && cp "$root/scripts/sources.js" "$work/scripts/"
ln -s "$root/node_modules" "$work/node_modules"

export CC="$triple-gcc" CXX="$triple-g++" LINK="$triple-g++" AR="$triple-ar"
export npm_config_nodedir="$nodedir" JOBS="${JOBS:-2}"
"$root/node_modules/.bin/prebuildify" --napi --strip --strip-bin "$triple-strip" --arch arm64 \
  --target node@20.17.0 --cwd "$work" --out "$root"

# The reference NPU plugin ships next to the addon (lib/backends/npu.ts looks there).
out="$root/prebuilds/linux-arm64"
"$triple-strip" --strip-all -o "$out/edgeopt_npu_ref.so" "$work/build/Release/edgeopt_npu_ref.so"
file "$out"/* | sed "s|$root/||"
