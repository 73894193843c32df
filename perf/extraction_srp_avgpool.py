"""Does srp:1024 change a deep layer's memorability score? resmem:resnet152 ``avgpool`` (2,048 units) on all
LNSIM images, PLS-25 5-fold (``lnsim.memorability-pls``): unreduced vs srp:1024 of the same features, beside
the committed full sweep's score for that layer (also srp:1024; equal when the features are the same).

The pooled features come from the frozen-feature cache of the fine-tuning benchmark (the last residual
block, globally average-pooled, with the model's own preprocessing = the avgpool output); computed once if
absent.

    python perf/extraction_srp_avgpool.py   # writes results/benchmarks/extraction_srp_avgpool.txt
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from memprobe.benchmarks import load_benchmark
from memprobe.data import load_dataset
from memprobe.features.reducers import SRPReducer
from memprobe.finetune.features import cache_frozen_features
from memprobe.finetune.heads import find_blocks
from memprobe.finetune.models import AMNET_LAYER
from memprobe.zoo import load_model

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    warnings.simplefilter("ignore")
    lnsim = load_dataset("lnsim")
    loaded = load_model("resmem:resnet152")
    features = cache_frozen_features(loaded.network, loaded.preprocessing.transform(), lnsim.stimuli,
                                     find_blocks(loaded.network), spatial_layer=AMNET_LAYER,
                                     model_key="resmem:resnet152")
    benchmark = load_benchmark("lnsim.memorability-pls")
    (stimuli,) = benchmark.stimulus_sets()
    pooled = np.asarray(features.last_block, dtype=np.float32)

    def score(values) -> float:
        array = xr.DataArray(values, dims=("presentation", "neuroid"),
                             coords={"stimulus_id": ("presentation", list(features.ids))})
        return benchmark.score({stimuli.name: array}).raw

    project = SRPReducer(1024).for_layer("avgpool", (pooled.shape[1],), "cpu")
    unreduced = score(pooled)
    reduced = score(project(torch.from_numpy(pooled)).numpy())
    sweep = pd.read_csv(REPO / "results" / "resmem_resnet152" / "scores.csv").query(
        "layer == 'avgpool' and benchmark == 'lnsim.memorability-pls'")["raw"].item()
    text = (f"resmem:resnet152 avgpool ({pooled.shape[1]} units), LNSIM n={len(features.ids)}, PLS-25 5-fold "
            f"Spearman ρ: unreduced {unreduced:.4f} | srp:1024 {reduced:.4f} | "
            f"|Δρ| {abs(unreduced - reduced):.4f}"
            f" | committed sweep (srp:1024) {sweep:.4f}\n")
    print(text, end="")
    (REPO / "results" / "benchmarks" / "extraction_srp_avgpool.txt").write_text(text)


if __name__ == "__main__":
    main()
