"""A config expands into tasks, one SLURM array task each.

A *task* is one model × one stimulus group (the benchmarks that share a stimulus set, so features are
extracted once; all the sets in one task when the reducer is fitted per model, as PCA is) for the sweep,
or one model (all its folds) for fine-tuning. Each task is a picklable callable: it returns at once when
its result is already on disk, otherwise it calls its runner (``module:function``) and writes the
runner's table atomically, then a ``done.json`` marker. The runner resumes from its own store under the
task's ``work/`` folder, so a requeued (preempted) task loses at most the layer it was on. Layout of a
run directory::

    DIR/run.yaml                       the config as submitted (status/collect re-expand it)
    DIR/<kind>_models.json             the models as expanded at submission (patterns, named sets)
    DIR/submissions.jsonl              one line per submission: SLURM job ids per task
    DIR/logs/                          submitit's pickles and the tasks' stdout/stderr
    DIR/tasks/<kind>/<model>/<part>/   scores.csv + done.json when finished, work/ for the runner
    DIR/<kind>_scores.csv              written by ``collect``
"""

from __future__ import annotations

import fnmatch
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from submitit.helpers import Checkpointable

from memprobe.atomic import write_text
from memprobe.errors import MemprobeError
from memprobe.naming import safe_name
from memprobe.slurm.config import (
    KINDS,
    RunConfig,
    SlurmError,
    check_config_benchmarks,
    expand_models,
    load_config,
    resolve_runner,
)

# finetune: keys that only size the plan and are not passed to the runner
PLAN_ONLY_KEYS = ("train_images",)
# run.yaml keys a resubmission may change: they size and place the tasks, never what they compute
RESUBMIT_FREE_KEYS = ("max_store_gb", "resources", "description")


@dataclass
class Task(Checkpointable):
    """One array task. ``arguments`` are passed to the runner as keywords, with ``model`` and ``out``."""

    kind: str
    model: str
    part: str
    run_dir: str
    runner: str
    arguments: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.model}/{self.part}"

    @property
    def directory(self) -> Path:
        return Path(self.run_dir) / "tasks" / self.kind / safe_name(self.model) / safe_name(self.part)

    @property
    def table_path(self) -> Path:
        return self.directory / "scores.csv"

    @property
    def done_path(self) -> Path:
        return self.directory / "done.json"

    def is_done(self) -> bool:
        return self.done_path.is_file() and self.table_path.is_file()

    def __call__(self) -> str:
        if self.is_done():
            return f"{self.key}: already done"
        started = time.time()
        _limit_threads()
        work = self.directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        table = resolve_runner(self.runner)(model=self.model, out=work, **self.arguments)
        if not isinstance(table, pd.DataFrame) or table.empty:
            raise SlurmError(f"task {self.key}: runner {self.runner} returned {type(table).__name__}, "
                             "expected a non-empty pandas DataFrame")
        write_text(self.table_path, table.to_csv(index=False))
        marker = {"task": self.key, "rows": len(table), "seconds": round(time.time() - started, 3),
                  "host": socket.gethostname(), "slurm_job_id": _current_job_id(), "finished": time.time()}
        write_text(self.done_path, json.dumps(marker, indent=1))
        return f"{self.key}: {len(table)} rows"


def _limit_threads() -> None:
    """Without CPU binding (task/none) torch would use every core of the node, whatever the task got."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:
        import torch

        torch.set_num_threads(int(cpus))


def _current_job_id() -> str | None:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def sweep_task(model: str, out: Path, benchmarks: list[str], weights: str, layers: str | list[str] | None,
               reducer: str, subset: int | None, seed: int, pls_dtype: str = "float64",
               distinct_layers: bool = False, **options) -> pd.DataFrame:
    """The default sweep runner: ``memprobe.sweep.run_sweep`` on one model × one stimulus group.
    ``options`` (the config's ``options:``, and ``max_store`` from its ``max_store_gb``) go to ``run_sweep``
    (batch_size, device, pls_device, num_workers, max_store, keep_activations), except ``pls_dtype``
    (float64 or float32) and ``distinct_layers``, which are part of the sweep's configuration."""
    from memprobe.sweep import SweepConfig, run_sweep

    config = SweepConfig(model=model, benchmarks=tuple(benchmarks), weights=weights, seed=seed,
                         layers=tuple(layers) if isinstance(layers, list) else layers,
                         reducer=reducer, subset=subset, subset_seed=seed,
                         pls_dtype=pls_dtype, distinct_layers=distinct_layers)
    return run_sweep(config, out, progress=False, **options)


def finetune_task(model: str, out: Path, weights: str, seed: int, **settings) -> pd.DataFrame:
    """The default fine-tuning runner: ``memprobe.finetune.run.finetune`` for one model, every fold
    (finished folds are kept) → its metrics table (one row per fold, plus ``mean`` and ``overall``).
    ``settings``: the config's ``finetune:`` keys (data, head, recipe, folds, frozen, max_epochs, ...)."""
    from memprobe.finetune.run import finetune

    _, metrics = finetune(model, out=out, weights=weights, seed=seed, progress=False, **settings)
    recorded = {key: settings.get(key) for key in ("max_epochs", "clip_grad_norm")}
    return metrics.assign(model=model, head=settings.get("head", "linear"),
                          data=settings.get("data", "lnsim"), frozen=bool(settings.get("frozen", False)),
                          **recorded)


def expand_tasks(config: RunConfig, kind: str = "sweep", models: list[str] | None = None) -> list[Task]:
    """Sweep: model × stimulus set (× all sets, when the reducer learns: ``RunConfig.task_sets``).
    Fine-tuning: one task per model (all its folds, resuming per fold)."""
    models = models if models is not None else expand_models(config, kind)
    run_dir = str(config.out)
    if kind == "sweep":
        return [
            Task("sweep", model, "+".join(group.name for group in sets), run_dir, config.runners["sweep"], {
                "benchmarks": [b for group in sets for b in group.benchmarks], "weights": config.weights,
                "layers": config.layers, "reducer": str(config.reducer), "subset": sets[0].subset,
                "seed": config.seed,
                **({"max_store": int(config.max_store_gb * 1e9)} if config.max_store_gb else {}),
                **config.options,
            })
            for model in models for sets in config.task_sets()
        ]
    if kind == "finetune":
        if not config.finetune:
            raise SlurmError(f"config {config.path}: no 'finetune:' section; nothing to fine-tune")
        unmatched = [pattern for pattern in config.finetune.get("per_model", {})
                     if not any(fnmatch.fnmatchcase(model, pattern) for model in models)]
        if unmatched:
            raise SlurmError(f"config {config.path}: finetune per_model pattern(s) {unmatched} match none of "
                             f"the run's models ({', '.join(models)})")
        tasks = []
        for model in models:
            settings = {key: value for key, value in config.finetune_settings(model).items()
                        if key not in PLAN_ONLY_KEYS}
            tasks.append(Task("finetune", model, settings.get("head", "linear"), run_dir,
                              config.runners["finetune"], {"weights": config.weights, "seed": config.seed,
                                                           **settings}))
        return tasks
    raise SlurmError(f"unknown kind {kind!r}; one of {KINDS}")


def prepare_run(config: RunConfig, kind: str) -> list[Task]:
    """Validate models and benchmarks, then expand; raises before anything is written or submitted."""
    resolve_runner(config.runners[kind])
    models = expand_models(config, kind)
    if kind == "sweep":
        check_config_benchmarks(config)
    return expand_tasks(config, kind, models)


def record_run(config: RunConfig, kind: str, tasks: list[Task]) -> None:
    """Write DIR/run.yaml and DIR/<kind>_models.json (patterns expanded against today's registry), so
    status and collect know the tasks without the registry; refuse to mix two configs in one directory
    (a resubmission may change only the ``RESUBMIT_FREE_KEYS``, e.g. a larger disk budget)."""
    path = config.out / "run.yaml"
    stored = {**config.raw, "out": str(config.out)}
    recorded = {**yaml.safe_load(path.read_text()), "out": str(config.out)} if path.is_file() else {}
    changed = sorted(key for key in recorded.keys() | stored.keys() if recorded.get(key) != stored.get(key))
    conflicts = [key for key in changed if key not in RESUBMIT_FREE_KEYS]
    if recorded and conflicts:
        raise SlurmError(f"{config.out} already holds a run with a different config ({path}: "
                         f"{', '.join(conflicts)} differ); use another --out, or delete that directory "
                         "to start over")
    if changed:
        write_text(path, yaml.safe_dump(stored, sort_keys=False))
    models = list(dict.fromkeys(task.model for task in tasks))
    write_text(config.out / f"{kind}_models.json", json.dumps(models, indent=1))


def load_run(run_dir: str | os.PathLike) -> RunConfig:
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        raise SlurmError(f"{run_dir} is not a memprobe run directory (no run.yaml); "
                         "pass the --out of `memprobe submit`")
    return load_config(path, out=run_dir)  # the directory is where it is now, wherever it was written


def recorded_tasks(run_dir: str | os.PathLike, kind: str) -> list[Task]:
    """The tasks of a recorded run, from DIR/run.yaml and DIR/<kind>_models.json."""
    run_dir = Path(run_dir).resolve()
    config = load_run(run_dir)
    models_path = run_dir / f"{kind}_models.json"
    if not models_path.is_file():
        raise SlurmError(f"{run_dir} holds no {kind} run (no {models_path.name}); "
                         f"`memprobe submit {kind} --config FILE --out {run_dir}` starts one")
    return expand_tasks(config, kind, models=json.loads(models_path.read_text()))


def run_here(config: RunConfig, kind: str = "sweep") -> list[str]:
    """Run every task in this process, in order: the no-cluster path, and the reference for the tests.
    A task that fails with a memprobe error (bad input, a diverged training) does not stop the ones after
    it, as in a job array; the failures are raised together at the end."""
    from tqdm import tqdm

    tasks = prepare_run(config, kind)
    record_run(config, kind, tasks)
    lines, failures = [], []
    for task in tqdm(tasks, desc=f"{kind} tasks", unit="task"):
        try:
            lines.append(task())
        except MemprobeError as error:
            failures.append(f"{task.key}: {error}")
            lines.append(f"{task.key}: FAILED")
    if failures:
        raise SlurmError(f"{len(failures)} of {len(tasks)} {kind} tasks failed (the others ran):\n"
                         + "\n".join(failures))
    return lines


def run_index(config: RunConfig, kind: str, index: int) -> str:
    """Run the ``index``-th task of the config here: the body of a plain-sbatch array task
    (``slurm/sweep.sbatch``), where ``index`` is ``$SLURM_ARRAY_TASK_ID``."""
    tasks = prepare_run(config, kind)
    if not 0 <= index < len(tasks):
        raise SlurmError(f"task index {index} is out of range: the config has {len(tasks)} {kind} tasks "
                         f"(0..{len(tasks) - 1}); `memprobe submit {kind} --dry-run` lists them")
    record_run(config, kind, tasks)
    return tasks[index]()
