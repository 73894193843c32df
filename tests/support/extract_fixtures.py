"""Small models and image sets for the extraction, reducer and store tests (mechanics, not science)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision import transforms

from memprobe.data.stimuli import StimulusSet


@dataclass
class TinyPreprocessing:
    size: int = 32

    def transform(self):
        return transforms.Compose([transforms.Resize((self.size, self.size)), transforms.ToTensor()])

    def key(self) -> str:
        return f"resize{self.size}-totensor"


@dataclass
class FakeLoadedModel:
    """The fields of ``memprobe.zoo.LoadedModel`` that extraction uses."""

    network: torch.nn.Module
    id: str = "test:tiny"
    weights_id: str = "random-seed0"
    preprocessing: TinyPreprocessing = field(default_factory=TinyPreprocessing)


class CountingNet(torch.nn.Module):
    """conv → in-place ReLU → (block called twice: shared ReLU) → pool → fc; counts its forward calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(16, 5)
        self.forward_calls = 0

    def forward(self, x):
        self.forward_calls += 1
        x = self.relu(self.conv(x))
        x = self.relu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def tiny_model(network: torch.nn.Module | None = None, **fields) -> FakeLoadedModel:
    return FakeLoadedModel(network=(network or CountingNet()).eval(), **fields)


def image_set(folder: Path, n: int, name: str = "tiny", seed: int = 0) -> StimulusSet:
    """``n`` random RGB images of varying size written as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(20 + i % 7, 24 + i % 5, 3), dtype=np.uint8)
        path = folder / f"img{i:03d}.png"
        Image.fromarray(pixels).save(path)
        rows.append({"stimulus_id": f"s{i:03d}", "image": str(path)})
    return StimulusSet(name, pd.DataFrame(rows).set_index("stimulus_id"))


class TupleAndDictNet(torch.nn.Module):
    class Split(torch.nn.Module):
        def forward(self, x):
            return ("meta", x * 2, x)

    class AsDict(torch.nn.Module):
        def forward(self, x):
            return {"aux": x[:, :1], "out": x + 1}

    class Label(torch.nn.Module):
        def forward(self, x):
            return "no tensors here"

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.split = self.Split()
        self.as_dict = self.AsDict()
        self.label = self.Label()
        self.head = torch.nn.Linear(8, 3)  # 3 units < 24: skipped

    def forward(self, x):
        _, doubled, _ = self.split(self.conv(x))
        mapped = self.as_dict(doubled)["out"]
        self.label(mapped)
        return {"logits": self.head(mapped.mean((2, 3)))}  # not a tensor: fine, hooks do the work
