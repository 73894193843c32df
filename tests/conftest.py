"""Shared test setup: the real data folder and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MEMPROBE_DATA", str((REPO.parent / "shared" / "data").resolve()))
# Heavy, deterministic artefacts (e.g. real-network features) are shared across tests and runs.
os.environ.setdefault("MEMPROBE_CACHE", str(REPO / ".ci-cache"))
# Nothing downloads weights or data sets on first use unless a test turns it on (against 127.0.0.1 only).
os.environ.setdefault("MEMPROBE_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ["MEMPROBE_DATA"])
    if not (root / "SHA256SUMS").is_file():
        pytest.fail(f"MEMPROBE_DATA={root} does not hold the real data (no SHA256SUMS); tests need it")
    return root


@pytest.fixture(scope="module")
def two_torch_threads():
    """Torch on two threads for a test module, whatever other tests set (timings then compare)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)
