"""Submitting a config's unfinished tasks as one submitit job array: resources (config < cluster profile <
command-line flags), the ``#SBATCH`` lines they amount to, and the job ids recorded per task."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from memprobe.slurm.config import KINDS, RunConfig, SlurmError
from memprobe.slurm.status import TaskStatus, states_of
from memprobe.slurm.tasks import Task, prepare_run, record_run

RESOURCE_KEYS = (
    "partition", "account", "qos", "constraint", "gpus_per_task", "cpus_per_task", "mem_gb", "timeout_min",
    "array_parallelism",
)


def executor_parameters(resources: dict, n_tasks: int) -> dict:
    """submitit AutoExecutor parameters from memprobe's resource names (see slurm/profile.yaml)."""
    unknown = set(resources) - set(RESOURCE_KEYS) - {"setup"}
    if unknown:
        raise SlurmError(f"unknown resource keys {sorted(unknown)}; known: {list(RESOURCE_KEYS)}")
    params = {
        "timeout_min": int(resources.get("timeout_min", 60)),
        "cpus_per_task": int(resources.get("cpus_per_task", 1)),
        "mem_gb": float(resources.get("mem_gb", 4)),
        "slurm_array_parallelism": int(resources.get("array_parallelism", max(n_tasks, 1))),
    }
    for key in ("partition", "account", "qos", "constraint", "gpus_per_task", "setup"):
        if resources.get(key):
            params[f"slurm_{key}"] = resources[key]
    return params


def sbatch_flags(params: dict, n_tasks: int) -> list[str]:
    """What the array job asks SLURM for, as ``#SBATCH`` lines (for --dry-run and the plain-sbatch users)."""
    mem = params["mem_gb"]
    # submitit sends a single task as a plain job, several as one array
    parallel = min(n_tasks, params["slurm_array_parallelism"])
    array = [f"--array=0-{n_tasks - 1}%{parallel}"] if n_tasks > 1 else []
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
    submitted: list[Task]
    skipped: list[Task]
    flags: list[str]
    setup: list[str] = field(default_factory=list)
    in_flight: list[TaskStatus] = field(default_factory=list)  # still queued or running: not resubmitted
    failed_before: list[TaskStatus] = field(default_factory=list)  # resubmitted after a failure


def submit(config: RunConfig, kind: str, overrides: dict | None = None, dry_run: bool = False,
           cluster: str | None = None, profile: dict | None = None) -> Submission:
    """Submit every unfinished task as one array. Finished tasks are skipped, and so are tasks whose
    latest job is still queued or running (two jobs must never work on one task). Records job ids."""
    tasks = prepare_run(config, kind)
    skipped = [task for task in tasks if task.is_done()]
    previous = states_of(config.out, [task for task in tasks if not task.is_done()])
    in_flight = [e for e in previous if e.state == "running" or (e.state == "pending" and e.job_id)]
    failed_before = [entry for entry in previous if entry.state == "failed"]
    busy = {entry.task.key for entry in in_flight}
    pending = [entry.task for entry in previous if entry.task.key not in busy]
    params = executor_parameters(merged_resources(config, kind, overrides or {}, profile), len(pending))
    flags = sbatch_flags(params, len(pending)) if pending else []
    setup = list(params.get("slurm_setup", []))
    if dry_run or not pending:
        return Submission(None, pending, skipped, flags, setup, in_flight, failed_before)
    record_run(config, kind, tasks)
    import submitit

    executor = submitit.AutoExecutor(folder=config.out / "logs" / "%j", cluster=cluster)
    executor.update_parameters(name=f"memprobe-{kind}-{config.name}", **params)
    jobs = executor.submit_array(pending)
    record = {
        "time": time.time(), "kind": kind, "cluster": executor.cluster, "flags": flags,
        "jobs": {task.key: job.job_id for task, job in zip(pending, jobs, strict=True)},
    }
    with open(config.out / "submissions.jsonl", "a") as stream:
        stream.write(json.dumps(record) + "\n")
    return Submission(jobs[0].job_id.split("_")[0], pending, skipped, flags, setup, in_flight, failed_before)
