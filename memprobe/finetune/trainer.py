"""Train a memorability regressor fold by fold, with per-epoch atomic checkpoints and exact resume.

Per fold, ``<out>/fold_<k>/`` holds ``last.pt`` (everything needed to continue: written at the end of
every epoch), ``best.pt`` (the weights with the best validation Spearman) and ``predictions.csv`` (the
fold's test images; its presence marks the fold done). ``<out>/predictions.csv`` and
``<out>/metrics.csv`` gather the folds. A rerun resumes where the last one stopped; on CPU the
continuation is bitwise identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from memprobe.atomic import write_text
from memprobe.correlation import spearman
from memprobe.errors import MemprobeError
from memprobe.finetune.checkpoint import (
    FORMAT,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    rng_state,
    save_atomic,
)
from memprobe.finetune.data import Fold, collate
from memprobe.finetune.heads import attention_penalty
from memprobe.finetune.recipes import Recipe


class TrainingDiverged(MemprobeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FoldResult:
    fold: int
    predictions: pd.DataFrame  # stimulus_id, fold, prediction, target
    spearman: float
    mse: float
    epochs: int
    best_epoch: int
    best_validation_spearman: float
    skipped_images: list[str]


def _set_backbone_trainable(model: nn.Module, recipe: Recipe, epoch: int) -> None:
    backbone = getattr(model, "backbone", None)
    if backbone is not None and recipe.phases:
        for parameter in backbone.parameters():
            parameter.requires_grad_(not recipe.backbone_frozen_at(epoch))


def _train_mode(model: nn.Module) -> None:
    """Train mode, except a fully frozen backbone stays in eval mode (its BatchNorm statistics are fixed)."""
    model.train()
    backbone = getattr(model, "backbone", None)
    if backbone is not None and not any(p.requires_grad for p in backbone.parameters()):
        backbone.eval()


def _autocast(device: str):
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _to_device(inputs: torch.Tensor, device: str) -> torch.Tensor:
    """A batch on ``device``; image batches channels-last, the layout the model's convolutions train in."""
    inputs = inputs.to(device, non_blocking=True)
    return inputs.contiguous(memory_format=torch.channels_last) if inputs.dim() == 4 else inputs


def predict_loader(model: nn.Module, loader: DataLoader, device: str) -> tuple[list, np.ndarray, np.ndarray]:
    model.eval()
    ids, predictions, targets = [], [], []
    with torch.no_grad():
        for batch_ids, inputs, batch_targets, _ in loader:
            if inputs is None:
                continue
            with _autocast(device):
                output = model(_to_device(inputs, device))
            ids += batch_ids
            predictions.append(output.float().reshape(len(batch_ids)).cpu().numpy())
            targets.append(batch_targets.numpy())
    if not ids:
        return [], np.empty(0), np.empty(0)
    return ids, np.concatenate(predictions), np.concatenate(targets)


def train_fold(
    model: nn.Module,
    train: Dataset,
    validation: Dataset,
    test: Dataset,
    recipe: Recipe,
    folder: Path,
    fold: int = 0,
    seed: int = 0,
    device: str = "cpu",
    meta: dict | None = None,
    max_epochs: int | None = None,
    progress: bool = True,
) -> FoldResult:
    """Train (or resume) one fold. ``max_epochs`` caps this call's training (the recipe's cap otherwise);
    a later call with a larger cap continues from the checkpoint."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    on_cuda = device.startswith("cuda")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    def loader(dataset, shuffle):
        return DataLoader(dataset, batch_size=recipe.batch_size, shuffle=shuffle, generator=generator,
                          collate_fn=collate, pin_memory=on_cuda, num_workers=int(os.environ.get(
                              "MEMPROBE_LOADER_WORKERS", "0")))

    # Channels-last convolutions train 1.1-1.6x faster on CPU (perf/finetune_channels_last.py), and are
    # what GPU convolutions prefer under autocast.
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = recipe.build_optimizer(model.parameters())
    scheduler = recipe.build_scheduler(optimizer)
    state = {"epoch": 0, "best": -math.inf, "best_epoch": -1, "stale": 0, "stopped": False, "skipped": []}
    if last_path.exists():
        checkpoint = load_checkpoint(last_path)
        load_weights(model, checkpoint["model"], str(last_path))
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        restore_rng_state(checkpoint["rng"], generator)
        state = checkpoint["progress"]
    meta = {**(meta or {}), "recipe": recipe.name, "fold": fold}
    train_loader, validation_loader = loader(train, True), loader(validation, False)
    cap = min(recipe.max_epochs, max_epochs or recipe.max_epochs)

    epochs = tqdm(range(state["epoch"], cap), desc=f"fold {fold}", disable=not progress,
                  initial=state["epoch"], total=cap)
    for epoch in epochs:
        if state["stopped"]:
            break
        _set_backbone_trainable(model, recipe, epoch)
        _train_mode(model)
        losses = []
        for batch, (_, inputs, targets, skipped) in enumerate(train_loader):
            state["skipped"] += skipped
            if inputs is None:
                continue
            inputs = _to_device(inputs, device)
            targets = targets.to(device, non_blocking=True)
            with _autocast(device):
                output = model(inputs).float().reshape(len(targets))
                loss = nn.functional.mse_loss(output, targets)
                if recipe.attention_penalty and getattr(model, "attention", None) is not None:
                    loss = loss + recipe.attention_penalty * attention_penalty(model.attention)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"fold {fold}, epoch {epoch}, batch {batch}: the loss is {loss.item()} (not finite). "
                    f"Training stopped; the last good checkpoint (after epoch {state['epoch'] - 1}) is "
                    f"kept at {last_path}. Lower the learning rate or check the targets for NaN."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad_norm)
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()

        ids, predicted, target = predict_loader(model, validation_loader, device)
        rho = spearman(predicted, target)
        state.update(epoch=epoch + 1, last_train_loss=float(np.mean(losses)) if losses else float("nan"),
                     last_validation_spearman=rho)
        if rho > state["best"] or state["best_epoch"] < 0:  # the first epoch is the best so far, even if NaN
            state.update(best=rho, best_epoch=epoch, stale=0)
            best_payload = {"format": FORMAT, "meta": meta, "model": model.state_dict(), "epoch": epoch}
            save_atomic(best_payload, best_path)
        else:
            state["stale"] += 1
        if recipe.patience is not None and state["stale"] >= recipe.patience:
            state["stopped"] = True
        save_atomic({"format": FORMAT, "meta": meta, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "rng": rng_state(generator), "progress": state}, last_path)
        epochs.set_postfix(loss=state["last_train_loss"], val_rho=rho)

    if best_path.exists():
        load_weights(model, load_checkpoint(best_path)["model"], str(best_path))
    ids, predicted, target = predict_loader(model, loader(test, False), device)
    predictions = pd.DataFrame({"stimulus_id": ids, "fold": fold, "prediction": predicted,
                                "target": target})
    mse = float(np.mean((predicted - target) ** 2))
    return FoldResult(fold, predictions, spearman(predicted, target), mse, state["epoch"],
                      state["best_epoch"], state["best"], list(dict.fromkeys(state["skipped"])))


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    write_text(path, table.to_csv(index=False))


def train_folds(
    folds: list[Fold],
    build_model: Callable[[int], nn.Module],
    make_dataset: Callable[[list[str], bool], Dataset],
    recipe: Recipe,
    out: Path,
    seed: int = 0,
    device: str = "cpu",
    meta: dict | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every fold (skipping finished ones) → (predictions, metrics with an ``overall`` row).

    ``build_model(fold)`` gives a fresh model; ``make_dataset(ids, train)`` a dataset (``train`` says
    whether to augment)."""
    out = Path(out)
    rows, predictions = [], []
    for fold in folds:
        folder = out / f"fold_{fold.index}"
        done = folder / "predictions.csv"
        summary = folder / "summary.csv"
        if not (done.exists() and summary.exists()):
            torch.manual_seed(seed + fold.index)  # a fresh head's initial weights come from the global RNG
            result = train_fold(
                build_model(fold.index), make_dataset(fold.train, True), make_dataset(fold.validation, False),
                make_dataset(fold.test, False), recipe, folder, fold=fold.index, seed=seed + fold.index,
                device=device, meta=meta, progress=progress,
            )
            _write_csv(pd.DataFrame([{
                "fold": fold.index, "spearman": result.spearman, "mse": result.mse, "n_test": len(fold.test),
                "epochs": result.epochs, "best_epoch": result.best_epoch,
                "best_validation_spearman": result.best_validation_spearman,
                "skipped_images": " ".join(result.skipped_images),
            }]), summary)
            _write_csv(result.predictions, done)
        rows.append(pd.read_csv(summary, keep_default_na=False))
        predictions.append(pd.read_csv(done, dtype={"stimulus_id": str}))
    predictions = pd.concat(predictions, ignore_index=True)
    metrics = pd.concat(rows, ignore_index=True)
    metrics["fold"] = metrics["fold"].astype(str)
    overall = {"fold": "overall", "spearman": spearman(predictions["prediction"], predictions["target"]),
               "mse": float(np.mean((predictions["prediction"] - predictions["target"]) ** 2)),
               "n_test": len(predictions)}
    mean = {"fold": "mean", "spearman": float(metrics["spearman"].astype(float).mean()),
            "mse": float(metrics["mse"].astype(float).mean()), "n_test": len(predictions)}
    metrics = pd.concat([metrics, pd.DataFrame([mean, overall])], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(predictions, out / "predictions.csv")
    _write_csv(metrics, out / "metrics.csv")
    return predictions, metrics
