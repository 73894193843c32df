"""Configs and helpers shared by the SLURM tests (the runner itself is ``slurm_probe_runner``)."""

from __future__ import annotations

from pathlib import Path

import yaml

SUPPORT = Path(__file__).resolve().parent


def write_config(folder: Path, delay_s: float = 0.0, **changes) -> Path:
    """A two-model × two-stimulus-set sweep through ``slurm_probe_runner`` (real data, random weights)."""
    config = {
        "name": "probe",
        "out": str(folder / "run"),
        "models": ["toy:*"],
        "weights": "random",
        "reducer": {"name": "pool"},
        "seed": 0,
        "runners": {"sweep": "slurm_probe_runner:run_sweep"},
        "options": {"delay_s": delay_s},
        "stimulus_sets": [
            {"name": "lnsim", "benchmarks": ["lnsim.memorability-pls"], "images": 2632, "subset": 40},
            {"name": "v4", "benchmarks": ["cowley_v4.210305-pls"], "images": 400, "subset": 40, "splits": 4},
        ],
        "resources": {"sweep": {"cpus_per_task": 1, "mem_gb": 2, "timeout_min": 10}},
        **changes,
    }
    path = folder / "probe.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def computed(task) -> list[str]:
    """The (benchmark, layer) scores a task's runner actually computed, in order, over all its runs."""
    log = task.directory / "work" / "computed.log"
    return log.read_text().splitlines() if log.is_file() else []


def lnsim_folder(folder: Path, n: int = 24) -> str:
    """The first ``n`` LNSIM photos and their scores as a user folder (``folder:`` data for fine-tuning)."""
    import os
    import shutil

    import pandas as pd
    from slurm_probe_runner import lnsim_scores

    images = Path(os.environ["MEMPROBE_DATA"]) / "lnsim" / "Image_data"
    (folder / "images").mkdir(parents=True)
    names = [f"{i + 1:04d}.jpg" for i in range(n)]
    for name in names:
        shutil.copy(images / name, folder / "images" / name)
    pd.DataFrame({"image": names, "score": lnsim_scores()[:n]}).to_csv(folder / "scores.csv", index=False)
    return f"folder:{folder / 'images'}:{folder / 'scores.csv'}"
