"""Running sweeps and fine-tuning on a SLURM cluster (orchestration only): a run config becomes tasks — a job
array through submitit — whose states are read back and whose tables are collected into one.

Runner strings in run configs name ``memprobe.slurm:sweep_task`` and ``memprobe.slurm:finetune_task``."""

from memprobe.slurm.collect import collect
from memprobe.slurm.config import KINDS, RunConfig, SlurmError, expand_models, load_config, parse_config
from memprobe.slurm.status import task_states
from memprobe.slurm.submit import RESOURCE_KEYS, load_profile, submit
from memprobe.slurm.tasks import (
    Task,
    expand_tasks,
    finetune_task,
    load_run,
    prepare_run,
    recorded_tasks,
    run_here,
    run_index,
    sweep_task,
)

__all__ = [
    "KINDS",
    "RESOURCE_KEYS",
    "RunConfig",
    "SlurmError",
    "Task",
    "collect",
    "expand_models",
    "expand_tasks",
    "finetune_task",
    "load_config",
    "load_profile",
    "load_run",
    "parse_config",
    "prepare_run",
    "recorded_tasks",
    "run_here",
    "run_index",
    "submit",
    "sweep_task",
    "task_states",
]
