"""Throughput: hooked extraction of ALL layers of resmem:resnet152 (reduced, written to a fresh store)
vs a bare forward pass over the same LNSIM images, same DataLoader settings, same process.

    python perf/extraction_throughput.py [--n 192] [--batch-size 32] [--reducer sketch:4096]

Prints the ratio (goal ≤ 1.5) and writes results/benchmarks/extraction_throughput.json. On a GPU machine
without the resmem weights or LNSIM: ``--device cuda --model torchvision:resnet152 --weights random
--images cowley_v4`` (the same architecture; a V4 session's 1,200 images) writes
extraction_throughput_cuda.json. Both passes run in full float32, as extraction does (no TF32).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from memprobe.benchmarks import load_benchmark
from memprobe.data import load_dataset
from memprobe.features.extract import (
    StimulusImages,
    collate_images,
    default_workers,
    extract,
    full_float32,
    list_layers,
)
from memprobe.features.reducers import get_reducer
from memprobe.features.store import ActivationStore
from memprobe.zoo import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def bare_forward(model, stimuli, batch_size: int, num_workers: int, device: torch.device) -> float:
    loader = torch.utils.data.DataLoader(
        StimulusImages(stimuli, model.preprocessing.transform()),
        batch_size=batch_size,
        collate_fn=collate_images,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    network = model.network.to(device)
    started = time.perf_counter()
    with torch.inference_mode(), full_float32():
        for _, images, _ in loader:
            network(images.to(device, non_blocking=True))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    network.cpu()
    return seconds


def image_set(name: str):
    if name == "lnsim":
        return load_dataset("lnsim").stimuli
    return load_benchmark("cowley_v4.V4-pls").stimulus_sets()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reducer", default="sketch:4096", help="the default reducer; e.g. srp:4096")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="resmem:resnet152")
    parser.add_argument("--weights", default="pretrained")
    parser.add_argument("--images", choices=["lnsim", "cowley_v4"], default="lnsim")
    args = parser.parse_args()
    device = torch.device(args.device)

    model = load_model(args.model, weights=args.weights)
    stimuli = image_set(args.images).subset(n=args.n, seed=1)
    layers = list_layers(model)
    reducer = get_reducer(args.reducer)
    for layer in layers:  # matrix generation is a one-off per layer width, not per image: time it apart
        reducer.for_layer(layer.name, layer.shape, device)
    warm_up = stimuli.subset(n=args.batch_size, seed=2)
    bare_forward(model, warm_up, args.batch_size, args.workers, device)

    bare = bare_forward(model, stimuli, args.batch_size, args.workers, device)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        extract(
            model,
            stimuli,
            None,
            reducer,
            ActivationStore(scratch),
            batch_size=args.batch_size,
            device=device,
            num_workers=args.workers,
            progress=False,
        )
        hooked = time.perf_counter() - started
    result = {
        "model": model.id,
        "weights": args.weights,
        "device": str(device),
        "images": f"{len(stimuli)} of {stimuli.name}",
        "layers": len(layers),
        "reducer": reducer.key(),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "torch_threads": torch.get_num_threads(),
        "bare_forward_s": round(bare, 2),
        "hooked_extraction_s": round(hooked, 2),
        "ratio": round(hooked / bare, 3),
        "goal": "ratio <= 1.5",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    (RESULTS / f"extraction_throughput{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"hooked/bare = {hooked:.1f} s / {bare:.1f} s = {hooked / bare:.2f}x (goal ≤ 1.5)")


if __name__ == "__main__":
    main()
