"""``memprobe plan``: GPU-hours, memory and disk of a run config's tasks, before anything is submitted.

What it reads (committed in ``slurm/``; each file says where it comes from):
- ``layers.csv``, ``models.csv`` (:mod:`memprobe.slurm.layer_table`), MEASURED for every model: its layers
  and their shapes (those a sweep hooks), input size, parameters, FLOPs per image and the peak memory of
  building it and running one forward pass. ``memprobe plan --measure`` adds the models a config names
  that the tables lack; a model not in them is an error, never a guess.
- ``costs.json`` (``perf/plan_costs.py``): the PLS timing constants (:mod:`memprobe.slurm.pls_cost`; CPU
  measured here, GPU fitted to the H100 runs committed in results/benchmarks/), an H100's forward
  FLOP/s and store-write bytes/s (a random ResNet-152 hooked at every layer:
  results/benchmarks/extraction_throughput_cuda.json), and this CPU's dense float64 product rate.
- ``machine.json`` (``perf/bench_throughput.py``): JPEG decoding images/s on one core, measured here.

A sweep task is one model × one stimulus set of N images (or all of them, N their sum, for pca):
- Layers: the model's measured layers (the config's ``layers:`` selection), each kept as
  ``reducer.output_dim(shape)`` features. With a ``max_store_gb`` budget the sweep's own
  ``memprobe.sweep.run.layer_groups`` cuts them into groups whose N × features × 4 bytes (and fits, for
  pca) fit, and each group is one forward pass over the N images; the peak store is the largest group.
- A pass takes the longer of the loaders (N / (decoding rate per core × ``--cpus-per-task``)) and the
  GPU: N × the model's FLOPs at the H100's ResNet-152 FLOP/s (ASSUMED for every model: true of dense
  convnets, optimistic for depthwise and many-branch ones), plus the bytes stored at the H100's store
  rate (ASSUMED for every layer: the hooks' reduction and the writes of the measured run).
- ``pca`` (memprobe's exact Brain-Score LayerPCA, ASSUMED as ``memprobe.features.pca`` has it: components
  fitted on the 1,000 ``imagenet_sample`` images, one fit per layer wider than k units): a model's
  stimulus sets are one task (``RunConfig.task_sets``), whose every group first fits its layers, with one
  more pass over the 1,000 images (stored raw) and (1,000 + k) × 1,000 × units multiply-adds per layer
  at this CPU's dense rate (an 8-core node is faster). The raw activations (1,000 × units × 4 bytes) and
  the components (units × k × 4 bytes) count in the group's store, and are freed with it. Projecting a
  batch reads every projected layer's components from the store, at ``COMPONENT_READ_BYTES_PER_S``
  (ASSUMED), so each pass adds ⌈N / batch_size⌉ × their bytes / that rate.
- Distinct layers (the config's ``distinct_layers``): not known before the pretrained weights are
  loaded, so every layer counts, and the plan is an upper bound (a note says so).
- Scoring: every layer × benchmark's PLS fits (:func:`memprobe.slurm.pls_cost.benchmark_fits`) at the
  GPU's fitted timing, or the CPU's where the config's options say ``pls_device: cpu``.
- Memory: the model's measured peak + ``HOST_OVERHEAD_GB`` (ASSUMED: CUDA context, loaders) + the
  widest layer's features as they are scored (N × features × 12 bytes: the float32 store's rows and
  their float64 copy).

A fine-tuning task trains ``folds`` × ``max_epochs`` epochs of ``train_images`` at ``TRAIN_COST`` ×
the forward pass (ASSUMED; early stopping usually ends sooner), and keeps a last and a best checkpoint per
fold with the optimiser's state (~3 × the weights).
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from memprobe.benchmarks import PLSOptions
from memprobe.errors import MemprobeError
from memprobe.features import Reducer, get_reducer
from memprobe.features.reducer_spec import ReducerSpec
from memprobe.slurm.config import RunConfig, SlurmError, StimulusGroup, expand_models
from memprobe.slurm.layer_table import LayerTable
from memprobe.slurm.pls_cost import ASSUMED_NEUROIDS, PLSTiming, benchmark_fits
from memprobe.sweep.run import layer_groups

PROFILE_DIR = Path(__file__).resolve().parents[2] / "slurm"
PCA_REFERENCE_IMAGES = 1000  # imagenet_sample, the reference set of memprobe's (and Brain-Score's) LayerPCA
# ASSUMED: memory-mapped components read from the page cache or a local SSD and copied to the GPU
COMPONENT_READ_BYTES_PER_S = 5e9
HOST_OVERHEAD_GB = 2.0  # ASSUMED: the CUDA context and the loader processes
TRAIN_COST = 3.0  # ASSUMED: a training step (forward, backward, update) in forward passes
BYTES_PER_VALUE = 4  # the store's float32
SCORED_BYTES_PER_VALUE = 12  # a layer's float32 rows read from the store and their float64 copy for PLS
DEFAULT_BATCH_SIZE = 32  # run_sweep's


@dataclass(frozen=True)
class PlannedLayer:
    """A measured layer, with what the sweep's grouping and the PCA reducer read of a ``Layer``."""

    name: str
    shape: tuple[int, ...]

    @property
    def units(self) -> int:
        return math.prod(self.shape)


@dataclass
class Measurements:
    table: LayerTable
    costs: dict
    decode_per_core: float

    @classmethod
    def load(cls, folder: Path = PROFILE_DIR) -> Measurements:
        costs, machine = folder / "costs.json", folder / "machine.json"
        if not costs.is_file() or not machine.is_file():
            raise SlurmError(f"no plan costs in {folder} (costs.json, machine.json); run "
                             "`python perf/plan_costs.py` and `python perf/bench_throughput.py`, or pass "
                             "--measurements DIR")
        return cls(LayerTable.load(folder), json.loads(costs.read_text()),
                   json.loads(machine.read_text())["decode_images_per_s_per_core"])

    def check_measured(self, models: list[str], config: RunConfig, folder: Path) -> None:
        missing = self.table.missing(models)
        if missing:
            raise SlurmError(
                f"{len(missing)} model(s) of {config.path} have no measured layers in {folder}: "
                f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; `memprobe plan --config "
                f"{config.path} --measure` measures them (random weights, one forward pass each)")

    def pls_timing(self, config: RunConfig) -> PLSTiming:
        """On the task's GPU, unless the config's options put PLS on the CPU."""
        constants = self.costs["pls"]["cpu" if config.options.get("pls_device") == "cpu" else "gpu"]
        source = constants.get("source", "measured here")
        return PLSTiming(constants["per_fit_s"], constants["per_fold_s"], constants["multiply_adds_per_s"],
                         f"fitted to {constants['device']} timings ({source})")

    def gpu_seconds_per_image(self, model: str) -> float:
        return self.table.models.loc[model, "gflops"] * 1e9 / self.costs["gpu_forward"]["flops_per_s"]

    def rate_basis(self, model: str) -> str:
        """What the model's row rests on: its layers are measured; its GPU rate is, or is scaled by FLOPs."""
        reference = self.costs["gpu_forward"]["model"]
        rate = "measured" if model == reference else f"{reference.split(':')[-1]} × FLOPs (assumed)"
        return f"layers: measured; gpu_rate: {rate}"


def plan_reducer(spec: ReducerSpec) -> Reducer:
    """The config's reducer, for its widths only: pca's depend on its reference set's size, so a stand-in
    of that many items replaces the images (nothing is loaded)."""
    options = {"reference": range(PCA_REFERENCE_IMAGES)} if spec.name == "pca" else {}
    return get_reducer(spec, **options)


def selected_layers(table: LayerTable, model: str, selection: str | list[str] | None) -> list[PlannedLayer]:
    """The model's layers in call order: all (None), a glob (str) or the named ones (list)."""
    layers = [PlannedLayer(name, shape) for name, shape in table.model_layers(model)]
    if selection is None:
        return layers
    if isinstance(selection, str):
        chosen = [layer for layer in layers if fnmatch.fnmatchcase(layer.name, selection)]
        if not chosen:
            raise SlurmError(f"no layer of {model} matches {selection!r}; `memprobe layers {model}` lists "
                             "them")
        return chosen
    unknown = set(selection) - {layer.name for layer in layers}
    if unknown:
        raise SlurmError(f"{model} has no layer(s) {sorted(unknown)}; `memprobe layers {model}` lists them")
    return [layer for layer in layers if layer.name in set(selection)]


def _pass_seconds(images: int, layers: list[PlannedLayer], dims: dict[str, int], model: str,
                  facts: Measurements, loader_rate: float) -> float:
    """One forward pass over ``images`` that stores ``layers``: the loaders' or the GPU's time, the longer."""
    stored = images * sum(dims[layer.name] for layer in layers) * BYTES_PER_VALUE
    store_s = stored / facts.costs["gpu_forward"]["store_bytes_per_s"]
    return max(images / loader_rate, images * facts.gpu_seconds_per_image(model) + store_s)


@dataclass
class PCACost:
    """What the PCA reducer adds to a task: its fits (per group, a raw pass over the reference images and
    the CPU's products) and re-reading the components in every batch."""

    read_s: float = 0.0
    fit_s: float = 0.0


def pca_cost(reducer: Reducer, groups: list[list[PlannedLayer]], dims: dict[str, int], images: int,
             batch_size: int, model: str, facts: Measurements, loader_rate: float) -> PCACost:
    cost = PCACost()
    if not hasattr(reducer, "layers_to_fit"):
        return cost
    for group in groups:
        projected = reducer.layers_to_fit(group)
        if not projected:
            continue
        components = sum(layer.units * dims[layer.name] * BYTES_PER_VALUE for layer in projected)
        cost.read_s += math.ceil(images / batch_size) * components / COMPONENT_READ_BYTES_PER_S
        raw = {layer.name: layer.units for layer in projected}
        cost.fit_s += _pass_seconds(PCA_REFERENCE_IMAGES, projected, raw, model, facts, loader_rate)
        # the Gram matrix of the n × units reference activations, then the k components from them
        cost.fit_s += sum(PCA_REFERENCE_IMAGES * (PCA_REFERENCE_IMAGES + dims[layer.name]) * layer.units
                          for layer in projected) / facts.costs["cpu_gemm_multiply_adds_per_s"]
    return cost


def scoring_seconds(group: StimulusGroup, images: int, dims: dict[str, int], timing: PLSTiming) -> float:
    """Every layer × benchmark's PLS fits."""
    components = PLSOptions().n_components
    seconds = 0.0
    for benchmark in group.benchmarks:
        fits = benchmark_fits(benchmark, images, group.splits)
        if fits is not None:
            seconds += fits.count * sum(timing.seconds(fits.n, dim, fits.q, components, fits.folds)
                                        for dim in dims.values())
    return seconds


def sweep_task(model: str, sets: list[StimulusGroup], config: RunConfig, reducer: Reducer,
               facts: Measurements, cpus_per_task: int) -> dict:
    """One sweep task's row: ``model`` on its stimulus ``sets`` (one of ``RunConfig.task_sets``)."""
    images_of = {}
    for group in sets:
        images_of[group.name] = group.subset or group.images
        if not images_of[group.name]:
            raise SlurmError(f"config {config.path}: stimulus set {group.name!r} needs 'images:' (its size) "
                             "for a plan")
    images = sum(images_of.values())
    task = f"{model}/{'+'.join(images_of)}"
    layers = selected_layers(facts.table, model, config.layers)
    dims = {layer.name: reducer.output_dim(layer.shape) for layer in layers}
    fits = {layer.name: reducer.fit_bytes(layer.shape) for layer in layers}
    sizes = {name: images * dim * BYTES_PER_VALUE + fits[name] for name, dim in dims.items()}
    budget = int(config.max_store_gb * 1e9) if config.max_store_gb else None
    try:
        groups = layer_groups(layers, sizes, budget) if budget else [layers]
    except MemprobeError as error:
        raise SlurmError(f"task {task}: {error}") from None
    loader_rate = facts.decode_per_core * cpus_per_task
    forward_s = sum(_pass_seconds(images, chosen, dims, model, facts, loader_rate) for chosen in groups)
    pca = pca_cost(reducer, groups, dims, images, config.options.get("batch_size", DEFAULT_BATCH_SIZE),
                   model, facts, loader_rate)
    pca_s = pca.read_s + pca.fit_s
    timing = facts.pls_timing(config)
    score_s = sum(scoring_seconds(group, images_of[group.name], dims, timing) for group in sets)
    peak = max(groups, key=lambda chosen: sum(sizes[x.name] for x in chosen))
    widest = max(dims.values(), default=0)
    return {
        "task": task, "model": model, "images": images, "layers": len(layers), "passes": len(groups),
        "store_gb": sum(sizes[x.name] for x in peak) / 1e9, "fits_gb": sum(fits[x.name] for x in peak) / 1e9,
        "mem_gb": facts.table.models.loc[model, "peak_rss_gb"] + HOST_OVERHEAD_GB
        + max(images_of.values()) * widest * SCORED_BYTES_PER_VALUE / 1e9,
        "forward_h": forward_s / 3600, "pca_fit_h": pca.fit_s / 3600, "pca_h": pca_s / 3600,
        "score_h": score_s / 3600, "gpu_h": (forward_s + pca_s + score_s) / 3600,
        "basis": facts.rate_basis(model),
    }


def finetune_task(model: str, config: RunConfig, facts: Measurements, cpus_per_task: int) -> dict:
    settings = config.finetune_settings(model)
    images, epochs = settings.get("train_images"), settings.get("max_epochs", 100)
    if not images:
        raise SlurmError(f"config {config.path}: finetune needs 'train_images:' for a plan")
    folds = int(settings.get("folds", 5))
    loader_s = 1 / (facts.decode_per_core * cpus_per_task)
    hours = folds * epochs * images * max(loader_s, TRAIN_COST * facts.gpu_seconds_per_image(model)) / 3600
    facts_of_model = facts.table.models.loc[model]
    return {"task": f"{model}/{settings.get('head', 'linear')}", "model": model, "images": images * folds,
            "layers": int(facts_of_model["layers"]), "forward_h": hours, "gpu_h": hours,
            "mem_gb": facts_of_model["peak_rss_gb"] + HOST_OVERHEAD_GB,
            "disk_gb": folds * 2 * facts_of_model["params_m"] * 1e6 * BYTES_PER_VALUE * 3 / 1e9,
            "basis": facts.rate_basis(model)}


def plan(config: RunConfig, kind: str = "sweep", cpus_per_task: int = 8,
         measurements: Measurements | None = None,
         folder: Path = PROFILE_DIR) -> tuple[pd.DataFrame, list[str]]:
    """One row per task (hours, memory, disk, and what the GPU rate rests on) and the notes to print."""
    facts = measurements or Measurements.load(folder)
    models = expand_models(config, kind)
    facts.check_measured(models, config, folder)
    if kind == "finetune":
        rows = [finetune_task(model, config, facts, cpus_per_task) for model in models]
        return pd.DataFrame(rows), _notes(facts, cpus_per_task, config)
    reducer = plan_reducer(config.reducer)
    rows = [sweep_task(model, sets, config, reducer, facts, cpus_per_task)
            for model in models for sets in config.task_sets()]
    return pd.DataFrame(rows), _notes(facts, cpus_per_task, config, reducer)


def _notes(facts: Measurements, cpus_per_task: int, config: RunConfig,
           reducer: Reducer | None = None) -> list[str]:
    """What the plan rests on: measured (and where), then assumed; ``reducer`` None for fine-tuning."""
    forward = facts.costs["gpu_forward"]
    notes = [
        f"measured: every model's layers, FLOPs and peak memory (models.csv, layers.csv: random weights, one "
        f"forward pass each); JPEG decoding {facts.decode_per_core:.0f} images/s/core (machine.json)",
        f"gpu_rate measured on {forward['device']} ({forward['source']}): {forward['model']} forward "
        f"{forward['bare_images_per_s']:.0f} images/s = {forward['flops_per_s'] / 1e12:.1f} TFLOP/s, store "
        f"writes {forward['store_bytes_per_s'] / 1e9:.2f} GB/s (hooked at every layer, sketch:4096)",
        f"assumed: every model runs at {forward['model']}'s FLOP/s and store rate; {cpus_per_task} loader "
        f"cores; {HOST_OVERHEAD_GB:.0f} GB of host memory for the CUDA context and loaders",
    ]
    if reducer is None:
        return [*notes, f"assumed: a training step costs {TRAIN_COST:g} forward passes; every epoch runs "
                        "(early stopping usually ends sooner)"]
    pls = facts.pls_timing(config)
    notes.append(f"PLS: {pls.per_fit_s:.3f} s per fit + {pls.per_fold_s:.3f} s per fold + multiply-adds "
                 f"(memprobe's cost model) at {pls.multiply_adds_per_s / 1e9:.0f} G/s, {pls.basis}; assumed "
                 "to hold beyond those sizes")
    if config.options.get("distinct_layers"):
        notes.append("upper bound: the config sets distinct_layers, and which layers repeat an earlier one's "
                     "values depends on the weights the run loads, not the random ones measured; every "
                     "layer is counted (`memprobe layers MODEL --distinct --show-skipped` lists the skipped)")
    if hasattr(reducer, "layers_to_fit"):
        batch_size = config.options.get("batch_size", DEFAULT_BATCH_SIZE)
        notes.append(
            f"assumed ({config.reducer}): memprobe's LayerPCA (memprobe.features.pca) fits each layer wider "
            f"than k units once per model on {PCA_REFERENCE_IMAGES:,} ImageNet images, in the model's one "
            "task, group by group (pca_fit_h; the raw reference activations and components are part of "
            "store_gb, as fits_gb, and freed with the group); the fit's products run at "
            f"{facts.costs['cpu_gemm_multiply_adds_per_s'] / 1e9:.0f} G multiply-adds/s (this CPU, 2 "
            f"threads); every batch re-reads the components at {COMPONENT_READ_BYTES_PER_S / 1e9:.0f} GB/s, "
            f"which is most of pca_h and shrinks as batch_size (now {batch_size}) grows")
    unknown_targets = sorted({benchmark for group in config.groups for benchmark in group.benchmarks
                              if not getattr(benchmark_fits(benchmark, 1, 1), "targets_known", True)})
    if unknown_targets:
        notes.append(f"assumed {ASSUMED_NEUROIDS} neuroids for {', '.join(unknown_targets)}")
    return notes
