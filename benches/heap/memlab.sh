#!/bin/sh
# Installs MemLab (from npm, without a browser) into target-heap/memlab and runs the test that
# opens memlens's .heapsnapshot export with it. Other tests skip it loudly when MemLab is absent.
set -eu
cd "$(dirname "$0")/../.."
dir="${MEMLENS_MEMLAB_DIR:-$PWD/target-heap/memlab}"
if [ ! -d "$dir/node_modules/@memlab/heap-analysis" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm init -y >/dev/null && PUPPETEER_SKIP_DOWNLOAD=1 npm install memlab)
fi
export MEMLENS_MEMLAB_DIR="$dir"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-heap}"
exec cargo test -p memlens-heap --test heapsnapshot -- --nocapture
