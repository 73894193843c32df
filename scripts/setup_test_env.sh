#!/usr/bin/env bash
# Side services and environments the test suite uses. Idempotent; each step says what it sets up.
set -euo pipefail
cd "$(dirname "$0")/.."
# Single-node SLURM on localhost (munge, slurmctld, slurmd) for the tests marked `slurm`.
bash scripts/setup_slurm.sh
# Brain-Score side environment for the tests marked `brainscore` (memprobe's scores vs brainscore_vision's
# `pls` metric). brainscore-vision pins numpy < 2 and an old xarray, so it gets its own venv, used only
# through perf/brainscore_peer.py in a subprocess. Reused when it already imports.
if ! .venv-brainscore/bin/python -c "import brainscore_vision" >/dev/null 2>&1; then
    python3 -m venv .venv-brainscore
    .venv-brainscore/bin/python -m pip install -q brainscore-vision==2.4.2
fi
# LiteRT side environment for the tests marked `litert` (memprobe's `tflite:` networks vs the TensorFlow Lite
# interpreter), used only through perf/tflite_peer.py in a subprocess so memprobe never imports the
# interpreter. Reused when it already imports.
if ! .venv-litert/bin/python -c "import ai_edge_litert.interpreter" >/dev/null 2>&1; then
    python3 -m venv .venv-litert
    .venv-litert/bin/python -m pip install -q ai-edge-litert==2.3.0
fi
