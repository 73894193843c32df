"""Memorability benchmarks: the registry, LNSIM's seeded 5-fold CV and LaMem's official splits."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from sklearn.model_selection import KFold

from memprobe.benchmarks import PLSOptions, list_benchmarks, load_benchmark
from memprobe.correlation import spearman
from memprobe.errors import BenchmarkError, DataError


def _features(ids, scores, noise, seed=0, units=30):
    """Made-up features: a random mixture of the score (times ``noise`` < ∞) and noise."""
    rng = np.random.default_rng(seed)
    signal = np.outer(scores, rng.normal(size=units)) if noise != np.inf else 0.0
    values = signal + (1.0 if noise == np.inf else noise) * rng.normal(size=(len(ids), units))
    coords = {"stimulus_id": ("presentation", ids)}
    return xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords)


def test_registry_lists_every_benchmark_and_rejects_unknown_ones():
    assert set(list_benchmarks()) == {
        "lnsim.memorability-pls", "lamem.memorability-pls", "cowley_v4.V4-pls",
        "MajajHong2015public.V4-pls", "MajajHong2015public.IT-pls",
        "FreemanZiemba2013public.V1-pls", "FreemanZiemba2013public.V2-pls",
        "rsa92.IT-monkey-rsa", "rsa92.IT-human-rsa",
    }
    assert list_benchmarks("rsa92.*") == ["rsa92.IT-monkey-rsa", "rsa92.IT-human-rsa"]
    with pytest.raises(BenchmarkError, match="unknown benchmark 'lnsim.nope'"):
        load_benchmark("lnsim.nope")


@pytest.fixture(scope="module")
def lnsim():
    return load_benchmark("lnsim.memorability-pls")


def test_lnsim_seeded_five_fold_cv(lnsim):
    scores = lnsim.dataset.scores
    ids = list(scores.index)
    features = _features(ids, scores.to_numpy(), noise=0.05)
    score = lnsim.score({"lnsim": features})
    assert score.raw > 0.8 and len(score.per_split) == 5
    assert score.protocol["split_seed"] == 0 and score.protocol["n_splits"] == 5
    assert score.ceiling == pytest.approx(0.78, abs=0.03)  # the data set's human consistency
    # fold 0 by hand: KFold(5, shuffle, seed 0) over LNSIM's images, PLS-25, Spearman
    train, test = next(KFold(5, shuffle=True, random_state=0).split(ids))
    X, y = features.values, scores.to_numpy()
    pred = SklearnPLS(25, scale=False).fit(X[train], y[train]).predict(X[test])
    assert score.per_split["score"].iloc[0] == pytest.approx(spearman(pred, y[test]), abs=1e-5)
    # any row order: aligned by stimulus_id
    reversed_rows = features.isel(presentation=slice(None, None, -1))
    assert lnsim.score({"lnsim": reversed_rows}).raw == pytest.approx(score.raw, abs=1e-9)
    assert abs(lnsim.score({"lnsim": _features(ids, scores.to_numpy(), noise=np.inf)}).raw) < 0.08
    with pytest.raises(BenchmarkError, match="no features for stimulus set 'lnsim'"):
        lnsim.score({"cowley_v4.190923": features})


@pytest.mark.slow
def test_lamem_official_splits_on_the_real_split_files():
    """Fit on train_k with train_k's scores, score on test_k against test_k's scores (they differ between
    files: r ≈ 0.84 for the same image), on the real split files with made-up features."""
    benchmark = load_benchmark("lamem.memorability-pls", pls=PLSOptions(n_components=5))
    with pytest.raises(DataError, match="needs the LaMem images"):
        benchmark.stimulus_sets()
    scores = benchmark.dataset.scores  # each image's mean over the files that list it
    ids = list(scores.index)
    features = _features(ids, scores.to_numpy(), noise=0.1, units=12)
    score = benchmark.score({"lamem": features})
    assert list(score.per_split["n_train"]) == [45000] * 5 and list(score.per_split["n_test"]) == [10000] * 5
    assert score.ceiling is None and "official" in score.protocol["cv"]
    assert (score.per_split["score"] > 0.5).all()
    train, test = benchmark.dataset.split("train", 3), benchmark.dataset.split("test", 3)
    X = features.to_pandas()
    X.index = ids
    model = SklearnPLS(5, scale=False).fit(X.loc[train.index], train.to_numpy())
    prediction = model.predict(X.loc[test.index])
    expected = spearman(prediction, test.to_numpy())
    assert score.per_split.set_index("split").loc[3, "score"] == pytest.approx(expected, abs=1e-6)
    noise = benchmark.score({"lamem": _features(ids, scores.to_numpy(), noise=np.inf, units=12)})
    assert abs(noise.raw) < 0.05
