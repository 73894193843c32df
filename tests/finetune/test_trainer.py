"""Trainer mechanics on a tiny CNN and made-up data: learning, early stopping, exact resume, folds, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from memprobe.data.stimuli import StimulusSet
from memprobe.errors import DataError, ModelError
from memprobe.finetune.checkpoint import FORMAT, load_checkpoint, load_weights
from memprobe.finetune.data import FeatureScores, ImageScores, kfold_splits
from memprobe.finetune.recipes import PAPER
from memprobe.finetune.trainer import TrainingDiverged, train_fold, train_folds

RECIPE = PAPER.replace(lr=0.05, batch_size=8, max_epochs=6, patience=None)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="no CUDA device"))]


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(16, 1),
    )


def made_up_data(n: int = 64, seed: int = 0):
    """Noise images whose brightness level is the target (learnable by the tiny CNN)."""
    rng = np.random.default_rng(seed)
    targets = rng.random(n).astype(np.float32)
    images = (rng.random((n, 3, 8, 8)) * targets[:, None, None, None]).astype(np.float32)
    ids = [f"img{i:03d}" for i in range(n)]
    return ids, images, targets


def datasets():
    ids, images, targets = made_up_data()
    parts = [slice(0, 32), slice(32, 40), slice(40, 64)]
    return [FeatureScores(images[part], ids[part], targets[part]) for part in parts]


@pytest.mark.parametrize("device", DEVICES)
def test_loss_falls_and_the_model_learns(tmp_path, device):
    train, validation, test = datasets()
    result = train_fold(tiny_cnn(), train, validation, test, RECIPE.replace(max_epochs=15), tmp_path,
                        device=device, progress=False)
    history = load_checkpoint(tmp_path / "last.pt")["progress"]
    assert history["epoch"] == 15
    start = nn.functional.mse_loss(tiny_cnn()(torch.from_numpy(made_up_data()[1][:32])).squeeze(1),
                                   torch.from_numpy(made_up_data()[2][:32])).item()
    assert history["last_train_loss"] < start / 3
    assert result.spearman > 0.8


def test_early_stopping_triggers_after_patience_epochs_without_improvement(tmp_path):
    train, validation, test = datasets()
    frozen = RECIPE.replace(lr=0.0, patience=3, max_epochs=50)  # nothing changes: validation never improves
    result = train_fold(tiny_cnn(), train, validation, test, frozen, tmp_path, progress=False)
    assert result.epochs == 4 and result.best_epoch == 0
    progress = load_checkpoint(tmp_path / "last.pt")["progress"]
    assert progress["stopped"] and progress["stale"] == 3
    # a rerun of a stopped fold trains no further
    assert train_fold(tiny_cnn(), train, validation, test, frozen, tmp_path, progress=False).epochs == 4


class Interrupting(FeatureScores):
    """Raises KeyboardInterrupt (a kill) at the given item access, once."""

    def __init__(self, *args, kill_at: int):
        super().__init__(*args)
        self.calls, self.kill_at = 0, kill_at

    def __getitem__(self, index):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt
        return super().__getitem__(index)


@pytest.mark.parametrize("device", DEVICES)
def test_kill_and_resume_reproduces_the_uninterrupted_weights_bitwise(tmp_path, device):
    ids, images, targets = made_up_data()
    train, validation, test = datasets()
    recipe = RECIPE.replace(optimizer="adam", lr=0.01, max_epochs=6)
    uninterrupted = tiny_cnn()
    train_fold(uninterrupted, train, validation, test, recipe, tmp_path / "a", seed=3, device=device,
               progress=False)

    killed = Interrupting(images[:32], ids[:32], targets[:32], kill_at=32 * 3 + 13)  # during epoch 4
    with pytest.raises(KeyboardInterrupt):
        train_fold(tiny_cnn(), killed, validation, test, recipe, tmp_path / "b", seed=3, device=device,
                   progress=False)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["progress"]["epoch"] == 3
    torch.manual_seed(12345)  # a new process would start from other random states (dropout's too)
    torch.cuda.manual_seed_all(12345)
    np.random.seed(12345)
    resumed = tiny_cnn(seed=99)  # and from other initial weights: they must come from the checkpoint
    train_fold(resumed, train, validation, test, recipe, tmp_path / "b", seed=3, device=device,
               progress=False)

    expected, got = uninterrupted.state_dict(), resumed.state_dict()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_folds_do_not_leak_images_and_every_image_is_tested_once(tmp_path):
    ids, images, targets = made_up_data(60)
    folds = kfold_splits(ids, n_folds=5, seed=0)
    for fold in folds:
        assert not set(fold.train) & set(fold.validation)
        assert not (set(fold.train) | set(fold.validation)) & set(fold.test)
        assert len(fold.train) + len(fold.validation) + len(fold.test) == 60
    assert sorted(sum((f.test for f in folds), [])) == sorted(ids)

    rows = {sid: i for i, sid in enumerate(ids)}

    def make_dataset(subset, train):
        index = [rows[s] for s in subset]
        return FeatureScores(images[index], subset, targets[index])

    predictions, metrics = train_folds(folds, tiny_cnn, make_dataset, RECIPE.replace(max_epochs=2), tmp_path,
                                       progress=False)
    for fold in folds:
        assert set(predictions.loc[predictions["fold"] == fold.index, "stimulus_id"]) == set(fold.test)
    assert set(metrics["fold"]) == {"0", "1", "2", "3", "4", "mean", "overall"}
    assert (tmp_path / "predictions.csv").exists() and (tmp_path / "fold_4" / "best.pt").exists()


class TurnsNaN(nn.Module):
    def __init__(self, after_calls: int):
        super().__init__()
        self.inner, self.calls, self.after = tiny_cnn(), 0, after_calls

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        return out * float("nan") if self.calls > self.after and self.training else out


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    train, validation, test = datasets()
    with pytest.raises(TrainingDiverged, match="not finite.*last good checkpoint"):
        train_fold(TurnsNaN(after_calls=4 * 2 + 1), train, validation, test, RECIPE, tmp_path, progress=False)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["progress"]["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())


def test_gradient_clipping_keeps_a_too_fast_recipe_from_diverging(tmp_path):
    train, validation, test = datasets()
    too_fast = RECIPE.replace(lr=200.0, max_epochs=3)
    with pytest.raises(TrainingDiverged):
        train_fold(tiny_cnn(), train, validation, test, too_fast, tmp_path / "free", progress=False)
    result = train_fold(tiny_cnn(), train, validation, test, too_fast.replace(clip_grad_norm=1e-3),
                        tmp_path / "clipped", progress=False)
    assert np.isfinite(result.predictions["prediction"]).all()


def test_checkpoint_from_another_architecture_is_refused_with_a_summary(tmp_path):
    train, validation, test = datasets()
    train_fold(tiny_cnn(), train, validation, test, RECIPE.replace(max_epochs=1), tmp_path, progress=False)
    other = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Dropout(0.2), nn.Linear(32, 1), nn.Sigmoid())
    with pytest.raises(ModelError, match=r"different architecture.*shape mismatches.*0\.weight"):
        load_weights(other, load_checkpoint(tmp_path / "last.pt")["model"], "last.pt")
    with pytest.raises(ModelError, match="different architecture"):
        train_fold(other, train, validation, test, RECIPE.replace(max_epochs=2), tmp_path, progress=False)


class Payload:
    """Anything that is not a tensor or plain container: weights_only loading must refuse it."""


def test_checkpoints_load_with_weights_only(tmp_path):
    train, validation, test = datasets()
    train_fold(tiny_cnn(), train, validation, test, RECIPE.replace(max_epochs=1), tmp_path, progress=False)
    torch.load(tmp_path / "last.pt", weights_only=True)  # RNG states etc. are all tensors / primitives
    torch.save({"format": FORMAT, "model": {}, "extra": Payload()}, tmp_path / "untrusted.pt")
    with pytest.raises(ModelError, match="weights_only=True"):
        load_checkpoint(tmp_path / "untrusted.pt")


def test_an_image_that_fails_to_decode_is_named_or_skipped(tmp_path):
    rng = np.random.default_rng(0)
    refs = {}
    for i in range(10):
        path = tmp_path / f"{i}.png"
        Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(path)
        refs[f"s{i}"] = str(path)
    (tmp_path / "3.png").write_bytes(b"not an image")
    stimuli = StimulusSet("tiny", pd.DataFrame({"image": refs}).rename_axis("stimulus_id"))
    scores = pd.Series(rng.random(10), index=list(refs))
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    with pytest.raises(DataError, match=r"'s3'.*3\.png.*failed to decode"):
        train_fold(tiny_cnn(), ImageScores(stimuli, scores, list(refs), to_tensor), ImageScores(
            stimuli, scores, ["s0", "s1"], to_tensor), ImageScores(stimuli, scores, ["s2"], to_tensor),
            RECIPE.replace(max_epochs=1), tmp_path / "raise", progress=False)
    result = train_fold(
        tiny_cnn(), ImageScores(stimuli, scores, list(refs), to_tensor, on_decode_error="skip"),
        ImageScores(stimuli, scores, ["s0", "s1"], to_tensor),
        ImageScores(stimuli, scores, ["s2"], to_tensor), RECIPE.replace(max_epochs=2), tmp_path / "skip",
        progress=False)
    assert result.skipped_images == ["s3"] and result.epochs == 2
