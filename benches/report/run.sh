#!/usr/bin/env bash
# Builds the memlens wheel (release) into a venv under $CARGO_TARGET_DIR with memray beside it,
# then runs benches/report/bench.py. Usage: bash benches/report/run.sh [bench.py args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
python=$(ls -d /root/.pyenv/versions/3.11.*/bin/python3 | sort -V | tail -n1)
venv="$CARGO_TARGET_DIR/venvs/bench-report"
wheels="$CARGO_TARGET_DIR/bench-wheels"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.7,<2" memray
if [ -z "${SKIP_WHEEL:-}" ]; then
  rm -rf "$wheels"
  "$venv/bin/python" -m maturin build --release --quiet --out "$wheels" --interpreter "$venv/bin/python"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/memlens-*.whl
"$venv/bin/python" benches/report/bench.py --python "$venv/bin/python" "$@"
