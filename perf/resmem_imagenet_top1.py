"""ImageNet top-1 of ResMem's ResNet-152 backbone (``resmem:resnet152``, its real weights) on the
1,000-image ``imagenet_sample`` (one image per class; label = position of the wnid in sorted order).

ResMem feeds this torchvision ResNet-152's 1000-way ``fc`` output into its memorability head (and its
code freezes the backbone: ``requires_grad = False``). The question is how much ImageNet classification
is left: chance is 0.1 %, the original torchvision weights score 78.3 % on the validation set (and more
on these likely training images). Also reports top-5 and how many distinct classes it predicts at all; with
``--normalised`` also the same with ImageNet mean/std added (ResMem feeds its backbone raw [0, 1]
pixels; torchvision trained it on normalised ones).

    python perf/resmem_imagenet_top1.py [--normalised]
    # writes results/benchmarks/resmem_imagenet_top1.txt
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import torch

from memprobe.atomic import write_text
from memprobe.data.registry import load_dataset
from memprobe.zoo import load_model
from memprobe.zoo.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from memprobe.zoo.top1 import accuracy, imagenet_logits, labels_of

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "resmem_imagenet_top1.txt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--normalised", action="store_true", help="also score with ImageNet mean/std added")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MEMPROBE_THREADS", "2")))
    stimuli = load_dataset("imagenet_sample").stimuli
    labels = labels_of(stimuli)
    model = load_model("resmem:resnet152")
    fc = model.network.fc
    start = time.perf_counter()
    raw = accuracy(imagenet_logits(model.network, stimuli, model.preprocessing.transform()), labels)
    elapsed = time.perf_counter() - start
    lines = [
        "resmem:resnet152 (ResMem's fine-tuned torchvision ResNet-152) on imagenet_sample (1,000 images)",
        f"weights: {model.weights_id} (sha256 prefix of resmem/model.pt); classifier fc: "
        f"{fc.in_features} -> {fc.out_features} (still a 1000-way layer)",
        f"ResMem preprocessing ({model.preprocessing.describe()}): top-1 {raw['top1']:.1f} %, "
        f"top-5 {raw['top5']:.1f} %, distinct predicted classes {raw['distinct_predicted_classes']}",
        "chance: top-1 0.1 %, top-5 0.5 %; original torchvision IMAGENET1K_V1 weights: 78.312 % (val set)",
        f"time: {elapsed:.1f} s for 1,000 images with ResMem preprocessing "
        f"({1000 * elapsed / len(stimuli):.0f} ms per image) on "
        f"{torch.get_num_threads()} threads",
    ]
    if args.normalised:
        normalised = dataclasses.replace(model.preprocessing, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        norm = accuracy(imagenet_logits(model.network, stimuli, normalised.transform()), labels)
        lines.insert(
            3,
            f"with ImageNet mean/std added ({normalised.describe()}): top-1 {norm['top1']:.1f} %, "
            f"top-5 {norm['top5']:.1f} %, distinct predicted classes {norm['distinct_predicted_classes']}",
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_text(OUTPUT, text)


if __name__ == "__main__":
    main()
