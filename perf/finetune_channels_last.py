"""Training step (batch 32, SGD, linear head) of every network of the ``offline`` set, with its tensors in
the contiguous (NCHW) layout vs channels-last, which the fine-tuning trainer uses; and how far apart the two
layouts' outputs are (float rounding only).

    python perf/finetune_channels_last.py [--models ID ...] [--steps 3]
    # writes results/benchmarks/finetune_channels_last.txt
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from memprobe.atomic import write_text
from memprobe.finetune.models import build_image_model
from memprobe.zoo import load_model, model_set

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "finetune_channels_last.txt"
BATCH = 32


def step_seconds(identifier: str, channels_last: bool, steps: int) -> tuple[float, torch.Tensor]:
    """Median seconds of a training step after one warm-up step, and the eval outputs on a fixed batch."""
    torch.manual_seed(0)
    loaded = load_model(identifier, weights="pretrained")
    network, _ = build_image_model(loaded, "linear")
    images = torch.randn(BATCH, 3, *loaded.preprocessing.crop, generator=torch.Generator().manual_seed(0))
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        outputs = network.eval()(images).float()
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    network.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = network(images).float().pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(torch.tensor(times[1:]).median()), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    threads = int(os.environ.get("MEMPROBE_THREADS", "2"))
    torch.set_num_threads(threads)
    lines = [f"training step, batch {BATCH}, {threads} threads, median of {args.steps} after a warm-up; "
             "ratio = contiguous / channels-last (> 1: channels-last is faster)",
             f"{'model':30s} {'contiguous s':>12s} {'channels-last s':>15s} {'ratio':>6s} "
             f"{'max |Δ output|':>15s}"]
    print("\n".join(lines), flush=True)
    for identifier in args.models or model_set("offline"):
        contiguous, reference = step_seconds(identifier, False, args.steps)
        channels_last, outputs = step_seconds(identifier, True, args.steps)
        difference = float((outputs - reference).abs().max())
        lines.append(f"{identifier:30s} {contiguous:12.2f} {channels_last:15.2f} "
                     f"{contiguous / channels_last:6.2f} {difference:15.2e}")
        print(lines[-1], flush=True)
    write_text(OUTPUT, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
