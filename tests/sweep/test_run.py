"""The layer sweep through the CLI: schema and real scores, resume after a kill, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest
import torch

from memprobe.cli import main
from memprobe.sweep import SweepConfig

REPO = Path(__file__).resolve().parents[2]

SCHEMA = [
    "model", "weights", "layer", "call_index", "relative_depth", "units", "benchmark",
    "raw", "ceiling", "ceiled", "reducer", "n_stimuli", "metric", "n_components", "cv", "n_splits",
    "split_seed", "stratification", "ceiling_formula",
]  # fmt: skip

SMALL = [
    "--model", "torchvision:resnet18", "--weights", "random", "--benchmarks",
    "rsa92.IT-monkey-rsa,lnsim.memorability-pls", "--subset", "60", "--batch-size", "16",
    "--workers", "0",
]  # fmt: skip


def _sweep(*arguments: str) -> int:
    return main(["sweep", *arguments])


@pytest.mark.slow
def test_resmem_deep_layers_predict_lnsim_memorability_far_better_than_random_weights(tmp_path, capsys):
    layers = "layer1.0,layer4.2,avgpool"
    common = ["--model", "resmem:resnet152", "--benchmarks", "lnsim.memorability-pls", "--layers", layers,
              "--subset", "400", "--workers", "1"]  # fmt: skip
    assert _sweep(*common, "--out", str(tmp_path / "trained")) == 0
    assert _sweep(*common, "--weights", "random", "--out", str(tmp_path / "random")) == 0
    trained = pd.read_csv(tmp_path / "trained" / "resmem_resnet152" / "scores.csv").set_index("layer")
    untrained = pd.read_csv(tmp_path / "random" / "resmem_resnet152" / "scores.csv").set_index("layer")

    assert set(SCHEMA) <= set(trained.reset_index().columns)
    assert len(trained) == 3 and set(trained["benchmark"]) == {"lnsim.memorability-pls"}
    assert (trained["n_stimuli"] == 400).all() and (trained["n_splits"] == 5).all()
    assert trained["relative_depth"].is_monotonic_increasing
    assert trained.loc["avgpool", "raw"] > 0.3
    assert trained.loc["avgpool", "raw"] > untrained.loc["avgpool", "raw"] + 0.15
    assert trained.loc["avgpool", "raw"] > trained.loc["layer1.0", "raw"]
    assert 0.7 < trained["ceiling"].iloc[0] < 0.85  # LNSIM human split-half consistency
    splits = pd.read_csv(tmp_path / "trained" / "resmem_resnet152" / "splits.csv")
    assert len(splits) == 3 * 5
    assert "Best layer per benchmark" in capsys.readouterr().out


def _cells(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.glob("*/cells/*/*.json")}


def test_killed_sweep_resumes_without_rescoring_and_gives_the_same_table(tmp_path):
    reference = tmp_path / "reference"
    assert _sweep(*SMALL, "--out", str(reference)) == 0
    expected = pd.read_csv(reference / "torchvision_resnet18" / "scores.csv")
    assert len(expected) == 2 * expected["layer"].nunique() and expected["layer"].nunique() >= 40

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "memprobe.cli", "sweep", *SMALL, "--out", str(out)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 900  # extraction first: minutes on a loaded 2-core machine
    while len(_cells(out)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = _cells(out)
    assert 3 <= len(finished) < len(expected), "the kill should land mid-way through the scoring"
    assert not (out / "torchvision_resnet18" / "scores.csv").exists()

    assert _sweep(*SMALL, "--out", str(out)) == 0
    resumed = pd.read_csv(out / "torchvision_resnet18" / "scores.csv")
    pd.testing.assert_frame_equal(resumed, expected)
    after = _cells(out)
    assert all(after[path] == mtime for path, mtime in finished.items()), "finished units were rescored"
    assert len(after) == len(expected)


def test_unknown_benchmark_lists_the_known_ones(tmp_path, capsys):
    assert _sweep("--model", "torchvision:resnet18", "--benchmarks", "lnsim.memorablity-pls",
                  "--out", str(tmp_path)) == 1  # fmt: skip
    error = capsys.readouterr().err
    assert "unknown benchmark" in error and "lnsim.memorablity-pls" in error
    assert "lnsim.memorability-pls" in error and "cowley_v4.V4-pls" in error


def test_layer_filter_matching_nothing_is_an_error(tmp_path, capsys):
    code = _sweep("--model", "torchvision:resnet18", "--weights", "random", "--benchmarks",
                  "rsa92.IT-monkey-rsa", "--layers", "transformer.*", "--out", str(tmp_path))  # fmt: skip
    assert code == 1
    assert "no layer matches 'transformer.*'" in capsys.readouterr().err


def test_unwritable_output_directory_is_an_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = _sweep("--model", "torchvision:resnet18", "--weights", "random", "--benchmarks",
                  "rsa92.IT-monkey-rsa", "--out", str(blocker / "results"))  # fmt: skip
    assert code == 1
    error = capsys.readouterr().err
    assert "not writable" in error and str(blocker / "results") in error


@pytest.mark.parametrize("option, value, message", [
    ("--pls-device", "cuda:7", "'cuda:7': torch sees"),  # no machine here has 8 GPUs
    ("--device", "gpu", "'gpu' is not a torch device"),
])
def test_a_device_this_machine_lacks_is_an_error_before_any_work(tmp_path, capsys, option, value, message):
    assert _sweep(*SMALL, option, value, "--out", str(tmp_path)) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "torchvision_resnet18").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pls_on_cuda_gives_the_cpu_scores_in_the_same_output_folder(tmp_path):
    """By default the PLS fits follow --device; the device is not part of the configuration."""
    small = [*SMALL[:4], "--benchmarks", "cowley_v4.V4-pls,rsa92.IT-monkey-rsa", *SMALL[6:],
             "--layers", "layer2,layer3.1,fc", "--device", "cuda"]
    assert _sweep(*small, "--pls-device", "cpu", "--out", str(tmp_path / "cpu")) == 0
    assert _sweep(*small, "--out", str(tmp_path / "cuda")) == 0
    on_cpu, on_cuda = (pd.read_csv(tmp_path / d / "torchvision_resnet18" / "scores.csv")
                       for d in ("cpu", "cuda"))
    assert len(on_cuda) == 2 * 3 and on_cuda["raw"].notna().all()
    assert (on_cuda["raw"] - on_cpu["raw"]).abs().max() < 1e-8
    (tmp_path / "cuda" / "torchvision_resnet18" / "scores.csv").unlink()
    assert _sweep(*small, "--pls-device", "cpu", "--out", str(tmp_path / "cuda")) == 0  # same configuration


def test_output_folder_of_another_configuration_is_refused(tmp_path, capsys):
    assert _sweep(*SMALL, "--out", str(tmp_path)) == 0
    other = [*SMALL, "--reducer", "pool"]
    assert _sweep(*other, "--out", str(tmp_path)) == 1
    assert "another configuration" in capsys.readouterr().err


def test_a_layer_with_constant_output_is_recorded_without_a_score(tmp_path, capsys):
    import numpy as np
    import xarray as xr

    from memprobe.benchmarks import load_benchmark
    from memprobe.features import list_layers
    from memprobe.probe import _print_summary
    from memprobe.sweep import RunFolder, SweepConfig
    from memprobe.sweep.run import score_cell
    from memprobe.zoo import load_model

    benchmark = load_benchmark("lnsim.memorability-pls", subset=60)
    (stimuli,) = benchmark.stimulus_sets()
    layers = list_layers(load_model("torchvision:resnet18", weights="random"), min_units=24).layers[:2]
    config = SweepConfig(model="torchvision:resnet18", weights="random", benchmarks=(benchmark.identifier,))
    folder = RunFolder(tmp_path, config.model)
    rng = np.random.default_rng(0)
    for layer, values in zip(layers, (np.zeros((60, 30)), rng.standard_normal((60, 30))), strict=True):
        features = {stimuli.name: xr.DataArray(values, dims=("presentation", "neuroid"),
                                               coords={"stimulus_id": ("presentation", list(stimuli.ids))})}
        with pytest.warns(UserWarning) if values.std() == 0 else nullcontext():
            record, details = score_cell(benchmark, layer, features, config, "none")
        folder.write_cell(benchmark.identifier, layer.name, record, details)
    scores = folder.collect([benchmark.identifier], [layer.name for layer in layers])
    constant, varying = scores.iloc[0], scores.iloc[1]
    assert np.isnan(constant["raw"]) and "constant over its" in constant["unscored"]
    assert np.isfinite(varying["raw"]) and pd.isna(varying["unscored"])
    _print_summary(scores, folder.path)
    assert f"no score: {layers[0].name} × lnsim.memorability-pls" in capsys.readouterr().out


def test_per_layer_details_are_gathered_into_one_file_per_benchmark(tmp_path):
    import numpy as np
    import xarray as xr

    from memprobe.sweep import RunFolder

    folder = RunFolder(tmp_path, "toy")
    rng = np.random.default_rng(0)
    written = {}
    for layer in ("conv1", "layer1.0", "layer4"):
        written[layer] = xr.DataArray(rng.standard_normal((10, 7)), dims=("split", "neuroid"),
                                      coords={"neuroid_id": ("neuroid", [f"n{i}" for i in range(7)])})
        folder.write_cell("bench", layer, {"model": "toy", "splits": []}, written[layer])
    folder.write_cell("bench", "fc", {"model": "toy", "splits": []}, None)  # fc has no details
    folder.collect(["bench"], ["conv1", "layer1.0", "layer4", "fc"])
    gathered = folder.details("bench")
    assert gathered.sizes == {"layer": 3, "split": 10, "neuroid": 7}
    for layer, values in written.items():
        np.testing.assert_allclose(gathered.sel(layer=layer).values, values.values, rtol=1e-6)
    assert list(gathered["neuroid_id"].values) == [f"n{i}" for i in range(7)]


def test_float32_pls_gives_the_float64_scores_and_is_its_own_configuration(tmp_path):
    layers = ["--layers", "layer3.*"]  # random weights, 60 images: some folds run out of rank early
    assert _sweep(*SMALL, *layers, "--out", str(tmp_path / "f64")) == 0
    assert _sweep(*SMALL, *layers, "--pls-dtype", "float32", "--out", str(tmp_path / "f32")) == 0
    runs = ("f64", "f32")
    double, single = (pd.read_csv(tmp_path / r / "torchvision_resnet18" / "scores.csv") for r in runs)
    pls = single["benchmark"] == "lnsim.memorability-pls"
    assert set(single.loc[pls, "dtype"]) == {"float32"} and set(double.loc[pls, "dtype"]) == {"float64"}
    assert (single["raw"] - double["raw"]).abs().max() < 1e-3
    assert _sweep(*SMALL, *layers, "--pls-dtype", "float32", "--out", str(tmp_path / "f64")) == 1


def test_a_sweep_lists_the_layers_once_whatever_the_number_of_stimulus_sets(tmp_path, monkeypatch):
    import memprobe.features.layers

    listings = []
    real_dummy_input = memprobe.features.layers.dummy_input

    def counted(*args, **kwargs):
        listings.append(args)
        return real_dummy_input(*args, **kwargs)

    monkeypatch.setattr(memprobe.features.layers, "dummy_input", counted)
    # SMALL scores two stimulus sets: LNSIM and the 92 images.
    assert _sweep(*SMALL, "--layers", "layer4.1,avgpool", "--out", str(tmp_path)) == 0
    assert len(listings) == 1


def test_distinct_layers_leave_out_repeated_values_and_are_their_own_configuration(tmp_path):
    layers = ["--layers", "layer4.1*"]  # layer4.1 returns the values of its last relu, layer4.1.relu@2
    assert _sweep(*SMALL, *layers, "--out", str(tmp_path / "all")) == 0
    assert _sweep(*SMALL, *layers, "--distinct-layers", "--out", str(tmp_path / "distinct")) == 0
    every, distinct = (pd.read_csv(tmp_path / run / "torchvision_resnet18" / "scores.csv")
                       for run in ("all", "distinct"))
    assert set(every["layer"]) - set(distinct["layer"]) == {"layer4.1"}
    shared = every[every["layer"] != "layer4.1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(distinct, shared)
    assert _sweep(*SMALL, *layers, "--out", str(tmp_path / "distinct")) == 1


def test_a_committed_output_folder_keeps_its_digest_as_the_configuration_grows():
    recorded = json.loads((REPO / "results" / "resmem_resnet152" / "sweep.json").read_text())
    config = SweepConfig(**{**recorded["config"], "benchmarks": tuple(recorded["config"]["benchmarks"])})
    assert config.digest() == recorded["config_digest"]
