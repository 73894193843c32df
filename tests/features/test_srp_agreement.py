"""The sparse projections (srp and sketch) on REAL activations (resmem:resnet152 on LNSIM images):
distances between images are kept within the Johnson-Lindenstrauss spread, also for sparse, heavy-tailed
post-ReLU maps (where a very sparse projection's extra kurtosis term would show). The PLS score
agreement across layers is measured on two real V4 sessions by perf/extraction_srp_agreement.py
(results/benchmarks/).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memprobe.data import load_dataset
from memprobe.features import extract
from memprobe.features.reducers import DEFAULT_SRP_DIM, SketchReducer, SRPReducer
from memprobe.features.store import ActivationStore
from memprobe.zoo import load_model

LAYERS = ["layer1.0.relu@3", "layer2.3", "layer4.2"]


@pytest.mark.slow
def test_srp_keeps_pairwise_distances_of_real_activations(data_root):
    stimuli = load_dataset("lnsim").stimuli.subset(n=40, seed=0)
    raw = extract(load_model("resmem:resnet152"), stimuli, LAYERS, "none", ActivationStore(), batch_size=20)
    mask = np.triu(np.ones((len(stimuli), len(stimuli)), dtype=bool), 1)
    for reducer in (SRPReducer(DEFAULT_SRP_DIM), SketchReducer(DEFAULT_SRP_DIM)):
        for layer in LAYERS:
            values = np.array(raw[layer].values)
            reduce = reducer.for_layer(layer, (values.shape[1],), "cpu")
            reduced = reduce(torch.from_numpy(values)).numpy()
            ratio = _sq_distances(reduced)[mask] / _sq_distances(values)[mask]
            assert abs(ratio.mean() - 1) < 0.02, (reducer, layer, ratio.mean())
            assert ratio.std() < 2 * math.sqrt(2 / DEFAULT_SRP_DIM), (reducer, layer, ratio.std())


def _sq_distances(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    sq = (x**2).sum(1)
    return sq[:, None] + sq[None, :] - 2 * x @ x.T
