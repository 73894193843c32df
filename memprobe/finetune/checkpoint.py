"""Checkpoints that load with ``torch.load(weights_only=True)``: tensors and plain containers only.

A checkpoint holds the model, optimizer and scheduler states, every random number generator the
training loop draws from (torch, CUDA, numpy, Python, the DataLoader's generator), the epoch, the best
validation score, the early-stopping counter and a ``meta`` dict describing the architecture.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from memprobe.atomic import atomic_path
from memprobe.errors import ModelError

FORMAT = "memprobe-finetune/1"


def rng_state(generator: torch.Generator | None = None) -> dict:
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gauss": float(cached_gauss)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def restore_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gauss"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "loader" in state:
        generator.set_state(state["loader"])


def save_atomic(payload: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: Path) -> dict:
    """Load without unpickling arbitrary objects (safe for files from elsewhere)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(
            f"checkpoint {path} cannot be loaded safely (weights_only=True): {type(error).__name__}: "
            f"{str(error).splitlines()[0]}. Only memprobe fine-tuning checkpoints are supported."
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "model" not in payload:
        raise ModelError(f"{path} is not a memprobe fine-tuning checkpoint (format {FORMAT!r})")
    return payload


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """``load_state_dict`` with a readable summary of what differs when the architectures do not match."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} keys missing from the checkpoint (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[:3]})")
        raise ModelError(
            f"checkpoint {source} was saved from a different architecture than {type(model).__name__}: "
            + "; ".join(parts) + ". Load it with the model, head and blocks it was trained with."
        )
    model.load_state_dict(state)
