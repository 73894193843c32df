"""The TensorFlow Lite interpreter's logits for a memprobe ``tflite:`` network, through perf/tflite_peer.py
in the side environment ``.venv-litert`` (made by scripts/setup_test_env.sh)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
LITERT_PYTHON = REPO / ".venv-litert" / "bin" / "python"
PEER = REPO / "perf" / "tflite_peer.py"


def interpreter_logits(network, images: torch.Tensor, as_float: bool) -> np.ndarray:
    """The interpreter's values of the tensor ``network`` returns, for the NCHW ``images`` (given to the
    interpreter in the file's own layout), in memprobe's class order. ``as_float``: float activations
    (the peer's ``--float``); otherwise the file as shipped, its input quantised by the peer."""
    assert LITERT_PYTHON.is_file(), "run scripts/setup_test_env.sh to create .venv-litert"
    batch = images.numpy()
    if network.input_channels_last:
        batch = batch.transpose(0, 2, 3, 1)
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "inputs.npy", Path(folder) / "outputs.npy"
        np.save(inputs, np.ascontiguousarray(batch, dtype=np.float32))
        command = [str(LITERT_PYTHON), str(PEER), network.source, str(inputs), str(outputs),
                   "--tensor", str(network.output_tensor)] + (["--float"] if as_float else [])
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        logits = np.load(outputs).reshape(len(batch), -1)
    return logits[:, 1:] if network.drops_background else logits
