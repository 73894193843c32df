"""Against the real single-node SLURM that scripts/setup_slurm.sh starts: arrays, collect, scancel, resubmit.

memprobe's sweep and fine-tuning run as array tasks and must reproduce a local run exactly. The fault
tests use ``slurm_probe_runner`` (two random-weight CNNs × LNSIM and V4 subsets of the real data), whose
per-layer pace and log of computed scores make a mid-run cancel and "nothing recomputed" observable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from slurm_helpers import SUPPORT, computed, lnsim_folder, write_config

from memprobe import slurm
from memprobe.cli import main
from memprobe.slurm.status import log_paths

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sinfo") is None, reason="no SLURM; run scripts/setup_slurm.sh as root"),
]


@pytest.fixture(autouse=True)
def runner_importable(monkeypatch):
    """The runner module must import in the test and in the SLURM tasks (sbatch exports the environment)."""
    monkeypatch.syspath_prepend(str(SUPPORT))
    monkeypatch.setenv("PYTHONPATH", str(SUPPORT))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweep run in this process: the table every SLURM run must reproduce exactly."""
    folder = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SUPPORT))
        config = slurm.load_config(write_config(folder))
        slurm.run_here(config)
    return slurm.collect(config.out, write=False)


def _queued(job_id: str) -> list[str]:
    result = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", job_id], capture_output=True,
                            text=True)
    return result.stdout.split()[::2]


def _wait(job_id: str, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while _queued(job_id):
        if time.time() > deadline:
            subprocess.run(["scancel", job_id])
            pytest.fail(f"array job {job_id} still queued after {timeout} s: {_queued(job_id)}")
        time.sleep(1)


def _submit(config_path, capsys, *flags) -> str:
    assert main(["submit", "sweep", "--config", str(config_path), "--cluster", "slurm", *flags]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("submitted job"))
    return line.split()[2]


# memprobe's own sweep: two random-weight ResNets, their four stages, an LNSIM subset and the 92 RSA images.
REAL_SWEEP = {
    "models": ["torchvision:resnet18", "torchvision:resnet34"],
    "runners": {},
    "layers": ["layer1", "layer2", "layer3", "layer4"],
    "options": {"batch_size": 20, "num_workers": 0},
    "stimulus_sets": [{"name": "lnsim", "benchmarks": ["lnsim.memorability-pls"], "subset": 40},
                      {"name": "rsa92", "benchmarks": ["rsa92.IT-monkey-rsa"]}],
}


def test_array_sweep_collects_the_table_of_a_local_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEMPROBE_CACHE", str(tmp_path / "cache"))  # the tasks extract their own features
    path = write_config(tmp_path, **REAL_SWEEP)
    job_id = _submit(path, capsys, "--array-parallelism", "2")
    assert main(["submit", "sweep", "--config", str(path), "--cluster", "slurm"]) == 0
    out = capsys.readouterr().out  # resubmitting while the array is queued or running submits nothing
    assert "nothing to submit: every task" in out and "is queued or running" in out
    assert f"as job {job_id}_3, not resubmitted: sweep/torchvision:resnet34/rsa92" in out

    # The same sweep in a fresh local process, one thread like each task, with a cache of its own.
    (tmp_path / "here").mkdir()
    here = write_config(tmp_path / "here", **REAL_SWEEP)
    command = [sys.executable, "-m", "memprobe.cli", "submit", "sweep", "--config", str(here), "--here"]
    subprocess.run(command, check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1", "MEMPROBE_CACHE": str(tmp_path / "here-cache")})
    _wait(job_id)

    run = tmp_path / "run"
    tasks = slurm.recorded_tasks(run, "sweep")
    markers = [json.loads(task.done_path.read_text()) for task in tasks]
    assert [marker["slurm_job_id"] for marker in markers] == [f"{job_id}_{i}" for i in range(4)]
    assert main(["collect", str(run)]) == 0
    table = slurm.collect(run, write=False)
    assert len(pd.read_csv(run / "sweep_scores.csv")) == len(table) == 16
    assert set(table["layer"]) == set(REAL_SWEEP["layers"])
    local = slurm.collect(tmp_path / "here" / "run", write=False)
    pd.testing.assert_frame_equal(table, local, check_exact=True)

    assert main(["submit", "sweep", "--config", str(path), "--cluster", "slurm"]) == 0
    assert "nothing to submit: every task" in capsys.readouterr().out


def test_cancelled_task_is_reported_resubmitted_alone_and_resumes(tmp_path, capsys, reference):
    path = write_config(tmp_path, delay_s=3.0)  # SIGTERM is ignored by submitit; SIGKILL follows in ~7 s
    run = tmp_path / "run"
    job_id = _submit(path, capsys, "--array-parallelism", "2")
    tasks = {task.key: task for task in slurm.recorded_tasks(run, "sweep")}
    victim = tasks["sweep/toy:resnet18/v4"]  # task 1, running alongside task 0 from the start
    deadline = time.time() + 300
    while len(computed(victim)) < 1:
        assert time.time() < deadline, f"task {job_id}_1 never got going: {_queued(job_id)}"
        time.sleep(0.2)
    assert {entry.task.key: entry.state for entry in slurm.task_states(run)}[victim.key] == "running"
    subprocess.run(["scancel", f"{job_id}_1"], check=True)
    _wait(job_id)

    states = {entry.task.key: entry for entry in slurm.task_states(run)}
    assert states[victim.key].state == "failed" and states[victim.key].job_id == f"{job_id}_1"
    assert all(path.parent.name == f"{job_id}_1" for path in states[victim.key].logs)
    assert any(path.is_file() for path in states[victim.key].logs)
    assert sorted(entry.state for entry in states.values()) == ["done", "done", "done", "failed"]
    assert main(["status", str(run)]) == 0
    assert f"failed   sweep/toy:resnet18/v4 job {job_id}_1" in capsys.readouterr().out
    with pytest.raises(slurm.SlurmError, match="1 of 4 tasks have no result: sweep/toy:resnet18/v4"):
        slurm.collect(run)

    partial = computed(victim)
    finished = {key: (task.done_path.read_text(), computed(task)) for key, task in tasks.items()
                if key != victim.key}
    assert main(["submit", "sweep", "--config", str(path), "--cluster", "slurm"]) == 0
    out = capsys.readouterr().out
    assert f"resubmitting {victim.key}: job {job_id}_1 ended without a result" in out
    second = next(line for line in out.splitlines() if line.startswith("submitted job")).split()[2]
    assert second != job_id
    submissions = (run / "submissions.jsonl").read_text().splitlines()
    resubmitted = json.loads(submissions[-1])["jobs"]  # one task: submitit sends a plain job, no array
    assert list(resubmitted) == [victim.key] and resubmitted[victim.key].split("_")[0] == second
    _wait(second)

    assert {key: (task.done_path.read_text(), computed(task)) for key, task in tasks.items()
            if key != victim.key} == finished
    layers = [line.split()[1] for line in computed(victim)]
    assert computed(victim)[: len(partial)] == partial and len(layers) == len(set(layers)) == 4
    pd.testing.assert_frame_equal(slurm.collect(run), reference, check_exact=True)


def test_a_task_that_raises_is_reported_failed_with_its_error_and_logs(tmp_path, capsys):
    too_many = {"name": "v4", "benchmarks": ["cowley_v4.210305-pls"], "subset": 401}  # the session has 400
    path = write_config(tmp_path, models=["toy:resnet18"], stimulus_sets=[too_many])
    job_id = _submit(path, capsys)
    _wait(job_id)
    (entry,) = slurm.task_states(tmp_path / "run")
    assert entry.state == "failed" and entry.detail.startswith("raised ValueError")
    assert "Cannot take a larger sample than population" in entry.logs[0].read_text()
    assert main(["status", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "0 done, 0 running, 0 pending, 1 failed" in out and f"log: {entry.logs[0]}" in out


def _scontrol(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout


def test_preempted_task_is_requeued_and_resumes_from_its_layer_results(tmp_path, capsys, reference):
    lnsim = {"name": "lnsim", "benchmarks": ["lnsim.memorability-pls"], "subset": 40}
    path = write_config(tmp_path, delay_s=3.0, models=["toy:resnet18"], stimulus_sets=[lnsim])
    job_id = _submit(path, capsys)
    (task,) = slurm.recorded_tasks(tmp_path / "run", "sweep")
    deadline = time.time() + 300
    while len(computed(task)) < 1:
        assert time.time() < deadline, f"job {job_id} never got going: {_scontrol(job_id)}"
        time.sleep(0.2)
    # What SLURM does on preemption: SIGTERM, then the signal submitit asked for (USR2) to checkpoint. USR2
    # goes once the task has handled the TERM: a TERM relayed late (a loaded machine) would also reach, and
    # kill, the `scontrol requeue` that submitit's USR2 handler runs.
    subprocess.run(["scancel", "--signal=TERM", job_id], check=True)
    log = log_paths(tmp_path / "run", job_id)[0]
    while not (log.is_file() and "Bypassing signal SIGTERM" in log.read_text()):
        assert time.time() < deadline, f"job {job_id} never handled its SIGTERM: {_scontrol(job_id)}"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    requeued = ("Restarts=1", "JobState=PENDING", "Reason=BeginTime")
    while not all(field in _scontrol(job_id) for field in requeued):
        assert time.time() < deadline, f"job {job_id} was not requeued: {_scontrol(job_id)}"
        time.sleep(0.5)
    # A requeued job waits 2 minutes (BeginTime) before it may start again; let it start now.
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _wait(job_id)

    assert json.loads(task.done_path.read_text())["slurm_job_id"] == job_id
    layers = [line.split()[1] for line in computed(task)]
    assert layers == ["layer1", "layer2", "layer3", "layer4"]  # layer1 was not recomputed after the requeue
    expected = reference.query("model == 'toy:resnet18' and benchmark == 'lnsim.memorability-pls'")
    pd.testing.assert_frame_equal(slurm.collect(tmp_path / "run"), expected.reset_index(drop=True),
                                  check_exact=True)


def test_finetune_array_matches_a_local_run(tmp_path, capsys):
    """memprobe's own fine-tuning runner (frozen random-weight backbone, linear head, 2 folds, 1 epoch),
    in a SLURM task and in a fresh local process with one thread, like the task."""
    settings = {"data": lnsim_folder(tmp_path / "data"), "head": "linear", "folds": 2, "frozen": True,
                "max_epochs": 1}
    model = ["torchvision:resnet18"]
    (tmp_path / "here").mkdir()
    here = write_config(tmp_path / "here", finetune=settings, models=model, runners={})
    command = [sys.executable, "-m", "memprobe.cli", "submit", "finetune", "--config", str(here), "--here"]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    path = write_config(tmp_path, finetune=settings, models=model, runners={})
    assert main(["submit", "finetune", "--config", str(path), "--cluster", "slurm"]) == 0
    job_id = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("submitted job"))
    _wait(job_id.split()[2])
    table = slurm.collect(tmp_path / "run", "finetune")
    assert list(table["fold"].astype(str)) == ["0", "1", "mean", "overall"]
    local = slurm.collect(tmp_path / "here" / "run", "finetune")
    pd.testing.assert_frame_equal(table, local, check_exact=True)
