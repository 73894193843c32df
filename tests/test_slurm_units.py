"""Units of work without a scheduler: expansion, validation, dry runs, resume, collect's checks, plan."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_helpers import TESTS, computed, write_config

from memprobe import slurm
from memprobe.cli import main
from memprobe.errors import BenchmarkError, ModelError
from memprobe.slurm_plan import GPU_SCORING_SPEEDUP, Measurements, plan

REPO = TESTS.parent


@pytest.fixture(autouse=True)
def runner_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The probe sweep run in this process once; tests copy or read it, never change it."""
    folder = tmp_path_factory.mktemp("here")
    config = slurm.load_config(write_config(folder))
    slurm.run_here(config)
    return config


def test_units_expand_patterns_and_groups(tmp_path):
    config = slurm.load_config(write_config(tmp_path))
    units = slurm.prepare_run(config, "sweep")
    assert [unit.key for unit in units] == [
        "sweep/toy:resnet18/lnsim", "sweep/toy:resnet18/v4",
        "sweep/toy:mobilenet_v3_small/lnsim", "sweep/toy:mobilenet_v3_small/v4",
    ]
    assert units[1].arguments["benchmarks"] == ["cowley_v4.210305-pls"]
    assert units[1].arguments["subset"] == 40 and units[1].arguments["delay_s"] == 0.0
    assert len({unit.directory for unit in units}) == 4


@pytest.mark.parametrize(("change", "error", "named"), [
    ({"models": ["toy:resnet18", "toy:vgg99"]}, ModelError, "toy:vgg99"),
    ({"stimulus_sets": [{"name": "v4", "benchmarks": ["cowley_v4.999999-pls"]}]}, BenchmarkError,
     "cowley_v4.999999-pls"),
])
def test_unknown_model_or_benchmark_is_rejected_before_anything_is_written(tmp_path, capsys, change, error,
                                                                           named):
    path = write_config(tmp_path, **change)
    with pytest.raises(error, match=named):
        slurm.submit(slurm.load_config(path), "sweep")
    assert main(["submit", "sweep", "--config", str(path)]) == 1
    assert named in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_dry_run_prints_sbatch_parameters_and_units_and_submits_nothing(tmp_path, capsys):
    path = write_config(tmp_path)
    code = main(["submit", "sweep", "--config", str(path), "--dry-run", "--partition", "gpu",
                 "--gpus-per-task", "1", "--mem", "6", "--array-parallelism", "3"])
    out = capsys.readouterr().out
    assert code == 0
    for line in ["#SBATCH --array=0-3%3", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=6GB",
                 "#SBATCH --time=10", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1",
                 "[3] sweep/toy:mobilenet_v3_small/v4"]:
        assert line in out
    assert not (tmp_path / "run").exists()


def test_profile_overrides_config_and_flags_override_profile(tmp_path, capsys):
    profile = tmp_path / "cluster.yaml"
    profile.write_text(yaml.safe_dump({"cluster": "site", "sweep": {
        "partition": "a100", "account": "lab", "mem_gb": 8, "setup": ["module load cuda/12.1"]}}))
    code = main(["submit", "sweep", "--config", str(write_config(tmp_path)), "--dry-run",
                 "--profile", str(profile), "--mem", "3"])
    out = capsys.readouterr().out
    assert code == 0
    for line in ["#SBATCH --partition=a100", "#SBATCH --account=lab", "#SBATCH --mem=3GB",
                 "#SBATCH --cpus-per-task=1", "  module load cuda/12.1"]:
        assert line in out
    profile.write_text(yaml.safe_dump({"sweeep": {}}))
    assert main(["submit", "sweep", "--config", str(write_config(tmp_path)), "--profile", str(profile)]) == 1
    assert "unknown keys ['sweeep']" in capsys.readouterr().err


def test_finetune_units_are_one_per_model_with_the_config_settings(tmp_path):
    settings = {"data": "lnsim", "head": "resmemnet", "folds": 2, "frozen": True, "train_images": 2000}
    config = slurm.load_config(write_config(tmp_path, finetune=settings))
    units = slurm.expand_units(config, "finetune", models=["toy:resnet18", "toy:mobilenet_v3_small"])
    assert [unit.key for unit in units] == ["finetune/toy:resnet18/resmemnet",
                                            "finetune/toy:mobilenet_v3_small/resmemnet"]
    assert units[0].arguments == {"weights": "random", "seed": 0, "data": "lnsim", "head": "resmemnet",
                                  "folds": 2, "frozen": True}
    assert units[0].runner == "memprobe.slurm:finetune_unit"


def test_a_finished_run_is_not_recomputed_and_a_broken_unit_resumes_at_its_layer(finished_run, tmp_path):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    config = slurm.load_run(tmp_path / "run")  # a moved run directory works where it now is
    units = slurm.prepare_run(config, "sweep")
    before = {unit.key: computed(unit) for unit in units}
    assert all(len(lines) == 4 for lines in before.values())
    slurm.run_here(config)
    assert {unit.key: computed(unit) for unit in units} == before

    # As if the task had died after three layers: no marker, no table, one layer result missing.
    broken = units[2]
    broken.done_path.unlink()
    broken.table_path.unlink()
    (broken.directory / "work" / "lnsim.memorability-pls" / "features.12.json").unlink()
    assert broken() == f"{broken.key}: 4 rows"
    assert computed(broken) == before[broken.key] + ["lnsim.memorability-pls features.12"]
    pd.testing.assert_frame_equal(slurm.collect(config.out, write=False),
                                  slurm.collect(finished_run.out, write=False), check_exact=True)


def test_collect_names_missing_units_and_duplicated_rows(finished_run, tmp_path):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    units = slurm.recorded_units(tmp_path / "run", "sweep")
    table = slurm.collect(tmp_path / "run")
    assert len(table) == 16 and set(table["model"]) == {"toy:resnet18", "toy:mobilenet_v3_small"}
    assert (tmp_path / "run" / "sweep_scores.csv").is_file()

    duplicate = pd.read_csv(units[0].table_path)
    duplicate.to_csv(units[2].table_path, index=False)
    with pytest.raises(slurm.SlurmError,
                       match=r"sweep/toy:resnet18/lnsim', 'sweep/toy:mobilenet_v3_small/lnsim"):
        slurm.collect(tmp_path / "run")

    units[1].done_path.unlink()
    units[3].table_path.unlink()
    with pytest.raises(slurm.SlurmError, match=r"2 of 4 units have no result: sweep/toy:resnet18/v4, "
                                                r"sweep/toy:mobilenet_v3_small/v4"):
        slurm.collect(tmp_path / "run")


def test_status_without_scheduler_reports_done_and_never_submitted(finished_run, tmp_path, capsys):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    units = slurm.recorded_units(tmp_path / "run", "sweep")
    units[0].done_path.unlink()
    states = {entry.unit.key: (entry.state, entry.detail) for entry in slurm.unit_states(tmp_path / "run")}
    assert states[units[0].key] == ("pending", "never submitted")
    assert [state for state, _ in states.values()].count("done") == 3
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "3 done, 0 running, 1 pending, 0 failed of 4 sweep units" in capsys.readouterr().out


def test_one_directory_holds_one_config(finished_run, tmp_path):
    path = write_config(tmp_path, out=str(finished_run.out), seed=1)
    with pytest.raises(slurm.SlurmError, match="different config"):
        slurm.run_here(slurm.load_config(path))


def test_runner_must_return_a_table(tmp_path):
    unit = slurm.Unit("sweep", "m", "p", str(tmp_path), "builtins:dict")
    with pytest.raises(slurm.SlurmError, match="returned dict, expected a non-empty pandas DataFrame"):
        unit()


def _measurements() -> Measurements:
    table = pd.DataFrame({
        "model": ["torchvision:resnet50", "toy:resnet18"], "images_per_s": [10.0, 40.0],
        "peak_mem_gb": [1.0, 0.5], "layers": [100, 50], "mean_units": [100_000, 10_000],
        "mean_channels": [500, 200], "params_m": [25.0, 11.0],
    }).set_index("model")
    return Measurements(table, decode_per_core=1000.0, pls_seconds_per_sample_feature=1e-8)


def test_plan_scales_with_images_and_flags_unmeasured_models(tmp_path):
    config = slurm.load_config(write_config(tmp_path, reducer={"name": "srp", "dim": 1000}))
    table, notes = plan(config, measurements=_measurements(), cpus_per_task=8)
    rows = table.set_index("unit")
    measured = rows.loc["toy:resnet18/lnsim"]
    # 40 images at min(1000 × 40/10 / 1.5, 8 × 1000) images/s; 50 layers × 1 benchmark × 5 splits fits.
    assert measured["forward_h"] == pytest.approx(40 / (4000 / 1.5) / 3600)
    assert measured["scoring_h"] == pytest.approx(50 * 5 * 1e-8 * 40 * 1000 / GPU_SCORING_SPEEDUP / 3600)
    assert measured["disk_gb"] == pytest.approx(40 * 50 * 1000 * 4 / 1e9)
    assert rows.loc["toy:resnet18/v4", "scoring_h"] == pytest.approx(measured["scoring_h"] * 4 / 5)
    assert not rows.loc["toy:mobilenet_v3_small/lnsim", "measured"]
    assert "toy:mobilenet_v3_small" in notes[-1]

    bigger = slurm.load_config(write_config(tmp_path, reducer={"name": "srp", "dim": 1000}, stimulus_sets=[
        {"name": "lnsim", "benchmarks": ["lnsim.memorability-pls"], "images": 2632, "subset": 80}]))
    doubled = plan(bigger, measurements=_measurements(), cpus_per_task=8)[0].set_index("unit")
    assert doubled.loc["toy:resnet18/lnsim", "gpu_h"] == pytest.approx(2 * measured["gpu_h"])


def test_measured_throughput_table_is_complete():
    facts = Measurements.load()
    assert "torchvision:resnet50" in facts.models.index
    assert (facts.models["images_per_s"] > 0).all() and (facts.models["layers"] >= 10).all()
    assert 0 < facts.pls_seconds_per_sample_feature < 1e-4 and facts.decode_per_core > 1


def test_paper_config_is_complete():
    raw = yaml.safe_load((REPO / "analyses" / "paper.yaml").read_text())
    config = slurm.parse_config(raw, path=REPO / "analyses" / "paper.yaml")
    benchmarks = [b for group in config.groups for b in group.benchmarks]
    assert config.models == ["paper64"]
    assert {"MajajHong2015public.IT-pls", "MajajHong2015public.V4-pls", "FreemanZiemba2013public.V1-pls",
            "FreemanZiemba2013public.V2-pls"} <= set(benchmarks)
    assert all(group.images for group in config.groups)
    assert config.finetune["folds"] == 5 and config.finetune["data"] == "lamem"
    assert json.loads(json.dumps(config.resources))["sweep"]["gpus_per_task"] == 1
    assert Path(config.out).name == "paper"


def test_paper_dry_run_expands_through_memprobe_registries(tmp_path, capsys):
    paper = REPO / "analyses" / "paper.yaml"
    out_dir = tmp_path / "paper"
    assert main(["submit", "sweep", "--config", str(paper), "--dry-run", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "would submit 192 task(s)" in out and "#SBATCH --array=0-191%32" in out
    assert "#SBATCH --gpus-per-task=1" in out and "#SBATCH --partition=gpu" in out
    assert "[0] sweep/torchvision:alexnet/lamem" in out and "[191] " in out
    assert not out_dir.exists()


@pytest.mark.parametrize(("models", "benchmark_id", "named"), [
    (["torchvision:resnet18", "torchvision:resnet1800"], "lnsim.memorability-pls", "torchvision:resnet1800"),
    (["torchvision:resnet18"], "lnsim.memorability-ridge", "lnsim.memorability-ridge"),
])
def test_real_registries_reject_unknown_names(tmp_path, capsys, models, benchmark_id, named):
    path = write_config(tmp_path, models=models, runners={},
                        stimulus_sets=[{"name": "lnsim", "benchmarks": [benchmark_id], "subset": 40}])
    assert main(["submit", "sweep", "--config", str(path), "--cluster", "slurm"]) == 1
    assert named in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_paper_finetune_dry_run_is_one_task_per_model(tmp_path, capsys):
    paper = REPO / "analyses" / "paper.yaml"
    out_dir = tmp_path / "paper"
    assert main(["submit", "finetune", "--config", str(paper), "--dry-run", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "would submit 64 task(s)" in out and "#SBATCH --array=0-63%16" in out
    assert "[0] finetune/torchvision:alexnet/linear" in out


def test_plan_command_prints_totals_and_what_is_assumed(tmp_path, capsys):
    path = write_config(tmp_path, reducer={"name": "srp", "dim": 512}, models=["toy:resnet18"])
    assert main(["plan", "--config", str(path), "--cpus-per-task", "4"]) == 0
    out = capsys.readouterr().out
    assert "total: 2 tasks" in out and "GPU-hours" in out and "--time" in out
    assert "note: assumed: GPU ResNet-50 forward" in out and "4 loader cores" in out
    assert "not measured, median rate and 263 layers assumed: toy:resnet18" in out


@pytest.mark.parametrize(("given", "parsed", "spec"), [
    ("srp", {"name": "srp"}, "srp"),
    ("srp:1024", {"name": "srp", "dim": 1024}, "srp:1024"),
    ({"name": "pca", "n_components": 100}, {"name": "pca", "n_components": 100}, "pca:100"),
])
def test_reducer_forms_reach_the_sweep_as_its_spec(tmp_path, given, parsed, spec):
    config = slurm.load_config(write_config(tmp_path, reducer=given))
    assert config.reducer == parsed and slurm._sweep_reducer(config.reducer) == spec


def test_a_bad_reducer_is_named(tmp_path):
    with pytest.raises(slurm.SlurmError, match="reducer 'pool:3'"):
        slurm.load_config(write_config(tmp_path, reducer="pool:3"))


def test_the_sweep_runner_takes_the_pls_precision_from_the_config_options(tmp_path, data_root):
    scores = slurm.sweep_unit("torchvision:resnet18", tmp_path, ["lnsim.memorability-pls"], "random",
                              ["layer4"], {"name": "pool"}, 40, 0, pls_dtype="float32", batch_size=20,
                              num_workers=0)
    assert scores["dtype"].tolist() == ["float32"]
    manifest = json.loads((tmp_path / "torchvision_resnet18" / "sweep.json").read_text())
    assert manifest["config"]["pls_dtype"] == "float32"
