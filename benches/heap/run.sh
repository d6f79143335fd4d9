#!/bin/sh
# Times the offline heap analysis on synthetic Python-shaped heaps (see
# crates/memlens-heap/examples/bench_dominators.rs): full analysis of 1M and 5M objects, and
# Semi-NCA dominators of a 10M-object heap. Extra arguments are passed on (sizes, --dominators N).
set -eu
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-heap}"
exec cargo run --quiet --release -p memlens-heap --example bench_dominators -- "$@"
