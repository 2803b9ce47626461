#!/usr/bin/env bash
# Installs ssmkit (editable) and its test tools into the current Python.
# An installed torch is kept as is (a CUDA build on a GPU machine); only where none is importable do we ask pip for
# the CPU build 2.13.0, which pip finds locally on the project's machines instead of downloading CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install -q torch==2.13.0
fi
# Triton: the GPU kernels' compiler, and on a CPU the interpreter the tests run those kernels through. A CUDA torch
# brings its own; only where none is importable do we add the version of the project's GPU machines.
if ! "$PY" -c "import triton" >/dev/null 2>&1; then
    "$PY" -m pip install -q triton==3.6.0 || echo "setup: triton not installed; the Triton kernel tests will be skipped"
fi
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "Running pip as the 'root' user" || true
"$PY" -c "import ssmkit" # fail loudly here rather than in the first test
