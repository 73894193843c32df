"""Neural PLS benchmarks: Brain-Score's protocol on real V4 data and on a made-up Brain-Score assembly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from v4_features import SESSION, v4_features

from memprobe.benchmarks import PLSOptions, load_benchmark
from memprobe.benchmarks.neural import brainscore_splits
from memprobe.correlation import pearson_per_column
from memprobe.data import StimulusSet
from memprobe.data.brainscore import NeuralDataset
from memprobe.errors import BenchmarkError

REPO = Path(__file__).resolve().parents[2]
BRAINSCORE_PYTHON = REPO / ".venv-brainscore" / "bin" / "python"


@pytest.fixture(scope="module")
def session_features():
    return {f"cowley_v4.{SESSION}": v4_features("layer2", "resmem")}


@pytest.fixture(scope="module")
def v4_benchmark():
    return load_benchmark("cowley_v4.V4-pls", sessions=[SESSION])


def test_splits_are_brainscores(v4_benchmark):
    splits = brainscore_splits(400)
    expected = list(ShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(np.zeros(400)))
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(splits, expected, strict=True))
    labels = np.repeat(["a", "b", "c", "d"], 25)
    stratified = brainscore_splits(100, labels)
    splitter = StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1)
    reference = splitter.split(np.zeros(100), labels)
    assert all((a[1] == b[1]).all() for a, b in zip(stratified, reference, strict=True))


@pytest.mark.slow
def test_real_v4_features_match_sklearn_per_split(v4_benchmark, session_features):
    """Real resmem ResNet-152 features of real V4 images: predictions as sklearn's (float64), and the
    benchmark's per-split scores equal sklearn-based scores to 3 decimals in float32."""
    features = session_features[f"cowley_v4.{SESSION}"]
    responses = v4_benchmark.recordings[0].responses
    X, Y = features.values, responses.values
    splits = brainscore_splits(len(Y))
    expected_scores = []
    ours64 = PLSOptions().model().fit_predict_folds(X, Y, [s[0] for s in splits], [s[1] for s in splits])
    for (train, test), pred in zip(splits, ours64, strict=True):
        reference = SklearnPLS(25, scale=False).fit(X[train], Y[train]).predict(X[test])
        assert np.abs(reference - pred).max() / np.abs(reference).max() < 1e-4
        expected_scores.append(np.median(pearson_per_column(reference, Y[test])))
    float32 = load_benchmark("cowley_v4.V4-pls", sessions=[SESSION], pls=PLSOptions(dtype=torch.float32))
    score = float32.score(session_features)
    pooled = score.per_split.query("recording == 'pooled'")["score"].to_numpy()
    np.testing.assert_array_equal(np.round(pooled, 3), np.round(expected_scores, 3))
    assert round(score.raw, 3) == round(float(np.mean(expected_scores)), 3)


@pytest.mark.slow
def test_v4_score_protocol_ceiling_and_alignment(v4_benchmark, session_features):
    score = v4_benchmark.score(session_features)
    assert 0.3 < score.raw < 0.8  # trained ResNet layer2 predicts V4 well (Brain-Score: ~0.5 on 190923)
    assert score.protocol["split_seed"] == 1 and score.protocol["n_splits"] == 10
    assert score.protocol["stratification"] is None and "ShuffleSplit" in score.protocol["cv"]
    assert "210325" in score.protocol["ceiling_source"]
    assert 0.3 < score.ceiling < 0.95 and score.ceiled == pytest.approx(score.raw / score.ceiling)
    assert score.details.sizes == {"split": 10, "neuroid": 70}
    # rows in another order give the same score: features are aligned by stimulus_id
    features = session_features[f"cowley_v4.{SESSION}"]
    order = np.random.default_rng(0).permutation(features.sizes["presentation"])
    shuffled = features.isel(presentation=order)
    assert v4_benchmark.score({f"cowley_v4.{SESSION}": shuffled}).raw == pytest.approx(score.raw, abs=1e-9)
    with pytest.raises(BenchmarkError, match="lack 1 of its stimuli"):
        v4_benchmark.score({f"cowley_v4.{SESSION}": features.isel(presentation=slice(1, None))})


@pytest.mark.slow
def test_trained_network_predicts_v4_better_than_random_weights(v4_benchmark, session_features):
    trained = v4_benchmark.score(session_features).raw
    untrained = v4_benchmark.score({f"cowley_v4.{SESSION}": v4_features("layer2", "random")}).raw
    print(f"V4 layer2 raw: resmem {trained:.3f}, random weights {untrained:.3f}")
    assert trained > untrained + 0.05  # measured: 0.590 vs 0.510


@pytest.mark.brainscore
@pytest.mark.slow
def test_matches_brainscore_pls_metric(v4_benchmark, session_features, tmp_path):
    assert BRAINSCORE_PYTHON.is_file(), "run scripts/setup_test_env.sh to create .venv-brainscore"
    features = session_features[f"cowley_v4.{SESSION}"]
    responses = v4_benchmark.recordings[0].responses
    path = tmp_path / "peer.npz"
    np.savez(path, features=features.values, responses=responses.values,
             stimulus_id=np.array([str(i) for i in responses["stimulus_id"].values]),
             neuroid_id=np.array([str(i) for i in responses["neuroid_id"].values]))
    run = subprocess.run([str(BRAINSCORE_PYTHON), str(REPO / "perf" / "brainscore_peer.py"), str(path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    ours = v4_benchmark.score(session_features)
    assert abs(ours.raw - theirs["raw"]) < 0.005
    pooled = ours.per_split.query("recording == 'pooled'")["score"].to_numpy()
    np.testing.assert_allclose(pooled, theirs["per_split"], atol=0.005)


def _made_up_assembly(n_objects=8, per_object=15, n_neuroids=12, repetitions=6, seed=0):
    """A dataset in memprobe.data.brainscore's format: object_name, raw repeats, stratification attr."""
    rng = np.random.default_rng(seed)
    n = n_objects * per_object
    ids = [f"img{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 5))
    signal = latent @ rng.normal(size=(5, n_neuroids))
    repeats = signal[:, :, None] + 0.7 * rng.normal(size=(n, n_neuroids, repetitions))
    repeats[:4, :, -1] = np.nan  # some stimuli shown fewer times
    objects = np.repeat([f"object{k}" for k in range(n_objects)], per_object)
    presentation = {"stimulus_id": ("presentation", ids), "object_name": ("presentation", objects)}
    neuroid = {"neuroid_id": ("neuroid", [f"n{j}" for j in range(n_neuroids)]),
               "region": ("neuroid", ["IT"] * n_neuroids)}
    attrs = {"stratification_coord": "object_name"}
    responses = xr.DataArray(np.nanmean(repeats, axis=2), dims=("presentation", "neuroid"),
                             coords={**presentation, **neuroid}, attrs=attrs)
    raw = xr.DataArray(repeats, dims=("presentation", "neuroid", "repetition"),
                       coords={**presentation, **neuroid, "repetition": np.arange(repetitions)}, attrs=attrs)
    table = pd.DataFrame({"image": [f"/nowhere/{i}.png" for i in ids], "object_name": objects},
                         index=pd.Index(ids, name="stimulus_id"))
    dataset = NeuralDataset(StimulusSet("MajajHong2015public.IT", table), responses, raw)
    good = latent @ rng.normal(size=(5, 40)) + 0.1 * rng.normal(size=(n, 40))
    coords = {"stimulus_id": ("presentation", ids)}
    return dataset, xr.DataArray(good, dims=("presentation", "neuroid"), coords=coords), objects


def test_brainscore_assembly_benchmark_stratifies_by_object_and_computes_a_ceiling():
    dataset, features, objects = _made_up_assembly()
    benchmark = load_benchmark("MajajHong2015public.IT-pls", dataset=dataset)
    assert [s.name for s in benchmark.stimulus_sets()] == ["MajajHong2015public.IT"]
    score = benchmark.score({"MajajHong2015public.IT": features})
    assert score.protocol["stratification"] == "object_name"
    assert score.protocol["cv"].startswith("StratifiedShuffleSplit")
    assert score.raw > 0.6  # features carry the responses' latent signal
    # per split: StratifiedShuffleSplit by object, PLS-25, median Pearson over neuroids
    splitter = StratifiedShuffleSplit(10, train_size=0.9, random_state=1)
    train, test = next(splitter.split(features.values, objects))
    Y = dataset.responses.values
    pred = SklearnPLS(25, scale=False).fit(features.values[train], Y[train]).predict(features.values[test])
    first = score.per_split.query("recording == 'pooled' and split == 0")["score"].item()
    assert first == pytest.approx(np.median(pearson_per_column(pred, Y[test])), abs=1e-6)
    assert 0.5 < score.ceiling < 1.0 and score.protocol["ceiling_seed"] == 1
    noise = features.copy(data=np.random.default_rng(1).normal(size=features.shape))
    assert abs(benchmark.score({"MajajHong2015public.IT": noise}).raw) < 0.2
