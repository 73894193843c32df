"""A sweep under a disk budget: layer groups that fit it, freed after scoring, resumable, same scores."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from extract_fixtures import image_set

import memprobe.sweep.run
from memprobe.errors import MemprobeError
from memprobe.features import ActivationStore, get_reducer
from memprobe.features.reducers import PCAReducer
from memprobe.sweep import SweepConfig, run_sweep

LAYERS = ("layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2", "layer1.0", "layer1.1")
CONFIG = SweepConfig(model="torchvision:resnet18", weights="random", layers=LAYERS, reducer="pool", subset=30,
                     benchmarks=("rsa92.IT-monkey-rsa", "lnsim.memorability-pls"))
LAYER_BYTES = (30 + 30) * 64 * 4  # two stimulus sets of 30 images, 64 channels after pooling, float32
BUDGET = 35_000  # two layers per group (with the .npy headers), not three


def _sweep(out, store_root, config=CONFIG, **options) -> pd.DataFrame:
    return run_sweep(config, out, store=ActivationStore(store_root), batch_size=16, num_workers=0,
                     progress=False, **options)


class ExtractionLog:
    """Wraps the sweep's ``extract``: which layers each call extracted, and the store's size after it."""

    real = staticmethod(memprobe.sweep.run.extract)

    def __init__(self, monkeypatch, store_root):
        self.calls, self.sizes = [], []
        self.store_root = store_root
        real = ExtractionLog.real

        def logged(model, stimuli, layers, **options):
            result = real(model, stimuli, layers=layers, **options)
            self.calls.append((stimuli.name, tuple(layers)))
            self.sizes.append(sum(p.stat().st_size for p in store_root.rglob("*.npy")))
            return result

        monkeypatch.setattr(memprobe.sweep.run, "extract", logged)


def _table(out) -> pd.DataFrame:
    return pd.read_csv(out / "torchvision_resnet18" / "scores.csv").sort_values(["layer", "benchmark"])


@pytest.fixture(scope="module")
def unbudgeted(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("unbudgeted")
    _sweep(out, out / "store")
    return _table(out)


def test_a_budget_cuts_the_layers_into_groups_that_fit_frees_them_and_scores_the_same(
    tmp_path, monkeypatch, unbudgeted
):
    log = ExtractionLog(monkeypatch, tmp_path / "store")
    _sweep(tmp_path / "budget", tmp_path / "store", max_store=BUDGET)
    groups = sorted({layers for _, layers in log.calls}, key=lambda group: LAYERS.index(group[0]))
    assert groups == [LAYERS[0:2], LAYERS[2:4], LAYERS[4:6]]
    assert len(log.calls) == 3 * 2  # one pass over each stimulus set per group
    assert 2 * LAYER_BYTES <= max(log.sizes) <= BUDGET
    assert not list((tmp_path / "store").rglob("*.npy"))  # every group freed after scoring
    pd.testing.assert_frame_equal(_table(tmp_path / "budget"), unbudgeted)
    assert len(unbudgeted) == len(LAYERS) * 2


def test_a_killed_budgeted_sweep_resumes_at_the_first_unfinished_group(tmp_path, monkeypatch, unbudgeted):
    real_score = memprobe.sweep.run.score_cell
    scored = []

    def dies_in_the_second_group(benchmark, layer, *args):
        if layer.name == LAYERS[3]:
            raise KeyboardInterrupt("killed while scoring the second group")
        scored.append(layer.name)
        return real_score(benchmark, layer, *args)

    monkeypatch.setattr(memprobe.sweep.run, "score_cell", dies_in_the_second_group)
    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path / "out", tmp_path / "store", max_store=BUDGET)
    cells = tmp_path / "out" / "torchvision_resnet18" / "cells"
    first_group = {p: p.stat().st_mtime_ns for layer in LAYERS[:2] for p in cells.glob(f"*/{layer}.json")}
    assert len(first_group) == 4

    monkeypatch.setattr(memprobe.sweep.run, "score_cell", real_score)
    log = ExtractionLog(monkeypatch, tmp_path / "store")
    _sweep(tmp_path / "out", tmp_path / "store", max_store=BUDGET)
    extracted = {layer for _, layers in log.calls for layer in layers}
    assert set(LAYERS[3:]) <= extracted and not extracted & set(LAYERS[:2])  # nor re-extracted
    assert {p: p.stat().st_mtime_ns for p in first_group} == first_group  # not rescored
    pd.testing.assert_frame_equal(_table(tmp_path / "out"), unbudgeted)


def test_a_budget_smaller_than_one_layer_names_the_smallest_that_works(tmp_path):
    with pytest.raises(MemprobeError, match=f"smallest budget that works is {LAYER_BYTES / 1e6:.1f} MB"):
        _sweep(tmp_path / "out", tmp_path / "store", max_store=LAYER_BYTES - 1)
    assert not list((tmp_path / "store").rglob("*.npy"))


def test_pca_fits_count_in_the_budget_and_are_freed_with_their_group(tmp_path, monkeypatch):
    # pca:8 fitted on 10 reference images: each layer's fit holds (10 raw + 8 components + 1 mean) × 200,704
    # float32 values on disk at its peak, 15.3 MB, far more than its 60 × 8 features
    reference = image_set(tmp_path / "reference", 10, name="reference", seed=1)
    monkeypatch.setattr(memprobe.sweep.run, "get_reducer",
                        lambda spec: get_reducer(spec, reference=reference))
    config = dataclasses.replace(CONFIG, reducer="pca:8")
    fit_bytes = (10 + 8 + 1) * 64 * 56 * 56 * 4
    budget = int(2.5 * fit_bytes)
    store = tmp_path / "store"
    sizes_while_fitting = []
    real_fit = PCAReducer.fit

    def polled_fit(self, activations, folder):
        sizes_while_fitting.append(sum(p.stat().st_size for p in store.rglob("*.npy")))
        return real_fit(self, activations, folder)

    monkeypatch.setattr(PCAReducer, "fit", polled_fit)
    log = ExtractionLog(monkeypatch, store)
    budgeted = _sweep(tmp_path / "budget", store, config, max_store=budget)
    assert len({layers for _, layers in log.calls}) == 3 and len(sizes_while_fitting) == len(LAYERS)
    assert fit_bytes < max(sizes_while_fitting + log.sizes) <= budget
    assert not list(store.rglob("*.npy"))  # activations, raw reference activations and fits all freed

    monkeypatch.setattr(memprobe.sweep.run, "extract", ExtractionLog.real)
    unbudgeted = _sweep(tmp_path / "all", tmp_path / "store-all", config)
    pd.testing.assert_frame_equal(budgeted, unbudgeted)
