"""The offline study's tables and figures, from its run folder (``analyses/offline.yaml``, run first with
``memprobe submit sweep|finetune --config analyses/offline.yaml --here``):

    python scripts/offline_study.py [--partial] [--n-boot 2000] [--n-perm 2000]

1. ``memprobe collect`` of the sweep and, once it has started, the fine-tuning (``--partial``: while they
   go on, the models whose tasks have all finished) → ``results/offline/{sweep,finetune}_scores.csv``;
2. ``results/offline/top1.csv``: each model's published ImageNet top-1 (validation set) where its publisher
   gives one, beside the top-1 we measured on ``imagenet_sample`` (likely training images, so inflated:
   ``results/benchmarks/offline_top1.csv``), which the figures do not use;
3. ``memprobe analyze`` of every model → ``results/offline/figures/``, and again without ResMem's
   ResNet-152, whose weights were fine-tuned for memorability → ``results/offline/figures_imagenet_only/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from memprobe.atomic import write_text
from memprobe.cli import main as memprobe
from memprobe.slurm import collect
from memprobe.zoo import get_spec

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "results" / "offline"
MEASURED = REPO / "results" / "benchmarks" / "offline_top1.csv"
MEMORABILITY_TRAINED = "resmem:*"


def top1_table(models: list[str]) -> pd.DataFrame:
    measured = pd.read_csv(MEASURED).set_index("model")["top1_measured_imagenet_sample"]
    rows = [{"model": model, "top1": get_spec(model).top1, "top1_source": get_spec(model).top1_source,
             "top1_measured_imagenet_sample": measured.get(model)} for model in models]
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partial", action="store_true", help="collect the models that have finished")
    parser.add_argument("--n-boot", default="2000")
    parser.add_argument("--n-perm", default="2000")
    args = parser.parse_args()

    for kind in ("sweep", "finetune"):
        if (RUN / f"{kind}_models.json").is_file():
            table = collect(RUN, kind, partial=args.partial)
            print(f"{kind}: {table['model'].nunique()} models → {RUN / f'{kind}_scores.csv'}")
    models = json.loads((RUN / "sweep_models.json").read_text())
    top1 = top1_table(models)
    write_text(RUN / "top1.csv", top1.to_csv(index=False))
    print(top1.to_string(index=False))

    resampling = ["--n-boot", args.n_boot, "--n-perm", args.n_perm]
    status = memprobe(["analyze", str(RUN), "--out", str(RUN / "figures"), *resampling])
    status |= memprobe(["analyze", str(RUN), "--exclude", MEMORABILITY_TRAINED,
                        "--out", str(RUN / "figures_imagenet_only"), *resampling])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
