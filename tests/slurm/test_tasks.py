"""Tasks without a scheduler: expansion, validation, dry runs, resume, collect's checks, plan."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_helpers import SUPPORT, computed, write_config

from memprobe import slurm
from memprobe.cli import main
from memprobe.errors import BenchmarkError, ModelError
from memprobe.features import ReducerSpec, list_layers
from memprobe.pls.fold_solver import kernel_form_is_cheaper
from memprobe.slurm.layer_table import LayerTable, format_shape, measure_missing
from memprobe.slurm.plan import COMPONENT_READ_BYTES_PER_S, HOST_OVERHEAD_GB, Measurements, plan
from memprobe.slurm.pls_cost import BenchmarkFits, PLSTiming, benchmark_fits, form_costs, multiply_adds
from memprobe.zoo import load_model, model_set

REPO = SUPPORT.parents[1]


@pytest.fixture(autouse=True)
def runner_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(SUPPORT))
    monkeypatch.setenv("PYTHONPATH", str(SUPPORT))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The probe sweep run in this process once; tests copy or read it, never change it."""
    folder = tmp_path_factory.mktemp("here")
    config = slurm.load_config(write_config(folder))
    slurm.run_here(config)
    return config


def test_tasks_expand_patterns_and_groups(tmp_path):
    config = slurm.load_config(write_config(tmp_path))
    tasks = slurm.prepare_run(config, "sweep")
    assert [task.key for task in tasks] == [
        "sweep/toy:resnet18/lnsim", "sweep/toy:resnet18/v4",
        "sweep/toy:mobilenet_v3_small/lnsim", "sweep/toy:mobilenet_v3_small/v4",
    ]
    assert tasks[1].arguments["benchmarks"] == ["cowley_v4.210305-pls"]
    assert tasks[1].arguments["subset"] == 40 and tasks[1].arguments["delay_s"] == 0.0
    assert len({task.directory for task in tasks}) == 4


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


def test_dry_run_prints_sbatch_parameters_and_tasks_and_submits_nothing(tmp_path, capsys):
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


def test_finetune_tasks_are_one_per_model_with_the_config_settings(tmp_path):
    settings = {"data": "lnsim", "head": "resmemnet", "folds": 2, "frozen": True, "train_images": 2000}
    config = slurm.load_config(write_config(tmp_path, finetune=settings))
    tasks = slurm.expand_tasks(config, "finetune", models=["toy:resnet18", "toy:mobilenet_v3_small"])
    assert [task.key for task in tasks] == ["finetune/toy:resnet18/resmemnet",
                                            "finetune/toy:mobilenet_v3_small/resmemnet"]
    assert tasks[0].arguments == {"weights": "random", "seed": 0, "data": "lnsim", "head": "resmemnet",
                                  "folds": 2, "frozen": True}
    assert tasks[0].runner == "memprobe.slurm:finetune_task"


def test_per_model_finetune_settings_override_the_section_for_matching_models(tmp_path):
    settings = {"data": "lnsim", "head": "linear", "max_epochs": 2,
                "per_model": {"toy:resnet*": {"frozen": True, "max_epochs": 100}}}
    config = slurm.load_config(write_config(tmp_path, finetune=settings))
    models = ["toy:resnet18", "toy:mobilenet_v3_small"]
    resnet, mobilenet = slurm.expand_tasks(config, "finetune", models=models)
    assert resnet.arguments == {"weights": "random", "seed": 0, "data": "lnsim", "head": "linear",
                                "max_epochs": 100, "frozen": True}
    assert mobilenet.arguments == {"weights": "random", "seed": 0, "data": "lnsim", "head": "linear",
                                   "max_epochs": 2}
    with pytest.raises(slurm.SlurmError, match=r"per_model pattern\(s\) \['toy:resnet\*'\] match none"):
        slurm.expand_tasks(config, "finetune", models=["toy:mobilenet_v3_small"])
    with pytest.raises(slurm.SlurmError, match="a mapping of model pattern"):
        slurm.load_config(write_config(tmp_path, finetune={"per_model": {"toy:*": True}}))


def test_a_finished_run_is_not_recomputed_and_a_broken_task_resumes_at_its_layer(finished_run, tmp_path):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    config = slurm.load_run(tmp_path / "run")  # a moved run directory works where it now is
    tasks = slurm.prepare_run(config, "sweep")
    before = {task.key: computed(task) for task in tasks}
    assert all(len(lines) == 4 for lines in before.values())
    slurm.run_here(config)
    assert {task.key: computed(task) for task in tasks} == before

    # As if the task had died after three layers: no marker, no table, one layer result missing.
    broken = tasks[2]
    broken.done_path.unlink()
    broken.table_path.unlink()
    (broken.directory / "work" / "lnsim.memorability-pls" / "features.12.json").unlink()
    assert broken() == f"{broken.key}: 4 rows"
    assert computed(broken) == before[broken.key] + ["lnsim.memorability-pls features.12"]
    pd.testing.assert_frame_equal(slurm.collect(config.out, write=False),
                                  slurm.collect(finished_run.out, write=False), check_exact=True)


def test_partial_collect_merges_the_models_whose_tasks_have_all_finished(finished_run, tmp_path, capsys):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    whole = slurm.collect(tmp_path / "run", write=False)
    unfinished = next(t for t in slurm.recorded_tasks(tmp_path / "run", "sweep") if t.model == "toy:resnet18")
    unfinished.done_path.unlink()
    with pytest.raises(slurm.SlurmError, match="1 of 4 tasks have no result"):
        slurm.collect(tmp_path / "run")
    assert main(["collect", str(tmp_path / "run"), "--partial"]) == 0
    assert "partial: 1 of 2 models have finished" in capsys.readouterr().out
    interim = pd.read_csv(tmp_path / "run" / "sweep_scores.csv")
    expected = whole[whole["model"] == "toy:mobilenet_v3_small"].reset_index(drop=True)
    pd.testing.assert_frame_equal(interim, expected, check_dtype=False)
    for task in slurm.recorded_tasks(tmp_path / "run", "sweep"):
        task.done_path.unlink(missing_ok=True)
    with pytest.raises(slurm.SlurmError, match="no model has finished all its sweep tasks yet"):
        slurm.collect(tmp_path / "run", partial=True)


def test_collect_names_missing_tasks_and_duplicated_rows(finished_run, tmp_path):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    tasks = slurm.recorded_tasks(tmp_path / "run", "sweep")
    table = slurm.collect(tmp_path / "run")
    assert len(table) == 16 and set(table["model"]) == {"toy:resnet18", "toy:mobilenet_v3_small"}
    assert (tmp_path / "run" / "sweep_scores.csv").is_file()

    duplicate = pd.read_csv(tasks[0].table_path)
    duplicate.to_csv(tasks[2].table_path, index=False)
    with pytest.raises(slurm.SlurmError,
                       match=r"sweep/toy:resnet18/lnsim', 'sweep/toy:mobilenet_v3_small/lnsim"):
        slurm.collect(tmp_path / "run")

    tasks[1].done_path.unlink()
    tasks[3].table_path.unlink()
    with pytest.raises(slurm.SlurmError, match=r"2 of 4 tasks have no result: sweep/toy:resnet18/v4, "
                                                r"sweep/toy:mobilenet_v3_small/v4"):
        slurm.collect(tmp_path / "run")


def test_status_without_scheduler_reports_done_and_never_submitted(finished_run, tmp_path, capsys):
    import shutil

    shutil.copytree(finished_run.out, tmp_path / "run")
    tasks = slurm.recorded_tasks(tmp_path / "run", "sweep")
    tasks[0].done_path.unlink()
    shutil.rmtree(tasks[0].directory / "work")
    states = {entry.task.key: (entry.state, entry.detail) for entry in slurm.task_states(tmp_path / "run")}
    assert states[tasks[0].key] == ("pending", "never submitted")
    (tasks[0].directory / "work" / "cells").mkdir(parents=True)
    (tasks[0].directory / "work" / "cells" / "a.json").write_text("{}")
    states = {entry.task.key: (entry.state, entry.detail) for entry in slurm.task_states(tmp_path / "run")}
    started = "never submitted; started here (--here): 1 work files, the last written 0 min ago"
    assert states[tasks[0].key] == ("pending", started)
    assert [state for state, _ in states.values()].count("done") == 3
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "3 done, 0 running, 1 pending, 0 failed of 4 sweep tasks" in capsys.readouterr().out


def test_one_directory_holds_one_config(finished_run, tmp_path):
    path = write_config(tmp_path, out=str(finished_run.out), seed=1)
    with pytest.raises(slurm.SlurmError, match=r"different config .*: seed differ"):
        slurm.run_here(slurm.load_config(path))


def test_a_resubmission_may_change_the_budget_and_resources_only(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run.out, run)
    resources = {"sweep": {"cpus_per_task": 2, "mem_gb": 4, "timeout_min": 60}}
    path = write_config(tmp_path, max_store_gb=2, resources=resources)
    assert all(line.endswith("already done") for line in slurm.run_here(slurm.load_config(path)))
    recorded = yaml.safe_load((run / "run.yaml").read_text())
    assert recorded["max_store_gb"] == 2 and recorded["resources"] == resources
    with pytest.raises(slurm.SlurmError, match=r"different config .*: reducer differ"):
        slurm.run_here(slurm.load_config(write_config(tmp_path, max_store_gb=3, reducer={"name": "srp"})))


def test_a_failing_task_here_does_not_stop_the_others(tmp_path):
    config = slurm.load_config(write_config(tmp_path, options={"fail_for": "toy:resnet18"}))
    with pytest.raises(slurm.SlurmError, match=r"2 of 4 sweep tasks failed \(the others ran\):\n"
                                               r"sweep/toy:resnet18/lnsim: toy:resnet18: made to fail"):
        slurm.run_here(config)
    done = [task.key for task in slurm.recorded_tasks(config.out, "sweep") if task.is_done()]
    assert done == ["sweep/toy:mobilenet_v3_small/lnsim", "sweep/toy:mobilenet_v3_small/v4"]


def test_runner_must_return_a_table(tmp_path):
    task = slurm.Task("sweep", "m", "p", str(tmp_path), "builtins:dict")
    with pytest.raises(slurm.SlurmError, match="returned dict, expected a non-empty pandas DataFrame"):
        task()


TOY_SHAPES = {"toy:resnet18": [(16, 32, 32)] * 4 + [(512,)], "toy:mobilenet_v3_small": [(8, 16, 16)] * 3}
TOY_COSTS = {
    "pls": {device: {"per_fit_s": 0.1, "per_fold_s": 0.01, "multiply_adds_per_s": 1e10, "device": device,
                     "source": "made up"} for device in ("cpu", "gpu")},
    "gpu_forward": {"model": "toy:resnet18", "device": "a GPU", "source": "made up", "flops_per_s": 1e12,
                    "store_bytes_per_s": 1e9, "bare_images_per_s": 500.0},
    "cpu_gemm_multiply_adds_per_s": 1e10,
}


def _measurements(models=tuple(TOY_SHAPES)) -> Measurements:
    """Made-up measurements of the toy models: 2 GFLOPs per image, 5 or 3 layers."""
    table = LayerTable.empty()
    for model in models:
        layers = [{"model": model, "layer": f"block{i}", "shape": format_shape(shape),
                   "units": math.prod(shape), "channels": shape[0]}
                  for i, shape in enumerate(TOY_SHAPES[model])]
        table = table.with_model({"model": model, "input_size": "224×224", "layers": len(layers),
                                  "params_m": 10.0, "gflops": 2.0, "peak_rss_gb": 1.0}, layers)
    return Measurements(table, TOY_COSTS, decode_per_core=1000.0)


def _pass_s(images: int, stored_values: int) -> float:
    """A pass with TOY_COSTS and 8 loader cores: 2 ms of GPU per image plus the writes, or the loaders."""
    return max(images / 8000, images * 2e9 / 1e12 + stored_values * 4 / 1e9)


def test_plan_groups_layers_under_the_store_budget_as_the_sweep_does(tmp_path):
    # srp:1000 keeps 1,000 of each 16,384-unit layer and all 512 of the last: 160 kB and 82 kB at 40 images
    config = slurm.load_config(write_config(tmp_path, reducer="srp:1000", max_store_gb=400e3 / 1e9))
    table, notes = plan(config, measurements=_measurements(), cpus_per_task=8)
    task = table.set_index("task").loc["toy:resnet18/lnsim"]
    assert task["passes"] == 3 and task["store_gb"] == pytest.approx(2 * 40 * 1000 * 4 / 1e9)
    assert task["forward_h"] * 3600 == pytest.approx(2 * _pass_s(40, 2 * 40 * 1000) + _pass_s(40, 40 * 512))
    lnsim_fit = PLSTiming(0.1, 0.01, 1e10, "")  # lnsim: one fit of 5 folds together, 1 target
    assert task["score_h"] * 3600 == pytest.approx(
        4 * lnsim_fit.seconds(40, 1000, 1, 25, 5) + lnsim_fit.seconds(40, 512, 1, 25, 5))
    assert task["pca_h"] == task["fits_gb"] == 0
    assert task["mem_gb"] == pytest.approx(1.0 + HOST_OVERHEAD_GB + 40 * 1000 * 12 / 1e9)
    assert task["basis"] == "layers: measured; gpu_rate: measured"
    assert "assumed" in table.set_index("task").loc["toy:mobilenet_v3_small/v4", "basis"]
    assert any(note.startswith("measured: every model's layers") for note in notes)
    assert not any(note.startswith("upper bound") for note in notes)
    distinct = slurm.load_config(write_config(tmp_path, reducer="srp:1000",
                                              options={"distinct_layers": True}))
    distinct_table, distinct_notes = plan(distinct, measurements=_measurements(), cpus_per_task=8)
    assert distinct_table.set_index("task").loc["toy:resnet18/lnsim", "layers"] == task["layers"]
    assert any(note.startswith("upper bound: the config sets distinct_layers") for note in distinct_notes)

    unlimited = plan(slurm.load_config(write_config(tmp_path, reducer="srp:1000")),
                     measurements=_measurements())[0].set_index("task").loc["toy:resnet18/lnsim"]
    assert unlimited["passes"] == 1 and unlimited["score_h"] == pytest.approx(task["score_h"])
    with pytest.raises(slurm.SlurmError, match="toy:resnet18/lnsim: a store budget of"):
        plan(slurm.load_config(write_config(tmp_path, reducer="srp:1000", max_store_gb=1e-6)),
             measurements=_measurements())


def test_pca_puts_a_model_s_stimulus_sets_in_one_task_whose_groups_fit_and_free_their_pca(tmp_path):
    config = slurm.load_config(write_config(tmp_path, reducer={"name": "pca", "n_components": 1000}))
    [task] = slurm.expand_tasks(config, models=["toy:resnet18"])
    assert task.part == "lnsim+v4"
    assert task.arguments["benchmarks"] == ["lnsim.memorability-pls", "cowley_v4.210305-pls"]
    task = plan(config, measurements=_measurements())[0].set_index("task").loc["toy:resnet18/lnsim+v4"]
    images = 80  # 40 of each set
    fits = 4 * 16384 * (1000 + 1000 + 1) * 4  # the four layers wider than 1,000 units: raw, components, mean
    assert task["images"] == images and task["fits_gb"] == pytest.approx(fits / 1e9)
    assert task["store_gb"] == pytest.approx((fits + images * (4 * 1000 + 512) * 4) / 1e9)
    components = 4 * 16384 * 1000 * 4
    fit_s = _pass_s(1000, 1000 * 4 * 16384) + 4 * 1000 * 2000 * 16384 / 1e10  # raw pass, Gram + components
    assert task["pca_fit_h"] * 3600 == pytest.approx(fit_s)
    reads_s = math.ceil(images / 32) * components / COMPONENT_READ_BYTES_PER_S
    assert task["pca_h"] * 3600 == pytest.approx(fit_s + reads_s)

    budget = 2.5 * (fits / 4 + images * 1000 * 4)  # two projected layers with their fits
    budgeted = plan(slurm.load_config(write_config(tmp_path, reducer="pca:1000", max_store_gb=budget / 1e9)),
                    measurements=_measurements())[0].set_index("task").loc["toy:resnet18/lnsim+v4"]
    assert budgeted["passes"] == 2 and budgeted["store_gb"] * 1e9 <= budget
    assert budgeted["fits_gb"] == pytest.approx(fits / 2 / 1e9)
    with pytest.raises(slurm.SlurmError, match="need the same 'subset'"):
        slurm.load_config(write_config(tmp_path, reducer="pca", stimulus_sets=[
            {"name": "lnsim", "benchmarks": ["lnsim.memorability-pls"], "subset": 40},
            {"name": "v4", "benchmarks": ["cowley_v4.210305-pls"], "subset": 20}])).task_sets()


def test_pls_cost_chooses_the_form_memprobe_pls_chooses():
    # n = 100, p = 1,000, one target, 5 folds: the kernel form (Gram matrix, factor, passes over n × n)
    kernel_form = 1000 * 100**2 / 2 + 100**3 / 3 + 100 * 100 + 25 * 2 * 12 * 100 * 100
    assert multiply_adds(100, 1000, 1, 25, 5) == pytest.approx(kernel_form)
    for n, p, q, folds in itertools.product([50, 3200, 58741], [24, 4096, 800_000], [1, 88], [1, 10]):
        feature, kernel = form_costs(n, p, q, 25, folds)
        assert (kernel < feature) == kernel_form_is_cheaper(n, p, q, 25, folds)
    assert benchmark_fits("lamem.memorability-pls", 100, 5) == BenchmarkFits(5, 100, 1, 1)
    assert benchmark_fits("MajajHong2015public.IT-pls", 3200, 10) == BenchmarkFits(1, 3200, 168, 10)
    assert benchmark_fits("rsa92.IT-monkey-rsa", 92, 1) is None


def test_measuring_a_model_records_the_layers_the_sweep_hooks(tmp_path):
    table = measure_missing(["torchvision:resnet18"], tmp_path, report=lambda line: None)
    model = table.models.loc["torchvision:resnet18"]
    catalogue = list_layers(load_model("torchvision:resnet18", weights="random"))
    assert table.model_layers("torchvision:resnet18") == [(layer.name, layer.shape) for layer in catalogue]
    assert model["layers"] == len(catalogue) and model["input_size"] == "224×224"
    assert model["gflops"] == pytest.approx(3.63, rel=0.01)  # 1.8 G multiply-adds
    assert model["params_m"] == pytest.approx(11.69, rel=0.01)
    assert 0.1 < model["peak_rss_gb"] < 8
    assert LayerTable.load(tmp_path).missing(["torchvision:resnet18", "torchvision:alexnet"]) == [
        "torchvision:alexnet"]


def test_committed_measurements_cover_the_paper_and_offline_models():
    facts = Measurements.load()
    models = facts.table.models
    assert not facts.table.missing(model_set("paper64") + model_set("offline"))
    counts = facts.table.layers.groupby("model").size()
    assert (counts.reindex(models.index) == models["layers"]).all() and (models["gflops"] > 0).all()
    assert facts.costs["gpu_forward"]["device"].startswith("NVIDIA H100")
    assert facts.costs["gpu_forward"]["model"] in models.index and facts.decode_per_core > 1
    for device in ("cpu", "gpu"):
        assert facts.costs["pls"][device]["multiply_adds_per_s"] > 1e8


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
    # pca:1000: one task per model over its three stimulus sets, so each PCA is fitted once
    assert "would submit 64 task(s)" in out and "#SBATCH --array=0-63%32" in out
    assert "#SBATCH --gpus-per-task=1" in out and "#SBATCH --partition=gpu" in out
    assert "[0] sweep/torchvision:alexnet/lamem+majajhong2015+freemanziemba2013" in out and "[63] " in out
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
    facts = _measurements(models=["toy:resnet18"])
    facts.table.save(tmp_path)
    (tmp_path / "costs.json").write_text(json.dumps(TOY_COSTS))
    (tmp_path / "machine.json").write_text(json.dumps({"decode_images_per_s_per_core": 1000.0}))
    path = write_config(tmp_path, reducer={"name": "srp", "dim": 512}, models=["toy:resnet18"])
    command = ["plan", "--config", str(path), "--cpus-per-task", "4", "--measurements", str(tmp_path)]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "total: 2 tasks" in out and "GPU-hours" in out and "--time" in out
    assert "disk: activation store up to" in out
    assert "note: measured: every model's layers" in out and "4 loader cores" in out

    everything = write_config(tmp_path, reducer="srp:512")
    assert main(["plan", "--config", str(everything), "--measurements", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "toy:mobilenet_v3_small" in error and "--measure" in error



@pytest.mark.parametrize(("given", "parsed", "spec"), [
    ("srp", ReducerSpec("srp"), "srp"),
    ("srp:1024", ReducerSpec("srp", 1024), "srp:1024"),
    ({"name": "pca", "n_components": 100}, ReducerSpec("pca", 100), "pca:100"),
])
def test_reducer_forms_reach_the_sweep_as_its_spec(tmp_path, given, parsed, spec):
    config = slurm.load_config(write_config(tmp_path, reducer=given))
    assert config.reducer == parsed
    assert {task.arguments["reducer"] for task in slurm.expand_tasks(config)} == {spec}


def test_a_bad_reducer_is_named(tmp_path):
    with pytest.raises(slurm.SlurmError, match="reducer 'pool:3'"):
        slurm.load_config(write_config(tmp_path, reducer="pool:3"))


def test_the_sweep_runner_takes_the_pls_precision_from_the_config_options(tmp_path, data_root):
    scores = slurm.sweep_task("torchvision:resnet18", tmp_path, ["lnsim.memorability-pls"], "random",
                              ["layer4"], {"name": "pool"}, 40, 0, pls_dtype="float32", batch_size=20,
                              num_workers=0)
    assert scores["dtype"].tolist() == ["float32"]
    manifest = json.loads((tmp_path / "torchvision_resnet18" / "sweep.json").read_text())
    assert manifest["config"]["pls_dtype"] == "float32"
