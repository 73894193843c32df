"""``memprobe plan``: GPU-hours, memory and disk for a run config, before anything is submitted.

What is MEASURED (``benchmarks/bench_throughput.py`` → ``slurm/throughput.csv`` + ``slurm/machine.json``,
on a 2-core CPU): per model, bare forward images/s at 224 px, peak resident memory, the number of
layers with >= 24 units and their mean width; per machine, JPEG decoding images/s on one core and the
seconds of one scikit-learn PLSRegression(25) fit per (training sample × feature).

What is ASSUMED (constants below, printed with every plan):
- a GPU runs ResNet-50 forward at ``GPU_RESNET50_IMAGES_PER_S`` (fp32, V100-class; A100/H100 are
  faster, so this errs long), and every other model at that rate scaled by its measured CPU cost
  relative to ResNet-50 (true for FLOP-bound convnets, optimistic for depthwise-conv models);
- hooks and per-batch reduction cost ``HOOK_OVERHEAD`` × the bare forward;
- data loading scales linearly with ``--cpus-per-task`` at the measured per-core decoding rate, and
  the forward pass runs at the slower of the GPU and the loaders;
- scoring (PLS per layer × benchmark × split) on the task's GPU is ``GPU_SCORING_SPEEDUP`` × faster
  than the measured scikit-learn CPU fit, which scales linearly with training samples × features (the
  whole cowley_v4.V4-pls benchmark measured ×39.6 on one H100, single fits ×69–109:
  results/benchmarks/gpu_h100.txt; the benchmark's figure is used);
- a model not in the measured table runs at the table's median rate with the paper's mean of
  16,860 / 64 ≈ 263 layers per model (and is flagged);
- fine-tuning costs ``TRAIN_COST`` × the forward pass per image, for ``max_epochs`` (an upper bound:
  early stopping usually ends sooner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from memprobe.slurm import RunConfig, SlurmError, expand_models

GPU_RESNET50_IMAGES_PER_S = 1000.0
HOOK_OVERHEAD = 1.5
GPU_SCORING_SPEEDUP = 40.0
TRAIN_COST = 3.0
PAPER_MEAN_LAYERS = 16860 / 64
BASE_MEMORY_GB = 2.0
BYTES_PER_VALUE = 4
PROFILE_DIR = Path(__file__).resolve().parents[1] / "slurm"


@dataclass
class Measurements:
    models: pd.DataFrame  # indexed by model identifier
    decode_per_core: float
    pls_seconds_per_sample_feature: float

    @classmethod
    def load(cls, folder: Path = PROFILE_DIR) -> Measurements:
        table, machine = folder / "throughput.csv", folder / "machine.json"
        if not table.is_file() or not machine.is_file():
            raise SlurmError(f"no measured throughput in {folder} (throughput.csv, machine.json); "
                             "run `python benchmarks/bench_throughput.py` or pass --measurements DIR")
        facts = json.loads(machine.read_text())
        return cls(pd.read_csv(table).set_index("model"), facts["decode_images_per_s_per_core"],
                   facts["pls25_seconds_per_sample_feature"])

    def model(self, identifier: str) -> tuple[pd.Series, bool]:
        """The model's measured row, or a stand-in (median rate, the paper's mean layer count)."""
        aliases = {identifier, identifier.replace("resmem:", "torchvision:")}
        for alias in aliases:
            if alias in self.models.index:
                return self.models.loc[alias], True
        median = self.models.median(numeric_only=True)
        median["layers"] = PAPER_MEAN_LAYERS
        return median, False


def _features(reducer: dict, row: pd.Series) -> float:
    """Features per layer after the reducer: an upper bound for srp/sketch/pca (narrower layers pass)."""
    name = reducer.get("name", "none")
    if name in ("srp", "sketch", "pca"):
        return min(float(reducer.get("dim", reducer.get("n_components", 4096))), row["mean_units"])
    if name == "pool":
        return row["mean_channels"]
    return row["mean_units"]


def plan(config: RunConfig, kind: str = "sweep", cpus_per_task: int = 8,
         measurements: Measurements | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per unit with hours, memory and disk; and the notes (measured / assumed) to print."""
    facts = measurements or Measurements.load()
    reference = facts.models.loc["torchvision:resnet50", "images_per_s"]
    rows = []
    for model in expand_models(config, kind):
        row, measured = facts.model(model)
        gpu_rate = GPU_RESNET50_IMAGES_PER_S * row["images_per_s"] / reference
        forward_rate = min(gpu_rate / HOOK_OVERHEAD, facts.decode_per_core * cpus_per_task)
        if kind == "sweep":
            for group in config.groups:
                images = group.subset or group.images
                if not images:
                    raise SlurmError(f"config {config.path}: stimulus set {group.name!r} needs 'images:' "
                                     "(its size) for a plan")
                features = _features(config.reducer, row)
                fits = row["layers"] * len(group.benchmarks) * group.splits
                fit_s = facts.pls_seconds_per_sample_feature * images * features / GPU_SCORING_SPEEDUP
                scoring_s, forward_s = fits * fit_s, images / forward_rate
                rows.append({
                    "unit": f"{model}/{group.name}", "measured": measured, "images": images,
                    "layers": int(row["layers"]), "forward_h": forward_s / 3600,
                    "scoring_h": scoring_s / 3600, "gpu_h": (forward_s + scoring_s) / 3600,
                    "mem_gb": BASE_MEMORY_GB
                    + max(row["peak_mem_gb"], 3 * images * features * BYTES_PER_VALUE / 1e9),
                    "disk_gb": images * row["layers"] * features * BYTES_PER_VALUE / 1e9,
                })
        else:
            settings = config.finetune or {}
            images, epochs = settings.get("train_images"), settings.get("max_epochs", 100)
            if not images:
                raise SlurmError(f"config {config.path}: finetune needs 'train_images:' for a plan")
            folds = int(settings.get("folds", 5))
            hours = folds * epochs * images * TRAIN_COST / forward_rate / 3600
            rows.append({"unit": f"{model}/{settings.get('head', 'linear')}", "measured": measured,
                         "images": images * folds, "layers": int(row["layers"]), "forward_h": hours,
                         "scoring_h": 0.0, "gpu_h": hours,
                         "mem_gb": BASE_MEMORY_GB + row["peak_mem_gb"] * TRAIN_COST,
                         # a last and a best checkpoint per fold, with optimiser state (~3 × the weights)
                         "disk_gb": folds * 2 * row["params_m"] * 1e6 * BYTES_PER_VALUE * 3 / 1e9})
    table = pd.DataFrame(rows)
    notes = [
        f"measured ({PROFILE_DIR}): CPU forward rate, peak memory and layer widths of "
        f"{table['measured'].sum()} of {len(table)} units' models; decoding {facts.decode_per_core:.0f} "
        f"images/s/core; PLS25 fit {facts.pls_seconds_per_sample_feature:.2e} s per sample×feature",
        f"assumed: GPU ResNet-50 forward {GPU_RESNET50_IMAGES_PER_S:.0f} images/s, others scaled by measured "
        f"CPU cost; hook overhead ×{HOOK_OVERHEAD}; {cpus_per_task} loader cores; GPU scoring "
        f"×{GPU_SCORING_SPEEDUP} faster than scikit-learn on CPU; training ×{TRAIN_COST} a forward pass",
    ]
    unmeasured = sorted({unit.rsplit("/", 1)[0] for unit in table.loc[~table["measured"], "unit"]})
    if unmeasured:
        notes.append(f"not measured, median rate and {PAPER_MEAN_LAYERS:.0f} layers assumed: "
                     f"{', '.join(unmeasured[:8])}{' ...' if len(unmeasured) > 8 else ''}")
    return table, notes
