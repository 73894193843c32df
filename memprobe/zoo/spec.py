"""What the registry knows about a model (ModelSpec) and what ``load_model`` hands back (LoadedModel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from memprobe.zoo.preprocessing import Preprocessing
from memprobe.zoo.weights import WeightsLocation


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    ``builder(pretrained)`` returns the network: with ``pretrained=False`` freshly initialised (the caller
    seeds torch), with ``pretrained=True`` loaded by its own library from the local file that
    ``weights.locate()`` has already found (``load_model`` fetches it first, so no library downloads).
    ``top1`` is the published ImageNet top-1 accuracy in percent, from ``top1_source``; None when
    there is none (e.g. ResMem, which predicts memorability).
    """

    identifier: str
    source: str
    builder: Callable[[bool], nn.Module]
    preprocessing: Preprocessing
    top1: float | None = None
    top1_source: str | None = None
    paper_name: str | None = None
    weights: WeightsLocation | None = None

    def weights_present(self) -> bool:
        return self.weights is not None and self.weights.locate() is not None


@dataclass
class LoadedModel:
    """A network in eval mode with the preprocessing it expects and an id of the weights it holds
    (sha256 prefix of the weights file, or ``random-seed<k>``)."""

    id: str
    network: nn.Module
    preprocessing: Preprocessing
    weights_id: str
    spec: ModelSpec
