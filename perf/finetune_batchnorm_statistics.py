"""Is it their batch norms that make the offline study's EfficientNet-Lites fine-tune poorly in 2 epochs?
Their running statistics update slowly (PyTorch momentum 0.01, TensorFlow's 0.99), so they could lag the
weights that training changed, and eval mode uses them. Each fold's best checkpoint is scored on its test
images as trained, then again after its running statistics are recomputed (a cumulative average over the
fold's training images, no augmentation, no gradient; weights unchanged). Beside: the spread of the
predictions before training (the pretrained network with the fold's fresh head) and after (the LNSIM
targets' standard deviation is 0.14), and two TFLite networks (batch norms folded) that trained well.

Reads the checkpoints that ``memprobe submit finetune --config analyses/offline.yaml`` leaves in
results/offline/tasks/finetune/*/linear/work (rerunning that command recreates them).

    python perf/finetune_batchnorm_statistics.py [--models ID ...] [--folds K ...]
    # writes results/benchmarks/finetune_batchnorm_statistics.txt
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from memprobe.atomic import write_text
from memprobe.correlation import spearman
from memprobe.finetune.checkpoint import load_checkpoint, load_weights
from memprobe.finetune.data import ImageScores, collate, kfold_splits
from memprobe.finetune.models import build_image_model
from memprobe.finetune.run import load_scored_data
from memprobe.finetune.trainer import predict_loader
from memprobe.slurm import recorded_tasks
from memprobe.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "results" / "offline"
OUTPUT = REPO / "results" / "benchmarks" / "finetune_batchnorm_statistics.txt"
MODELS = ["efficientnet_lite:b0", "efficientnet_lite:b1", "efficientnet_lite:b2", "resmem:resnet152",
          "tflite:mobilenet_v2_1.0_224", "tflite:hardnet39ds"]


def recompute_batchnorm_statistics(network: nn.Module, loader: DataLoader) -> int:
    """Replace every BatchNorm's running mean/variance with their average over ``loader``'s batches."""
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    network.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
        norm.train()
    with torch.no_grad():
        for _, inputs, _, _ in loader:
            network(inputs.contiguous(memory_format=torch.channels_last))
    network.eval()
    return len(norms)


def image_loader(stimuli, scores, transform, ids) -> DataLoader:
    return DataLoader(ImageScores(stimuli, scores, ids, transform), batch_size=32, collate_fn=collate)


def score(network, loader) -> tuple[float, float, float]:
    """Spearman, MSE and the predictions' standard deviation (the targets': 0.14)."""
    _, predicted, target = predict_loader(network, loader, "cpu")
    return spearman(predicted, target), float(np.mean((predicted - target) ** 2)), float(np.std(predicted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MEMPROBE_THREADS", "2")))
    tasks = {task.model: task for task in recorded_tasks(RUN, "finetune")}
    rows = []
    for identifier in args.models:
        task, settings = tasks[identifier], tasks[identifier].arguments
        stimuli, scores, _ = load_scored_data(settings["data"])
        folds = kfold_splits(list(scores.index), n_folds=settings["folds"], seed=settings["seed"])
        committed = pd.read_csv(task.table_path).set_index("fold")
        for k in args.folds:
            checkpoint = task.directory / "work" / f"fold_{k}" / "best.pt"
            torch.manual_seed(settings["seed"] + k)  # as the trainer seeds fold k's model (its fresh head)
            loaded = load_model(identifier, weights=settings["weights"], seed=settings["seed"])
            network, _ = build_image_model(loaded, settings["head"])
            network = network.to(memory_format=torch.channels_last)
            loader = functools.partial(image_loader, stimuli, scores, loaded.preprocessing.transform())
            untrained = score(network, loader(folds[k].test))
            load_weights(network, load_checkpoint(checkpoint)["model"], str(checkpoint))
            as_trained = score(network, loader(folds[k].test))
            n_norms = recompute_batchnorm_statistics(network, loader(folds[k].train))
            recomputed = score(network, loader(folds[k].test))
            rows.append({"model": identifier, "fold": k, "batch_norms": n_norms,
                         "untrained_spearman": untrained[0], "untrained_prediction_sd": untrained[2],
                         "committed_spearman": float(committed.loc[str(k), "spearman"]),
                         "spearman": as_trained[0], "mse": as_trained[1], "prediction_sd": as_trained[2],
                         "recomputed_spearman": recomputed[0], "recomputed_mse": recomputed[1],
                         "recomputed_prediction_sd": recomputed[2]})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    columns = ["untrained_prediction_sd", "prediction_sd", "spearman", "recomputed_spearman", "mse",
               "recomputed_mse"]
    means = table.groupby("model", sort=False)[columns].mean()
    text = (
        "Fine-tuned LNSIM test Spearman / MSE of each fold's best checkpoint (offline study, 2 epochs): as "
        "trained (eval mode, running statistics) vs with every batch norm's running statistics recomputed on "
        "the fold's training images (weights unchanged); untrained_*: the fresh head before training. "
        "committed_spearman: the study's table (must equal spearman).\n\n"
        + table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
        + "\n\nmean over folds:\n" + means.to_string(float_format=lambda v: f"{v:.4f}") + "\n"
    )
    print(text, end="")
    write_text(OUTPUT, text)


if __name__ == "__main__":
    main()
