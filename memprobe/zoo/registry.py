"""The model registry: identifiers → ModelSpec, and ``load_model``.

Identifiers are ``<family>:<name>``: ``torchvision:resnet50``, ``timm:<any timm name>``,
``pretrainedmodels:dpn92``, ``cornet:S``, ``efficientnet:b0``, ``efficientnet_lite:b0``,
``tflite:<registered name or .tflite path>``, ``onnx:<.onnx path>``, plus ``resmem`` (the full ResMem
memorability model) and ``resmem:resnet152`` (its backbone). Named sets (``paper64``, ``offline``) come
from ``model_set(name)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable
from pathlib import Path

import torch

from memprobe import config
from memprobe.errors import ModelError
from memprobe.zoo import cornet, efficientnet_lite, onnx_source, sources, tflite
from memprobe.zoo.paper64 import PAPER64
from memprobe.zoo.spec import LoadedModel, ModelSpec
from memprobe.zoo.weights import file_digest, load_state_dict, require


def _offline_set() -> list[str]:
    """The real ImageNet-trained networks that install without internet access: the TFLite files of the
    data folder, the EfficientNet-Lite packages and ResMem's backbone."""
    return (
        [f"tflite:{name}" for name in tflite.TFLITE_NAMES]
        + [f"efficientnet_lite:{name}" for name in efficientnet_lite.EFFICIENTNET_LITE_VARIANTS]
        + ["resmem:resnet152"]
    )


MODEL_SETS: dict[str, Callable[[], list[str]]] = {
    "paper64": lambda: [entry.identifier for entry in PAPER64],
    "offline": _offline_set,
}
_PAPER_ENTRIES = {entry.identifier: entry for entry in PAPER64}

_FAMILIES = {
    "torchvision": sources.torchvision_spec,
    "timm": sources.timm_spec,
    "pretrainedmodels": sources.pretrainedmodels_spec,
    "cornet": cornet.cornet_spec,
    "efficientnet": sources.efficientnet_spec,
    "efficientnet_lite": efficientnet_lite.efficientnet_lite_spec,
    "tflite": tflite.tflite_spec,
    "onnx": onnx_source.onnx_spec,
}


def _registered() -> list[str]:
    """Every fixed identifier (timm's are resolved on demand; see ``list_models``)."""
    return (
        [f"torchvision:{name}" for name in sources.torchvision_names()]
        + [f"pretrainedmodels:{name}" for name in sources.pretrainedmodels_names()]
        + [f"cornet:{name}" for name in cornet.CORNET_VARIANTS]
        + [f"efficientnet:{name}" for name in sources.EFFICIENTNET_VARIANTS]
        + [f"efficientnet_lite:{name}" for name in efficientnet_lite.EFFICIENTNET_LITE_VARIANTS]
        + [f"tflite:{name}" for name in tflite.TFLITE_NAMES]
        + ["resmem", "resmem:resnet152"]
    )


def list_models(pattern: str = "*") -> list[str]:
    """Identifiers matching the fnmatch ``pattern``. timm's ~1,000 architectures are listed only by
    patterns that start with ``timm:`` (e.g. ``timm:resnet*``); any timm name loads either way."""
    if pattern.startswith("timm:"):
        return [f"timm:{name}" for name in sources.timm_names(pattern.removeprefix("timm:"))]
    return [identifier for identifier in _registered() if fnmatch.fnmatchcase(identifier, pattern)]


def model_set(name: str) -> list[str]:
    """The identifiers of a named set: ``paper64`` (the 64 CNNs of Harada & Sakai's Table S1), ``offline``
    (every real ImageNet network that needs no download)."""
    if name not in MODEL_SETS:
        raise ModelError(f"unknown model set {name!r}; known sets: {', '.join(sorted(MODEL_SETS))}")
    return MODEL_SETS[name]()


def get_spec(identifier: str) -> ModelSpec:
    """The registry entry of ``identifier``; a ModelError suggesting close names when there is none."""
    family, _, name = identifier.partition(":")
    try:
        if family == "resmem":
            spec = sources.resmem_spec(identifier)
        elif family in _FAMILIES and name:
            spec = _FAMILIES[family](name)
        else:
            raise KeyError(identifier)
    except KeyError:
        raise ModelError(_unknown_message(identifier)) from None
    paper = _PAPER_ENTRIES.get(identifier)
    if paper is not None:
        spec = dataclasses.replace(
            spec, paper_name=paper.paper_name, top1=paper.top1, top1_source=paper.top1_source
        )
    return spec


def _unknown_message(identifier: str) -> str:
    candidates = _registered() + [f"timm:{name}" for name in sources.timm_names()]
    close = difflib.get_close_matches(identifier, candidates, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (
        f"unknown model {identifier!r}.{hint} Identifiers look like torchvision:resnet50, timm:<timm name>, "
        "pretrainedmodels:dpn92, cornet:S, efficientnet:b0, efficientnet_lite:b0, tflite:<name or .tflite "
        "path>, onnx:<.onnx path>, resmem; list them with `memprobe models`."
    )


def load_model(
    identifier: str, weights: str | Path = "pretrained", seed: int = 0, download: bool | None = None
) -> LoadedModel:
    """Build ``identifier`` in eval mode.

    ``weights``: ``"pretrained"`` (from the local caches; a file missing there is downloaded into them
    first when ``download``, by default unless offline (``config.offline()``), and is otherwise a ModelError
    naming the file and how to get it), ``"random"`` (initialised under ``torch.manual_seed(seed)``; the
    global RNG is left as it was), or a path to a state-dict file.
    """
    spec = get_spec(identifier)
    if weights == "pretrained":
        if download is None:
            download = not config.offline()
        path = require(spec.weights, identifier, download=download)
        network = spec.builder(True)
        weights_id = file_digest(path)
    elif weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = spec.builder(False)
        weights_id = f"random-seed{seed}"
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(
                f"weights {str(weights)!r} for {identifier}: no such file. Give 'pretrained', 'random' or "
                "the path of a state-dict file."
            )
        network = spec.builder(False)
        try:
            network.load_state_dict(load_state_dict(path))
        except RuntimeError as error:
            raise ModelError(f"weights file {path} does not fit {identifier}: {error}") from error
        weights_id = file_digest(path)
    return LoadedModel(identifier, network.eval(), spec.preprocessing, weights_id, spec)
