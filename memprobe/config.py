"""Paths and device choice, read from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from memprobe.errors import DataError, MemprobeError

if TYPE_CHECKING:
    import torch


def data_root(required: bool = True) -> Path:
    """The data folder: ``$MEMPROBE_DATA``, else ``~/.cache/memprobe/data`` (see ``memprobe data list``).

    ``required``: a ``$MEMPROBE_DATA`` that is not a folder is an error, so that a typo does not send data
    sets fetched on first use somewhere unexpected. The default folder is created by the first fetch."""
    value = os.environ.get("MEMPROBE_DATA")
    if not value:
        return Path.home() / ".cache" / "memprobe" / "data"
    root = Path(value).expanduser().resolve()
    if required and not root.is_dir():
        raise DataError(f"MEMPROBE_DATA={value} is not a directory. Create it or point it at your data.")
    return root


def offline() -> bool:
    """Whether downloads are off: ``$MEMPROBE_OFFLINE`` or ``$HF_HUB_OFFLINE`` is 1, true, yes or on
    (``memprobe --offline`` sets the first). Offline, missing weights and data sets are an error that
    says how to get them, instead of being downloaded on first use."""
    return any(
        os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")
        for variable in ("MEMPROBE_OFFLINE", "HF_HUB_OFFLINE")
    )


def cache_root() -> Path:
    """Where activations, fitted reducers and derived files go: ``$MEMPROBE_CACHE`` or ~/.cache/memprobe."""
    value = os.environ.get("MEMPROBE_CACHE")
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "memprobe"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def device(preferred: str | None = None) -> str:
    """The argument or ``$MEMPROBE_DEVICE`` if given (checked to exist here), else CUDA when present."""
    import torch

    choice = preferred or os.environ.get("MEMPROBE_DEVICE")
    if not choice:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(choice)
    except RuntimeError as error:
        raise MemprobeError(f"device {choice!r} is not a torch device; use cpu, cuda or cuda:N") from error
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise MemprobeError(f"device {choice!r}: torch sees {torch.cuda.device_count()} CUDA device(s) on "
                            "this machine; use --device cpu (or $MEMPROBE_DEVICE), or run on a GPU node")
    return choice


def module_device(network) -> torch.device:
    """Where a network's parameters (else buffers) are; CPU for one that has neither."""
    import torch

    tensor = next(network.parameters(), None)
    if tensor is None:
        tensor = next(network.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device
