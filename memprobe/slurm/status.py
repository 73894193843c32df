"""Each task's state (done / running / pending / failed), from its result files, the job id of its latest
submission, the scheduler (squeue, sacct) and submitit's outcome; failed tasks come with their logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from memprobe.slurm.tasks import Task, recorded_tasks


@dataclass
class TaskStatus:
    task: Task
    state: str  # done | running | pending | failed
    job_id: str | None = None
    detail: str = ""
    logs: list[Path] = field(default_factory=list)


def latest_job_ids(run_dir: Path) -> dict[str, str]:
    """task key → the SLURM job id of its most recent submission."""
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


def _unsubmitted(task: Task) -> str:
    """A task never submitted to the scheduler may have been started here (``--here``): say when its work
    folder last changed, so a run in progress (or stopped) is told from one not begun."""
    files = [path for path in (task.directory / "work").rglob("*") if path.is_file()]
    if not files:
        return "never submitted"
    last = max(path.stat().st_mtime for path in files)
    minutes = (time.time() - last) / 60
    return (f"never submitted; started here (--here): {len(files)} work files, the last written "
            f"{minutes:.0f} min ago")


def task_states(run_dir: str | os.PathLike, kind: str = "sweep") -> list[TaskStatus]:
    run_dir = Path(run_dir).resolve()
    return states_of(run_dir, recorded_tasks(run_dir, kind))


def states_of(run_dir: Path, tasks: list[Task]) -> list[TaskStatus]:
    """Each task's state from its result files, its latest job in the scheduler, and submitit's outcome."""
    jobs = latest_job_ids(run_dir)
    states = scheduler_states(jobs[task.key] for task in tasks if task.key in jobs and not task.is_done())
    report = []
    for task in tasks:
        job = jobs.get(task.key)
        if task.is_done():
            report.append(TaskStatus(task, "done", job))
        elif job is None:
            report.append(TaskStatus(task, "pending", None, _unsubmitted(task)))
        elif job in states and states[job] in ("RUNNING", "COMPLETING", "CONFIGURING"):
            report.append(TaskStatus(task, "running", job, states[job]))
        elif job in states and states[job] in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "SUSPENDED"):
            report.append(TaskStatus(task, "pending", job, f"queued ({states[job]})"))
        else:
            outcome = _submitit_outcome(run_dir, job)
            if outcome and outcome[0] == "error":
                last = outcome[1].strip().splitlines()[-1] if outcome[1].strip() else "error"
                detail = f"raised {last}"
            else:
                detail = f"ended without a result ({states.get(job, 'cancelled, killed or timed out')})"
            report.append(TaskStatus(task, "failed", job, detail, log_paths(run_dir, job)))
    return report


def _submitit_outcome(run_dir: Path, job_id: str) -> tuple[str, str] | None:
    import submitit

    path = run_dir / "logs" / job_id / f"{job_id}_0_result.pkl"
    if not path.is_file():
        return None
    outcome, result = submitit.core.utils.pickle_load(path)
    return outcome, str(result)


def log_paths(run_dir: Path, job_id: str) -> list[Path]:
    folder = run_dir / "logs" / job_id
    return [folder / f"{job_id}_0_log.err", folder / f"{job_id}_0_log.out"]
