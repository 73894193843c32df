"""Merging the tables of a finished run's tasks into one, checked complete and free of duplicated rows."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from memprobe.atomic import write_text
from memprobe.slurm.config import SlurmError
from memprobe.slurm.tasks import recorded_tasks

# Columns that identify one row of a collected table; those present in the tables are checked for duplicates.
ROW_KEY_COLUMNS = ("model", "weights", "layer", "call_index", "benchmark", "fold", "split")


def collect(run_dir: str | os.PathLike, kind: str = "sweep", write: bool = True,
            partial: bool = False) -> pd.DataFrame:
    """Concatenate every task's table; error naming the missing tasks or the duplicated rows.
    ``partial``: while a long run goes on, the tables of the models whose tasks have all finished (an
    interim table; an error when no model has)."""
    run_dir = Path(run_dir).resolve()
    tasks = recorded_tasks(run_dir, kind)
    missing = [task.key for task in tasks if not task.is_done()]
    if partial:
        unfinished = {task.model for task in tasks if not task.is_done()}
        tasks = [task for task in tasks if task.model not in unfinished]
        if not tasks:
            raise SlurmError(f"{run_dir}: no model has finished all its {kind} tasks yet")
    elif missing:
        raise SlurmError(f"{run_dir}: {len(missing)} of {len(tasks)} tasks have no result: "
                         f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}; "
                         f"`memprobe status {run_dir}` says why, `memprobe submit {kind}` reruns them")
    merged = pd.concat([pd.read_csv(task.table_path).assign(task=task.key) for task in tasks],
                       ignore_index=True)
    key = [column for column in ROW_KEY_COLUMNS if column in merged.columns]
    if key:
        duplicated = merged[merged.duplicated(key, keep=False)]
        if len(duplicated):
            clashes = duplicated.groupby(key, dropna=False)["task"].unique().head(5)
            listing = "; ".join(f"{dict(zip(key, k if isinstance(k, tuple) else (k,), strict=True))} "
                                f"in {list(v)}" for k, v in clashes.items())
            raise SlurmError(f"{run_dir}: {len(duplicated)} rows share their key {key}: {listing}. "
                             "Two tasks produced the same rows; check the config for repeated benchmarks")
    merged = merged.drop(columns="task")
    if write:
        write_text(run_dir / f"{kind}_scores.csv", merged.to_csv(index=False))
    return merged
