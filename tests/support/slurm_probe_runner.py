"""A small but real sweep runner for the SLURM tests, independent of memprobe's sweep modules.

Two torchvision networks with seeded random weights, four layers each (global-average pooled), scored
on small seeded subsets of real data: LNSIM memorability (PLS → Spearman, 4-fold CV) and Cowley V4
session 210305 (PLS → median Pearson over neurons). Each (benchmark, layer) result is written
atomically under ``out`` and skipped when present, so a cancelled task resumes where it stopped;
``computed.log`` lists every score actually computed (the tests read it to prove nothing is redone).
``delay_s`` slows each layer down so that a test can cancel a task mid-run.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import torch
import torchvision
from PIL import Image
from scipy.stats import pearsonr, spearmanr
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from memprobe.atomic import write_text
from memprobe.errors import ModelError

MODELS = {
    "toy:resnet18": ("resnet18", ["layer1", "layer2", "layer3", "layer4"]),
    "toy:mobilenet_v3_small": ("mobilenet_v3_small", [f"features.{i}" for i in (2, 4, 8, 12)]),
}
BENCHMARKS = ("lnsim.memorability-pls", "cowley_v4.210305-pls")
IMAGE_SIZE = 96


def list_models(pattern: str = "*") -> list[str]:
    return fnmatch.filter(MODELS, pattern)


def list_benchmarks() -> list[str]:
    return list(BENCHMARKS)


def lnsim_scores() -> np.ndarray:
    """LNSIM memorability per image (image i + 1 at index i): both halves' hit rates over the 25 splits."""
    root = Path(os.environ["MEMPROBE_DATA"]) / "lnsim" / "Random_splits"
    halves = [scipy.io.loadmat(root / f"subject_hrs{h}.mat")[f"subject_hrs{h}"] for h in (1, 2)]
    return np.mean([half.mean(axis=0) for half in halves], axis=0)


def _stimuli(benchmark: str, subset: int, seed: int) -> tuple[list[Image.Image], np.ndarray]:
    """Images and targets (n,) or (n, neurons) for a seeded subset of the benchmark's real data."""
    root = Path(os.environ["MEMPROBE_DATA"])
    rng = np.random.default_rng(seed)
    if benchmark.startswith("lnsim"):
        scores = lnsim_scores()
        chosen = np.sort(rng.choice(len(scores), subset, replace=False))
        images = [Image.open(root / "lnsim/Image_data" / f"{i + 1:04d}.jpg").convert("RGB") for i in chosen]
        return images, scores[chosen]
    responses = np.load(root / "cowley_v4/responses_repeat_averaged/responses_210305.npy")
    chosen = np.sort(rng.choice(responses.shape[1], subset, replace=False))
    with zipfile.ZipFile(root / "cowley_v4/images/images_210305.zip") as archive:
        members = {Path(name).name: name for name in archive.namelist() if name.endswith(".jpg")}
        images = [Image.open(io.BytesIO(archive.read(members[f"image{i + 1:04d}.jpg"]))).convert("RGB")
                  for i in chosen]
    return images, responses[:, chosen].T


def _features(model: str, images: list[Image.Image], seed: int) -> dict[str, np.ndarray]:
    architecture, layers = MODELS[model]
    torch.manual_seed(seed)
    network = getattr(torchvision.models, architecture)(weights=None).eval()
    captured: dict[str, torch.Tensor] = {}
    modules = dict(network.named_modules())
    for layer in layers:
        modules[layer].register_forward_hook(
            lambda _m, _i, output, layer=layer: captured.__setitem__(layer, output.mean(dim=(2, 3)).clone()))
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)), torchvision.transforms.ToTensor()])
    with torch.no_grad():
        network(torch.stack([transform(image) for image in images]))
    return {layer: captured[layer].double().numpy() for layer in layers}


def _score(features: np.ndarray, targets: np.ndarray, memorability: bool) -> float:
    predictions = np.zeros(targets.shape)
    for train, test in KFold(4, shuffle=True, random_state=0).split(features):
        pls = PLSRegression(n_components=5, scale=False).fit(features[train], targets[train])
        predictions[test] = pls.predict(features[test]).reshape(predictions[test].shape)
    if memorability:
        return float(spearmanr(predictions, targets).statistic)
    return float(np.median([pearsonr(predictions[:, j], targets[:, j]).statistic
                            for j in range(targets.shape[1])]))


def run_sweep(model, out, benchmarks, weights, layers, reducer, subset, seed, delay_s=0.0,
              fail_for=None) -> pd.DataFrame:
    """``fail_for``: a model whose tasks fail with a memprobe error (for the tests of failing tasks)."""
    if model == fail_for:
        raise ModelError(f"{model}: made to fail")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the same arithmetic in every process, so tables compare exactly
    rows = []
    for benchmark in benchmarks:
        results = {layer: out / benchmark / f"{layer}.json" for layer in MODELS[model][1]}
        features = None
        for depth, (layer, path) in enumerate(results.items()):
            if not path.is_file():
                if features is None:
                    images, targets = _stimuli(benchmark, subset, seed)
                    features = _features(model, images, seed)
                score = _score(features[layer], targets, benchmark.startswith("lnsim"))
                time.sleep(delay_s)
                write_text(path, json.dumps({"raw": score}))
                with open(out / "computed.log", "a") as log:
                    log.write(f"{benchmark} {layer}\n")
            rows.append({"model": model, "weights": weights, "layer": layer, "relative_depth": depth / 3,
                         "benchmark": benchmark, "raw": json.loads(path.read_text())["raw"],
                         "reducer": reducer.partition(":")[0], "n_images": subset})
    return pd.DataFrame(rows)
