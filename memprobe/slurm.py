"""Run a study as SLURM job arrays: a config expands into units of work, one array task per unit.

A *unit* is one model × one stimulus group (the benchmarks that share a stimulus set, so features are
extracted once) for the sweep, or one model (all its folds) for fine-tuning. Each unit is a picklable
callable: it returns at once when its result is already on disk, otherwise it calls its runner
(``module:function``) and writes the runner's table atomically, then a ``done.json`` marker. The runner
resumes from its own store under the unit's ``work/`` folder, so a requeued (preempted) task loses at
most the layer it was on. Layout of a run directory::

    DIR/run.yaml                       the config as submitted (status/collect re-expand it)
    DIR/<kind>_models.json             the models as expanded at submission (patterns, named sets)
    DIR/submissions.jsonl              one line per submission: SLURM job ids per unit
    DIR/logs/                          submitit's pickles and the tasks' stdout/stderr
    DIR/units/<kind>/<model>/<part>/   scores.csv + done.json when finished, work/ for the runner
    DIR/<kind>_scores.csv              written by ``collect``
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from submitit.helpers import Checkpointable

from memprobe.atomic import write_text
from memprobe.errors import BenchmarkError, MemprobeError, ModelError

KINDS = ("sweep", "finetune")
DEFAULT_RUNNERS = {"sweep": "memprobe.slurm:sweep_unit", "finetune": "memprobe.slurm:finetune_unit"}
# finetune: keys that only size the plan and are not passed to the runner
PLAN_ONLY_KEYS = ("train_images",)
# Columns that identify one row of a collected table; those present in the tables are checked for duplicates.
ROW_KEY_COLUMNS = ("model", "weights", "layer", "call_index", "benchmark", "fold", "split")
RESOURCE_KEYS = (
    "partition", "account", "qos", "constraint", "gpus_per_task", "cpus_per_task", "mem_gb", "timeout_min",
    "array_parallelism",
)


class SlurmError(MemprobeError):
    """A run directory, config or scheduler problem the user can fix."""


# ----------------------------------------------------------------------------------------------- config


@dataclass
class StimulusGroup:
    """Benchmarks scored on one stimulus set. ``images`` (its size) and ``splits`` (CV splits per
    benchmark) size the plan; ``subset`` caps the images a unit uses."""

    name: str
    benchmarks: list[str]
    images: int | None = None
    subset: int | None = None
    splits: int = 5


@dataclass
class RunConfig:
    path: Path | None
    name: str
    out: Path
    models: list[str]
    weights: str = "pretrained"
    layers: str | None = None
    reducer: dict = field(default_factory=lambda: {"name": "none"})
    seed: int = 0
    groups: list[StimulusGroup] = field(default_factory=list)
    runners: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))
    options: dict = field(default_factory=dict)
    finetune: dict | None = None
    resources: dict[str, dict] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


def load_config(path: str | os.PathLike, out: str | os.PathLike | None = None) -> RunConfig:
    """Read a run config (see ``analyses/paper.yaml`` for every key, documented)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SlurmError(f"config {path} does not exist") from None
    except yaml.YAMLError as error:
        raise SlurmError(f"config {path} is not valid YAML: {error}") from None
    return parse_config(raw, path=path, out=out)


def parse_config(raw: dict, path: Path | None = None, out: str | os.PathLike | None = None) -> RunConfig:
    where = f"config {path}" if path else "config"
    if not isinstance(raw, dict):
        raise SlurmError(f"{where}: expected a mapping of keys (name, out, models, stimulus_sets, ...)")
    unknown = set(raw) - {
        "name", "out", "models", "weights", "layers", "reducer", "seed", "stimulus_sets", "runners",
        "options", "finetune", "resources", "description",
    }
    if unknown:
        raise SlurmError(f"{where}: unknown keys {sorted(unknown)}; see analyses/paper.yaml for the format")
    for key in ("models", "stimulus_sets"):
        if not raw.get(key):
            raise SlurmError(f"{where}: '{key}' is missing or empty")
    out_dir = out or raw.get("out")
    if not out_dir:
        raise SlurmError(f"{where}: no output directory; set 'out:' or pass --out DIR")
    groups = []
    for entry in raw["stimulus_sets"]:
        if not isinstance(entry, dict) or "name" not in entry or not entry.get("benchmarks"):
            raise SlurmError(
                f"{where}: each stimulus_sets entry needs 'name' and 'benchmarks'; got {entry!r}"
            )
        unknown = set(entry) - {"name", "benchmarks", "images", "subset", "splits"}
        if unknown:
            raise SlurmError(f"{where}: stimulus set {entry['name']!r} has unknown keys {sorted(unknown)}")
        groups.append(StimulusGroup(entry["name"], list(entry["benchmarks"]), entry.get("images"),
                                    entry.get("subset"), int(entry.get("splits", 5))))
    names = [group.name for group in groups]
    if len(set(names)) != len(names):
        raise SlurmError(f"{where}: stimulus_sets names must be unique, got {names}")
    return RunConfig(
        path=path,
        name=raw.get("name", path.stem if path else "run"),
        out=Path(out_dir).expanduser().resolve(),
        models=list(raw["models"]),
        weights=raw.get("weights", "pretrained"),
        layers=raw.get("layers"),
        reducer=_reducer(raw.get("reducer", "none"), where),
        seed=int(raw.get("seed", 0)),
        groups=groups,
        runners={**DEFAULT_RUNNERS, **raw.get("runners", {})},
        options=raw.get("options", {}),
        finetune=raw.get("finetune"),
        resources=raw.get("resources", {}),
        raw=raw,
    )


REDUCER_SIZES = {"srp": "dim", "sketch": "dim", "pca": "n_components"}


def _reducer(value, where: str) -> dict:
    """``srp``, ``srp:4096`` or ``{name: srp, dim: 4096}`` → the dict form (the plan reads its size)."""
    if isinstance(value, dict):
        if "name" not in value:
            raise SlurmError(f"{where}: reducer {value!r} has no 'name'")
        return dict(value)
    name, _, size = str(value).partition(":")
    if size and (name not in REDUCER_SIZES or not size.isdigit()):
        raise SlurmError(f"{where}: reducer {value!r}: give none, pool, srp[:D], sketch[:D] or pca[:K]")
    return {"name": name, REDUCER_SIZES[name]: int(size)} if size else {"name": name}


def _resolve(runner: str):
    module_name, _, function_name = runner.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function_name)
    except (ImportError, AttributeError) as error:
        raise SlurmError(f"runner {runner!r} cannot be imported ({error}); expected 'module:function'") \
            from None


def _registry(runner: str, listing: str, fallback_module: str):
    """The runner's module may say what it can run (``list_models``, ``list_benchmarks``); else memprobe's."""
    module = importlib.import_module(runner.partition(":")[0])
    return module if hasattr(module, listing) else importlib.import_module(fallback_module)


def expand_models(config: RunConfig, kind: str = "sweep") -> list[str]:
    """Identifiers, glob patterns (``torchvision:resnet*``) and named sets (``paper64``) → identifiers;
    an entry that names nothing known is rejected before anything runs."""
    registry = _registry(config.runners[kind], "list_models", "memprobe.zoo")
    models: list[str] = []
    for entry in config.models:
        matches = registry.list_models(entry)
        if not matches and hasattr(registry, "model_set"):
            try:
                matches = registry.model_set(entry)
            except ModelError:
                matches = []
        if not matches:
            raise ModelError(
                f"config {config.path}: unknown model {entry!r} (no identifier, pattern match or named set); "
                "`memprobe models` lists the known identifiers"
            )
        models.extend(m for m in matches if m not in models)
    return models


def check_benchmarks(config: RunConfig) -> None:
    registry = _registry(config.runners["sweep"], "list_benchmarks", "memprobe.benchmarks")
    known = set(registry.list_benchmarks())
    for group in config.groups:
        for benchmark in group.benchmarks:
            if benchmark not in known:
                raise BenchmarkError(
                    f"config {config.path}: stimulus set {group.name!r} names unknown benchmark "
                    f"{benchmark!r}; "
                    f"known: {sorted(known)}"
                )


# ------------------------------------------------------------------------------------------------ units


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


@dataclass
class Unit(Checkpointable):
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
        return Path(self.run_dir) / "units" / self.kind / _safe(self.model) / _safe(self.part)

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
        table = _resolve(self.runner)(model=self.model, out=work, **self.arguments)
        if not isinstance(table, pd.DataFrame) or table.empty:
            raise SlurmError(f"unit {self.key}: runner {self.runner} returned {type(table).__name__}, "
                             "expected a non-empty pandas DataFrame")
        write_text(self.table_path, table.to_csv(index=False))
        marker = {"unit": self.key, "rows": len(table), "seconds": round(time.time() - started, 3),
                  "host": socket.gethostname(), "slurm_job_id": _current_job_id(), "finished": time.time()}
        write_text(self.done_path, json.dumps(marker, indent=1))
        return f"{self.key}: {len(table)} rows"


def _sweep_reducer(reducer: dict) -> str:
    """The sweep's reducer spec (``srp:4096``) from the config's dict form."""
    size_key = REDUCER_SIZES.get(reducer["name"])
    extra = set(reducer) - {"name", size_key}
    if extra:
        raise SlurmError(f"reducer options {sorted(extra)} cannot be passed to the sweep; it takes "
                         "none, pool, srp[:D], sketch[:D] or pca[:K]")
    return f"{reducer['name']}:{reducer[size_key]}" if size_key in reducer else reducer["name"]


def sweep_unit(model: str, out: Path, benchmarks: list[str], weights: str, layers: str | list[str] | None,
               reducer: dict, subset: int | None, seed: int, pls_dtype: str = "float64",
               **options) -> pd.DataFrame:
    """The default sweep runner: ``memprobe.sweep.run_sweep`` on one model × one stimulus group.
    ``options`` (the config's ``options:``) go to ``run_sweep`` (batch_size, device, pls_device,
    num_workers), except ``pls_dtype`` (float64 or float32), which is part of the sweep's configuration."""
    from memprobe.sweep import SweepConfig, run_sweep

    config = SweepConfig(model=model, benchmarks=tuple(benchmarks), weights=weights, seed=seed,
                         layers=tuple(layers) if isinstance(layers, list) else layers,
                         reducer=_sweep_reducer(reducer), subset=subset, subset_seed=seed,
                         pls_dtype=pls_dtype)
    return run_sweep(config, out, progress=False, **options)


def _limit_threads() -> None:
    """Without CPU binding (task/none) torch would use every core of the node, whatever the task got."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:
        import torch

        torch.set_num_threads(int(cpus))


def finetune_unit(model: str, out: Path, weights: str, seed: int, **settings) -> pd.DataFrame:
    """The default fine-tuning runner: ``memprobe.finetune.run.finetune`` for one model, every fold
    (finished folds are kept) → its metrics table (one row per fold, plus ``mean`` and ``overall``).
    ``settings``: the config's ``finetune:`` keys (data, head, recipe, folds, frozen, max_epochs, ...)."""
    from memprobe.finetune.run import finetune

    _, metrics = finetune(model, out=out, weights=weights, seed=seed, progress=False, **settings)
    return metrics.assign(model=model, head=settings.get("head", "linear"),
                          data=settings.get("data", "lnsim"))


def _current_job_id() -> str | None:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def expand_units(config: RunConfig, kind: str = "sweep", models: list[str] | None = None) -> list[Unit]:
    """Sweep: model × stimulus group. Fine-tuning: one unit per model (all its folds, resuming per fold)."""
    models = models if models is not None else expand_models(config, kind)
    run_dir = str(config.out)
    if kind == "sweep":
        return [
            Unit("sweep", model, group.name, run_dir, config.runners["sweep"], {
                "benchmarks": list(group.benchmarks), "weights": config.weights, "layers": config.layers,
                "reducer": dict(config.reducer), "subset": group.subset, "seed": config.seed,
                **config.options,
            })
            for model in models for group in config.groups
        ]
    if kind == "finetune":
        if not config.finetune:
            raise SlurmError(f"config {config.path}: no 'finetune:' section; nothing to fine-tune")
        settings = {key: value for key, value in config.finetune.items() if key not in PLAN_ONLY_KEYS}
        return [
            Unit("finetune", model, settings.get("head", "linear"), run_dir, config.runners["finetune"],
                 {"weights": config.weights, "seed": config.seed, **settings})
            for model in models
        ]
    raise SlurmError(f"unknown kind {kind!r}; one of {KINDS}")


def prepare_run(config: RunConfig, kind: str) -> list[Unit]:
    """Validate models and benchmarks, then expand; raises before anything is written or submitted."""
    _resolve(config.runners[kind])
    if config.runners[kind] == DEFAULT_RUNNERS["sweep"]:
        _sweep_reducer(config.reducer)
    models = expand_models(config, kind)
    if kind == "sweep":
        check_benchmarks(config)
    return expand_units(config, kind, models)


def record_run(config: RunConfig, kind: str, units: list[Unit]) -> None:
    """Write DIR/run.yaml and DIR/<kind>_models.json (patterns expanded against today's registry), so
    status and collect know the units without the registry; refuse to mix two configs in one directory."""
    path = config.out / "run.yaml"
    stored = {**config.raw, "out": str(config.out)}
    if path.is_file() and {**yaml.safe_load(path.read_text()), "out": str(config.out)} != stored:
        raise SlurmError(f"{config.out} already holds a run with a different config ({path}); "
                         "use another --out, or delete that directory to start over")
    if not path.is_file():
        write_text(path, yaml.safe_dump(stored, sort_keys=False))
    models = list(dict.fromkeys(unit.model for unit in units))
    write_text(config.out / f"{kind}_models.json", json.dumps(models, indent=1))


def load_run(run_dir: str | os.PathLike) -> RunConfig:
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        raise SlurmError(f"{run_dir} is not a memprobe run directory (no run.yaml); "
                         "pass the --out of `memprobe submit`")
    return load_config(path, out=run_dir)  # the directory is where it is now, wherever it was written


def run_here(config: RunConfig, kind: str = "sweep") -> list[str]:
    """Run every unit in this process, in order: the no-cluster path, and the reference for the tests."""
    from tqdm import tqdm

    units = prepare_run(config, kind)
    record_run(config, kind, units)
    return [unit() for unit in tqdm(units, desc=f"{kind} units", unit="unit")]


def run_index(config: RunConfig, kind: str, index: int) -> str:
    """Run the ``index``-th unit of the config here: the body of a plain-sbatch array task
    (``slurm/sweep.sbatch``), where ``index`` is ``$SLURM_ARRAY_TASK_ID``."""
    units = prepare_run(config, kind)
    if not 0 <= index < len(units):
        raise SlurmError(f"unit index {index} is out of range: the config has {len(units)} {kind} units "
                         f"(0..{len(units) - 1}); `memprobe submit {kind} --dry-run` lists them")
    record_run(config, kind, units)
    return units[index]()


# ------------------------------------------------------------------------------------------- submission


def executor_parameters(resources: dict, n_units: int) -> dict:
    """submitit AutoExecutor parameters from memprobe's resource names (see slurm/profile.yaml)."""
    unknown = set(resources) - set(RESOURCE_KEYS) - {"setup"}
    if unknown:
        raise SlurmError(f"unknown resource keys {sorted(unknown)}; known: {list(RESOURCE_KEYS)}")
    params = {
        "timeout_min": int(resources.get("timeout_min", 60)),
        "cpus_per_task": int(resources.get("cpus_per_task", 1)),
        "mem_gb": float(resources.get("mem_gb", 4)),
        "slurm_array_parallelism": int(resources.get("array_parallelism", max(n_units, 1))),
    }
    for key in ("partition", "account", "qos", "constraint", "gpus_per_task", "setup"):
        if resources.get(key):
            params[f"slurm_{key}"] = resources[key]
    return params


def sbatch_flags(params: dict, n_units: int) -> list[str]:
    """What the array job asks SLURM for, as ``#SBATCH`` lines (for --dry-run and the plain-sbatch users)."""
    mem = params["mem_gb"]
    # submitit sends a single unit as a plain job, several as one array
    parallel = min(n_units, params["slurm_array_parallelism"])
    array = [f"--array=0-{n_units - 1}%{parallel}"] if n_units > 1 else []
    flags = [
        *array,
        f"--cpus-per-task={params['cpus_per_task']}",
        f"--mem={int(mem)}GB" if mem == int(mem) else f"--mem={int(mem * 1024)}MB",
        f"--time={params['timeout_min']}",
    ]
    for key in ("partition", "account", "qos", "constraint", "gpus_per_task"):
        if f"slurm_{key}" in params:
            flags.append(f"--{key.replace('_', '-')}={params[f'slurm_{key}']}")
    return flags


def load_profile(path: str | os.PathLike | None) -> dict:
    """A cluster profile (``slurm/profile.yaml``): per-kind resources and setup lines for every task."""
    if path is None:
        return {}
    try:
        profile = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SlurmError(f"cluster profile {path} cannot be read: {error}") from None
    unknown = set(profile) - set(KINDS) - {"cluster"}
    if unknown:
        raise SlurmError(f"cluster profile {path}: unknown keys {sorted(unknown)}; expected {list(KINDS)}")
    return profile


def merged_resources(config: RunConfig, kind: str, overrides: dict, profile: dict | None = None) -> dict:
    """Config's resources < the cluster profile's < command-line flags."""
    return {**config.resources.get(kind, {}), **(profile or {}).get(kind, {}),
            **{k: v for k, v in overrides.items() if v is not None}}


@dataclass
class Submission:
    job_id: str | None
    submitted: list[Unit]
    skipped: list[Unit]
    flags: list[str]
    setup: list[str] = field(default_factory=list)
    in_flight: list[UnitStatus] = field(default_factory=list)  # still queued or running: not resubmitted
    failed_before: list[UnitStatus] = field(default_factory=list)  # resubmitted after a failure


def submit(config: RunConfig, kind: str, overrides: dict | None = None, dry_run: bool = False,
           cluster: str | None = None, profile: dict | None = None) -> Submission:
    """Submit every unfinished unit as one array. Finished units are skipped, and so are units whose
    latest task is still queued or running (two tasks must never work on one unit). Records job ids."""
    units = prepare_run(config, kind)
    skipped = [unit for unit in units if unit.is_done()]
    previous = states_of(config.out, [unit for unit in units if not unit.is_done()])
    in_flight = [e for e in previous if e.state == "running" or (e.state == "pending" and e.job_id)]
    failed_before = [entry for entry in previous if entry.state == "failed"]
    busy = {entry.unit.key for entry in in_flight}
    pending = [entry.unit for entry in previous if entry.unit.key not in busy]
    params = executor_parameters(merged_resources(config, kind, overrides or {}, profile), len(pending))
    flags = sbatch_flags(params, len(pending)) if pending else []
    setup = list(params.get("slurm_setup", []))
    if dry_run or not pending:
        return Submission(None, pending, skipped, flags, setup, in_flight, failed_before)
    record_run(config, kind, units)
    import submitit

    executor = submitit.AutoExecutor(folder=config.out / "logs" / "%j", cluster=cluster)
    executor.update_parameters(name=f"memprobe-{kind}-{config.name}", **params)
    jobs = executor.submit_array(pending)
    record = {
        "time": time.time(), "kind": kind, "cluster": executor.cluster, "flags": flags,
        "jobs": {unit.key: job.job_id for unit, job in zip(pending, jobs, strict=True)},
    }
    with open(config.out / "submissions.jsonl", "a") as stream:
        stream.write(json.dumps(record) + "\n")
    return Submission(jobs[0].job_id.split("_")[0], pending, skipped, flags, setup, in_flight, failed_before)


# ----------------------------------------------------------------------------------------------- status


def latest_job_ids(run_dir: Path) -> dict[str, str]:
    """unit key → the SLURM job id of its most recent submission."""
    path = run_dir / "submissions.jsonl"
    latest: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                latest.update(json.loads(line)["jobs"])
    return latest


def scheduler_states(job_ids: Iterable[str]) -> dict[str, str]:
    """SLURM state per job id: squeue for live jobs, sacct (when accounting is on) for finished ones."""
    job_ids = sorted(set(job_ids))
    if not job_ids or shutil.which("squeue") is None:
        return {}
    arrays = sorted({job.split("_")[0] for job in job_ids})
    states: dict[str, str] = {}
    queue = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays)],
                           capture_output=True, text=True)
    for line in queue.stdout.splitlines():
        job, state = line.split()
        states[job] = state
    missing = [job for job in job_ids if job not in states]
    if missing and shutil.which("sacct"):
        accounting = subprocess.run(["sacct", "-n", "-X", "--parsable2", "-o", "JobID,State", "-j",
                                     ",".join(arrays)], capture_output=True, text=True)
        if accounting.returncode == 0:
            for line in accounting.stdout.splitlines():
                job, _, state = line.partition("|")
                states.setdefault(job, state.split()[0] if state else "UNKNOWN")
    return states


@dataclass
class UnitStatus:
    unit: Unit
    state: str  # done | running | pending | failed
    job_id: str | None = None
    detail: str = ""
    logs: list[Path] = field(default_factory=list)


def _log_paths(run_dir: Path, job_id: str) -> list[Path]:
    folder = run_dir / "logs" / job_id
    return [folder / f"{job_id}_0_log.err", folder / f"{job_id}_0_log.out"]


def _submitit_outcome(run_dir: Path, job_id: str) -> tuple[str, str] | None:
    import submitit

    path = run_dir / "logs" / job_id / f"{job_id}_0_result.pkl"
    if not path.is_file():
        return None
    outcome, result = submitit.core.utils.pickle_load(path)
    return outcome, str(result)


def unit_states(run_dir: str | os.PathLike, kind: str = "sweep") -> list[UnitStatus]:
    run_dir = Path(run_dir).resolve()
    return states_of(run_dir, recorded_units(run_dir, kind))


def states_of(run_dir: Path, units: list[Unit]) -> list[UnitStatus]:
    """Each unit's state from its result files, its latest job in the scheduler, and submitit's outcome."""
    jobs = latest_job_ids(run_dir)
    states = scheduler_states(jobs[unit.key] for unit in units if unit.key in jobs and not unit.is_done())
    report = []
    for unit in units:
        job = jobs.get(unit.key)
        if unit.is_done():
            report.append(UnitStatus(unit, "done", job))
        elif job is None:
            report.append(UnitStatus(unit, "pending", None, "never submitted"))
        elif job in states and states[job] in ("RUNNING", "COMPLETING", "CONFIGURING"):
            report.append(UnitStatus(unit, "running", job, states[job]))
        elif job in states and states[job] in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "SUSPENDED"):
            report.append(UnitStatus(unit, "pending", job, f"queued ({states[job]})"))
        else:
            outcome = _submitit_outcome(run_dir, job)
            if outcome and outcome[0] == "error":
                last = outcome[1].strip().splitlines()[-1] if outcome[1].strip() else "error"
                detail = f"raised {last}"
            else:
                detail = f"ended without a result ({states.get(job, 'cancelled, killed or timed out')})"
            report.append(UnitStatus(unit, "failed", job, detail, _log_paths(run_dir, job)))
    return report


def recorded_units(run_dir: str | os.PathLike, kind: str) -> list[Unit]:
    """The units of a recorded run, from DIR/run.yaml and DIR/<kind>_models.json."""
    run_dir = Path(run_dir).resolve()
    config = load_run(run_dir)
    models_path = run_dir / f"{kind}_models.json"
    if not models_path.is_file():
        raise SlurmError(f"{run_dir} holds no {kind} run (no {models_path.name}); "
                         f"`memprobe submit {kind} --config FILE --out {run_dir}` starts one")
    return expand_units(config, kind, models=json.loads(models_path.read_text()))


# ---------------------------------------------------------------------------------------------- collect


def collect(run_dir: str | os.PathLike, kind: str = "sweep", write: bool = True) -> pd.DataFrame:
    """Concatenate every unit's table; error naming the missing units or the duplicated rows."""
    run_dir = Path(run_dir).resolve()
    units = recorded_units(run_dir, kind)
    missing = [unit.key for unit in units if not unit.is_done()]
    if missing:
        raise SlurmError(f"{run_dir}: {len(missing)} of {len(units)} units have no result: "
                         f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}; "
                         f"`memprobe status {run_dir}` says why, `memprobe submit {kind}` reruns them")
    tables = []
    for unit in units:
        table = pd.read_csv(unit.table_path)
        tables.append(table.assign(unit=unit.key))
    merged = pd.concat(tables, ignore_index=True)
    key = [column for column in ROW_KEY_COLUMNS if column in merged.columns]
    if key:
        duplicated = merged[merged.duplicated(key, keep=False)]
        if len(duplicated):
            clashes = duplicated.groupby(key, dropna=False)["unit"].unique().head(5)
            listing = "; ".join(f"{dict(zip(key, k if isinstance(k, tuple) else (k,), strict=True))} "
                                f"in {list(v)}" for k, v in clashes.items())
            raise SlurmError(f"{run_dir}: {len(duplicated)} rows share their key {key}: {listing}. "
                             "Two units produced the same rows; check the config for repeated benchmarks")
    merged = merged.drop(columns="unit")
    if write:
        write_text(run_dir / f"{kind}_scores.csv", merged.to_csv(index=False))
    return merged
