"""Real-network features of real V4 images for the PLS / neural-benchmark tests, computed once.

ResMem's ImageNet-initialised ResNet-152 (``ResMem(pretrained=True).features``, a torchvision
``resnet152``) or the same architecture with seeded random weights, run on one Cowley V4 session with
ResMem's preprocessing (Resize((256, 256)) → CenterCrop(227) → ToTensor); each block output is
global-average-pooled. Cached under ``$MEMPROBE_CACHE/tests/v4_features`` (atomic writes).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch
import xarray as xr

from memprobe.config import cache_root
from memprobe.data import load_dataset

SESSION = "210305"  # 400 images × 70 neurons: the smallest session, so the forward pass stays short
STAGES = ("layer1", "layer2", "layer3", "layer4")


def _network(weights: str) -> torch.nn.Module:
    if weights == "resmem":
        from resmem import ResMem

        return ResMem(pretrained=True).features.eval()
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet152(weights=None).eval()


def _forward_pooled(network, images: torch.Tensor, last_stage: str) -> dict[str, np.ndarray]:
    pooled = {}
    x = network.maxpool(network.relu(network.bn1(network.conv1(images))))
    for stage in STAGES[: STAGES.index(last_stage) + 1]:
        x = getattr(network, stage)(x)
        pooled[stage] = x.mean(dim=(2, 3)).numpy()
    return pooled


def v4_features(layer: str = "layer2", weights: str = "resmem", session: str = SESSION) -> xr.DataArray:
    """Global-average-pooled ``layer`` features (presentation × neuroid) of a Cowley session's images."""
    path = cache_root() / "tests" / "v4_features" / f"{weights}_{session}_{layer}.npz"
    stimuli = load_dataset("cowley_v4").session(session).stimuli
    ids = list(stimuli.table.index)
    if not path.is_file():
        from torchvision import transforms

        transform = transforms.Compose(
            [transforms.Resize((256, 256)), transforms.CenterCrop(227), transforms.ToTensor()]
        )
        network = _network(weights)
        batches: dict[str, list[np.ndarray]] = {}
        with torch.no_grad():
            for start in range(0, len(ids), 50):
                images = torch.stack([transform(stimuli.open(i)) for i in ids[start : start + 50]])
                for stage, values in _forward_pooled(network, images, layer).items():
                    batches.setdefault(stage, []).append(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stage, values in batches.items():  # every stage up to ``layer`` came for free
            target = path.with_name(f"{weights}_{session}_{stage}.npz")
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz")
            os.close(handle)
            np.savez(temporary, values=np.concatenate(values), ids=np.array(ids))
            os.replace(temporary, target)
    stored = np.load(path)
    assert list(stored["ids"]) == ids, f"{path} was computed for other images; delete it"
    values = stored["values"]
    coords = {"stimulus_id": ("presentation", ids), "neuroid_id": ("neuroid", np.arange(values.shape[1]))}
    return xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords)
