"""RSA on the 92-image set against the real monkey- and human-IT RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from memprobe.benchmarks import load_benchmark
from memprobe.benchmarks.metrics import rdm


@pytest.mark.parametrize(
    "identifier, key", [("rsa92.IT-monkey-rsa", "monkey_IT"), ("rsa92.IT-human-rsa", "human_IT")]
)
def test_rsa_scores_the_model_rdm_against_the_brain_rdm(identifier, key):
    benchmark = load_benchmark(identifier)
    brain = benchmark.dataset.rdms[key]
    ids = [str(i) for i in brain["stimulus_id"].values]
    assert len(ids) == 92 and [s.name for s in benchmark.stimulus_sets()] == ["rsa92"]
    # features whose RDM follows the brain's: each image described by its own dissimilarity profile
    profile = brain.values + 0.05 * np.random.default_rng(0).normal(size=brain.shape)
    coords = {"stimulus_id": ("presentation", ids)}
    features = xr.DataArray(profile, dims=("presentation", "neuroid"), coords=coords)
    score = benchmark.score({"rsa92": features})
    upper = np.triu_indices(92, k=1)
    expected = scipy.stats.spearmanr(rdm(profile)[upper], brain.values[upper]).statistic
    assert score.raw == pytest.approx(expected, abs=1e-12) and score.raw > 0.5
    assert score.ceiling is None and score.ceiled is None
    # shuffling the rows of the features (not their ids) must not change the score
    order = np.random.default_rng(1).permutation(92)
    assert benchmark.score({"rsa92": features.isel(presentation=order)}).raw == pytest.approx(score.raw)
    random = features.copy(data=np.random.default_rng(2).normal(size=features.shape))
    assert abs(benchmark.score({"rsa92": random}).raw) < 0.1
