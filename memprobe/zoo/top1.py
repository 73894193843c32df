"""ImageNet top-1 of a network on a labelled stimulus set, e.g. ``imagenet_sample`` (1,000 images, one per
class, label = class index 0–999). Those are likely training images, so the numbers are inflated: they tell
real weights from random ones and right preprocessing from wrong, they do not rank models."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from memprobe import config


def imagenet_logits(network, stimuli, transform, batch_size: int = 25, progress: bool = True) -> torch.Tensor:
    """The network's outputs (images × classes, on the CPU) for every stimulus, in ``stimuli.ids`` order."""
    device = config.module_device(network)
    ids = stimuli.ids
    chunks = []
    for start in tqdm(range(0, len(ids), batch_size), desc=stimuli.name, unit="batch", disable=not progress):
        batch = torch.stack([transform(stimuli.open(i)) for i in ids[start : start + batch_size]])
        with torch.inference_mode():
            chunks.append(network(batch.to(device)).cpu())
    return torch.cat(chunks)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 and top-5 accuracy in percent, and how many distinct classes the network predicts at all."""
    top5 = logits.topk(5, dim=1).indices
    return {
        "top1": (top5[:, 0] == labels).float().mean().item() * 100,
        "top5": (top5 == labels[:, None]).any(dim=1).float().mean().item() * 100,
        "distinct_predicted_classes": int(top5[:, 0].unique().numel()),
    }


def labels_of(stimuli) -> torch.Tensor:
    return torch.tensor(stimuli.table["label"].to_numpy())


def measure_top1(model, stimuli, batch_size: int = 25, progress: bool = True) -> dict[str, float]:
    """:func:`accuracy` of a zoo ``LoadedModel`` with its own preprocessing on labelled ``stimuli``."""
    logits = imagenet_logits(model.network, stimuli, model.preprocessing.transform(), batch_size, progress)
    return accuracy(logits, labels_of(stimuli))
