"""SLURM commands: ``memprobe submit sweep|finetune``, ``status DIR``, ``collect DIR`` and ``plan``."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from memprobe import slurm


def _resource_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resources per array task (override the config's resources:)")
    group.add_argument("--partition")
    group.add_argument("--account")
    group.add_argument("--qos")
    group.add_argument("--constraint", help="e.g. a GPU type feature such as a100")
    group.add_argument("--gpus-per-task", type=int)
    group.add_argument("--cpus-per-task", type=int)
    group.add_argument("--mem", type=float, dest="mem_gb", metavar="GB")
    group.add_argument("--time", type=int, dest="timeout_min", metavar="MIN")
    group.add_argument("--array-parallelism", type=int, metavar="N", help="at most N tasks run at once")


def register(subparsers) -> None:
    submit = subparsers.add_parser("submit", help="submit a sweep or fine-tuning config as a SLURM job array")
    submit.add_argument("kind", choices=slurm.KINDS)
    submit.add_argument("--config", required=True, help="run config YAML (e.g. analyses/paper.yaml)")
    submit.add_argument("--out", help="run directory (default: the config's out:)")
    submit.add_argument("--dry-run", action="store_true", help="print the sbatch parameters and tasks only")
    submit.add_argument("--here", action="store_true", help="run the tasks in this process, no scheduler")
    submit.add_argument("--index", type=int, metavar="N",
                        help="run only the N-th task here (the body of a plain-sbatch array task)")
    submit.add_argument("--profile", help="cluster profile YAML (see slurm/profile.yaml)")
    submit.add_argument("--cluster", choices=["slurm", "local", "debug"],
                        help="submitit backend (default: slurm when sbatch is available)")
    _resource_arguments(submit)
    submit.set_defaults(func=_submit)

    status = subparsers.add_parser("status", help="done / running / pending / failed tasks of a run")
    status.add_argument("dir")
    status.add_argument("--kind", choices=slurm.KINDS, default="sweep")
    status.add_argument("--all", action="store_true", help="list every task, not only the unfinished ones")
    status.set_defaults(func=_status)

    collect = subparsers.add_parser("collect", help="merge the tasks' tables of a finished run into one")
    collect.add_argument("dir")
    collect.add_argument("--kind", choices=slurm.KINDS, default="sweep")
    collect.add_argument("--partial", action="store_true",
                         help="while the run goes on: merge the models whose tasks have all finished")
    collect.set_defaults(func=_collect)

    plan = subparsers.add_parser("plan", help="estimated GPU-hours, memory and disk for a config")
    plan.add_argument("--config", required=True)
    plan.add_argument("--kind", choices=slurm.KINDS, default="sweep")
    plan.add_argument("--cpus-per-task", type=int, default=8, help="data-loader cores per task (default 8)")
    plan.add_argument("--tasks", action="store_true", help="print every task, not only per-model totals")
    plan.add_argument("--measure", action="store_true",
                      help="first measure the layers of the config's models that the tables lack "
                           "(random weights, one forward pass each, a fresh process per model)")
    plan.add_argument("--measurements", metavar="DIR",
                      help="folder of layers.csv, models.csv, costs.json, machine.json (default: slurm/)")
    plan.set_defaults(func=_plan)


def _submit(args) -> int:
    config = slurm.load_config(args.config, out=args.out)
    if args.index is not None:
        print(slurm.run_index(config, args.kind, args.index))
        return 0
    if args.here:
        for line in slurm.run_here(config, args.kind):
            print(line)
        print(f"done; `memprobe collect {config.out} --kind {args.kind}` merges the tables")
        return 0
    overrides = {key: getattr(args, key) for key in slurm.RESOURCE_KEYS}
    result = slurm.submit(config, args.kind, overrides, dry_run=args.dry_run, cluster=args.cluster,
                          profile=slurm.load_profile(args.profile))
    if result.skipped:
        print(f"{len(result.skipped)} task(s) already finished in {config.out}, skipped")
    for entry in result.in_flight:
        print(f"  still {entry.state} as job {entry.job_id}, not resubmitted: {entry.task.key}")
    for entry in result.failed_before:
        print(f"  resubmitting {entry.task.key}: job {entry.job_id} {entry.detail}; log {entry.logs[0]}")
    if not result.submitted:
        unfinished = "queued or running" if result.in_flight else "finished"
        print(f"nothing to submit: every task of {config.out} is {unfinished}")
        return 0
    header = "would submit" if args.dry_run else f"submitted job {result.job_id} with"
    print(f"{header} {len(result.submitted)} task(s) from {config.out}:")
    for flag in result.flags:
        print(f"  #SBATCH {flag}")
    for line in result.setup:
        print(f"  {line}")
    for index, task in enumerate(result.submitted):
        print(f"  [{index}] {task.key}")
    if not args.dry_run:
        print(f"follow with `memprobe status {config.out} --kind {args.kind}`")
    return 0


def _status(args) -> int:
    report = slurm.task_states(args.dir, args.kind)
    counts = Counter(entry.state for entry in report)
    print(", ".join(f"{counts.get(state, 0)} {state}" for state in ("done", "running", "pending", "failed"))
          + f" of {len(report)} {args.kind} tasks in {args.dir}")
    for entry in report:
        if args.all or entry.state != "done":
            job = f" job {entry.job_id}" if entry.job_id else ""
            print(f"  {entry.state:8} {entry.task.key}{job} {entry.detail}".rstrip())
            for path in entry.logs:
                print(f"           log: {path}")
    if counts.get("failed"):
        print(f"resubmit the failed tasks with `memprobe submit {args.kind} --config {args.dir}/run.yaml`")
    return 0


def _collect(args) -> int:
    table = slurm.collect(args.dir, args.kind, partial=args.partial)
    models = table["model"].nunique() if "model" in table else "?"
    print(f"{len(table)} rows from {models} models → {args.dir}/{args.kind}_scores.csv")
    if args.partial:
        total = len({task.model for task in slurm.recorded_tasks(args.dir, args.kind)})
        print(f"partial: {models} of {total} models have finished; collect again when the run has")
    return 0


def _plan(args) -> int:
    from memprobe.slurm.layer_table import measure_missing
    from memprobe.slurm.plan import PROFILE_DIR, plan

    config = slurm.load_config(args.config, out="/nonexistent-plan-only")
    folder = Path(args.measurements) if args.measurements else PROFILE_DIR
    if args.measure:
        measure_missing(slurm.expand_models(config, args.kind), folder)
    table, notes = plan(config, args.kind, cpus_per_task=args.cpus_per_task, folder=folder)
    shown = table.drop(columns="model").set_index("task")
    if args.kind == "sweep" and not args.tasks:
        shown = table.groupby("model", sort=False).agg(
            tasks=("task", "size"), layers=("layers", "first"), passes=("passes", "sum"),
            store_gb=("store_gb", "max"), fits_gb=("fits_gb", "max"),
            mem_gb=("mem_gb", "max"), forward_h=("forward_h", "sum"), pca_h=("pca_h", "sum"),
            score_h=("score_h", "sum"), gpu_h=("gpu_h", "sum"), max_task_h=("gpu_h", "max"),
            basis=("basis", "first"))
    print(shown.round(2).to_string())
    print()
    for line in _plan_totals(table, config, args.kind):
        print(line)
    for note in notes:
        print(f"note: {note}")
    return 0


def _plan_totals(table, config, kind: str) -> list[str]:
    lines = [f"total: {len(table)} tasks, {table['gpu_h'].sum():.1f} GPU-hours"]
    if kind == "sweep":
        lines[0] += (f" (forward {table['forward_h'].sum():.1f}; PCA {table['pca_h'].sum():.1f}, of which "
                     f"fits {table['pca_fit_h'].sum():.1f}; scoring {table['score_h'].sum():.1f})")
        lines.append(_disk_line(table, config))
    else:
        lines[0] += f"; checkpoints {table['disk_gb'].sum():.0f} GB"
    longest = table["gpu_h"].max()
    lines.append(f"longest task {longest:.2f} h → ask --time {int(longest * 90) + 10}; "
                 f"memory per task up to {table['mem_gb'].max():.1f} GB")
    limit = config.resources.get(kind, {}).get("timeout_min")
    if limit and longest * 60 > limit:
        over = (table["gpu_h"] * 60 > limit).sum()
        lines.append(f"{over} tasks outrun the config's timeout_min ({limit}): each is requeued when its "
                     "time is up and resumes from what it finished")
    return lines


def _disk_line(table, config) -> str:
    """The activation store's peak per task (and for the tasks that run at once), PCA fits included."""
    budget = f" (budget {config.max_store_gb:g} GB)" if config.max_store_gb else ""
    line = f"disk: activation store up to {table['store_gb'].max():.1f} GB per task{budget}"
    parallel = config.resources.get("sweep", {}).get("array_parallelism")
    if parallel:
        line += f", {table['store_gb'].nlargest(parallel).sum():.0f} GB for {parallel} tasks at once"
    if table["fits_gb"].any():
        line += (f", of which PCA fits (raw reference activations and components, freed with their group) "
                 f"up to {table['fits_gb'].max():.1f} GB")
    return line
