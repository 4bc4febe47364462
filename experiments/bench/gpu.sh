#!/usr/bin/env bash
# `make bench-gpu [SIZE=ltx2b|tiny] [PY=python3]`: every GPU check in one call, then the gpu test tier.
#
# Runs from a copy of the repository on a machine without a package registry: the packages its image lacks come
# as wheels in .whl/ (`make gpu-wheels` here) and are installed with --no-index into a scratch folder; readlit runs
# from src/ (no editable install). Writes experiments/bench/gpu_<SIZE>.json and .md (BENCH_OUT=... elsewhere) and,
# when $OUT is set (the lent machine's return folder), copies them and the test log there. SIZE=tiny runs on a CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
SIZE="${SIZE:-ltx2b}"
BENCH_OUT="${BENCH_OUT:-experiments/bench}"
if [ -z "${PY:-}" ] || ! command -v "$PY" >/dev/null; then  # make's default PY is .venv/bin/python
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/readlit-site \
    .whl/*.whl || { echo "error: installing the wheels in .whl/ failed" >&2; exit 2; }
  export PYTHONPATH="/tmp/readlit-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
mkdir -p "$BENCH_OUT"
status=0
"$PY" -m readlit.bench gpu --size "$SIZE" --out "$BENCH_OUT" || status=$?
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  "$PY" -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$BENCH_OUT/gpu_tests_$SIZE.log"
  test "${PIPESTATUS[0]}" -eq 0 || status=1
else
  echo "no CUDA here: the gpu test tier would only be skipped, so it is not run"
fi
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
  cp "$BENCH_OUT/gpu_$SIZE.json" "$BENCH_OUT/gpu_$SIZE.md" "$OUT"/ 2>/dev/null
  cp "$BENCH_OUT/gpu_tests_$SIZE.log" "$OUT"/ 2>/dev/null
fi
exit $status
