"""``finetune``: one model, one data set, one head and recipe → per-fold checkpoints, predictions, metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memprobe.config import device as default_device
from memprobe.data import load_dataset
from memprobe.errors import DataError, ModelError
from memprobe.finetune.data import FeatureScores, ImageScores, kfold_splits, lamem_splits, training_transform
from memprobe.finetune.features import cache_frozen_features
from memprobe.finetune.heads import find_blocks
from memprobe.finetune.models import AMNET_LAYER, build_feature_head, build_image_model
from memprobe.finetune.recipes import RECIPES, get_recipe
from memprobe.finetune.trainer import train_folds
from memprobe.zoo import load_model

DEFAULT_RECIPE = {"linear": "paper", "resmemnet": "resmemnet", "amnet": "amnet"}


def load_scored_data(data: str):
    """``lnsim``, ``lamem`` (needs its images folder) or ``folder:<images folder>[:<scores csv>]``
    → (stimuli, scores, official folds or None)."""
    if data.startswith("folder:"):
        folder, _, csv = data[len("folder:"):].partition(":")
        dataset = load_dataset("folder", root=folder, csv=csv or None)
    else:
        dataset = load_dataset(data)
    if getattr(dataset, "stimuli", None) is None or getattr(dataset, "scores", None) is None:
        raise DataError(f"data set {data!r} has no images with scores here; fine-tuning needs both")
    official = lamem_splits(dataset.splits) if data == "lamem" else None
    return dataset.stimuli, dataset.scores, official


def finetune(
    model: str,
    data: str = "lnsim",
    head: str = "linear",
    recipe: str | None = None,
    folds: int = 5,
    out: str | Path | None = None,
    seed: int = 0,
    device: str | None = None,
    frozen: bool = False,
    weights: str = "pretrained",
    max_epochs: int | None = None,
    clip_grad_norm: float | None = None,
    on_decode_error: str = "raise",
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fine-tune ``model`` for memorability fold by fold (resuming finished work) → (predictions, metrics).

    ``frozen``: keep the pretrained backbone fixed, cache its features once and train only the head on
    them (no augmentation) — the fast path for CPUs. ``weights``: as for ``memprobe.zoo.load_model``.
    ``max_epochs``, ``clip_grad_norm``: override the recipe's (a network whose batch norms are folded into
    its convolutions, as in an exported graph, can need its gradients capped to train at the recipe's rate).
    """
    recipe_ = get_recipe(recipe or DEFAULT_RECIPE.get(head, "paper"))
    if max_epochs:
        recipe_ = recipe_.replace(max_epochs=max_epochs)
    if clip_grad_norm:
        recipe_ = recipe_.replace(clip_grad_norm=clip_grad_norm)
    device = default_device(device)
    stimuli, scores, official = load_scored_data(data)
    split = official[:folds] if official else kfold_splits(list(scores.index), n_folds=folds, seed=seed)
    slug = f"{model.replace(':', '-')}_{head}_{recipe_.name}_{data.split(':')[0]}"
    out = Path(out or Path("finetune") / slug)

    if frozen:
        loaded = load_model(model, weights=weights, seed=seed)
        try:
            blocks = find_blocks(loaded.network)
        except ModelError as error:
            raise ModelError(f"{model}: the frozen fast path needs residual blocks: {error}") from None
        features = cache_frozen_features(
            loaded.network, loaded.preprocessing.transform(), stimuli.subset(ids=list(scores.index)), blocks,
            spatial_layer=AMNET_LAYER if head == "amnet" else None, model_key=model, device=device,
            progress=progress,
        )
        table = {"linear": features.last_block, "resmemnet": features.pooled, "amnet": features.spatial}[head]
        spatial_channels = features.spatial.shape[1] if features.spatial is not None else None
        meta = {"model": model, "weights": str(weights), "seed": seed, "backbone_weights": loaded.weights_id,
                "head": head, "blocks": blocks,
                "input": "spatial" if head == "amnet" else "pooled", "layer": AMNET_LAYER,
                "input_size": int(loaded.preprocessing.crop[0])}

        def make_dataset(ids, train):
            rows = features.rows(ids)
            return FeatureScores(table[rows], ids, scores.loc[ids].to_numpy())

        def build_model(fold):
            return build_feature_head(head, features.block_channels, spatial_channels)
    else:
        preprocessing = load_model(model, weights="random").preprocessing
        augment = training_transform(preprocessing) if recipe_.augment else preprocessing.transform()
        meta = {}  # filled by build_model, which runs before each fold's trainer reads it

        def make_dataset(ids, train):
            transform = augment if train else preprocessing.transform()
            return ImageScores(stimuli, scores, ids, transform, on_decode_error=on_decode_error)

        def build_model(fold):
            network, description = build_image_model(load_model(model, weights=weights, seed=seed), head)
            meta.update(description)
            return network

    return train_folds(split, build_model, make_dataset, recipe_, out, seed=seed, device=device, meta=meta,
                       progress=progress)


__all__ = ["finetune", "load_scored_data", "RECIPES"]
