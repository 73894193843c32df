"""Grad-CAM on a regression output: the heatmap falls where the score is decided."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from memprobe.finetune.data import FeatureScores
from memprobe.finetune.heatmap import grad_cam, save_heatmaps
from memprobe.finetune.recipes import AMNET
from memprobe.finetune.trainer import train_fold
from memprobe.zoo import LoadedModel, Preprocessing


def patch_images(n: int, seed: int):
    """Grey images with two noisy patches: the score is the brightness of the red one in the top-left
    quadrant; the green one in the bottom-right quadrant is a distractor of random brightness."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 3, 32, 32), 0.1, dtype=np.float32)
    targets = rng.random(n).astype(np.float32)
    distractors = rng.random(n).astype(np.float32)
    for image, target, distractor in zip(images, targets, distractors, strict=True):
        image[0, 4:12, 4:12] = 0.2 + 0.6 * target + 0.2 * rng.random((8, 8))
        image[1, 20:28, 20:28] = 0.2 + 0.6 * distractor + 0.2 * rng.random((8, 8))
    return images, targets


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1),
    )


@pytest.mark.slow
def test_heatmap_mass_falls_in_the_region_that_determines_the_score(tmp_path):
    images, targets = patch_images(96, seed=0)
    ids = [str(i) for i in range(96)]
    data = FeatureScores(images[:80], ids[:80], targets[:80])
    held_out = FeatureScores(images[80:], ids[80:], targets[80:])
    network = small_cnn()
    recipe = AMNET.replace(batch_size=16, max_epochs=15, patience=None, lr=3e-3)
    result = train_fold(network, data, held_out, held_out, recipe, tmp_path, progress=False)
    assert result.spearman > 0.8  # the network did learn the rule

    maps = grad_cam(network, torch.from_numpy(images[80:]), target_layer="3")
    assert maps.shape == (16, 32, 32)
    # Heat above each map's median (the grey background's level, 80% of the image) is the evidence.
    excess = np.clip(maps - np.median(maps, axis=(1, 2), keepdims=True), 0, None)
    top_left = excess[:, :16, :16].sum() / excess.sum()
    bottom_right = excess[:, 16:, 16:].sum() / excess.sum()
    assert top_left > 0.6 and top_left > 2 * bottom_right  # the distractor's quadrant gets far less

    preprocessing = Preprocessing(resize=32, crop=(32, 32), mean=None, std=None)
    path = tmp_path / "example.png"
    Image.fromarray((images[80].transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
    scorer = LoadedModel("tiny", network, preprocessing, "test", spec=None)
    written = save_heatmaps(scorer, [path], tmp_path / "maps")
    assert [p.name for p in written] == ["example_gradcam.png"]
    assert Image.open(written[0]).size == (32, 32)
