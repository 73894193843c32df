"""The layer sweep: one model × its layers × benchmarks → a tidy score table (``run_folder`` lists the files).

The model's layers are listed once; activations are extracted once per stimulus set (all requested layers
in one streaming pass, kept in the activation store), then every cell of the layer × benchmark grid is
scored and written as soon as it exists, so a killed sweep resumes cell by cell.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from memprobe.benchmarks import check_benchmarks, load_benchmark
from memprobe.config import device as resolve_device
from memprobe.errors import MemprobeError, UnscorableFeatures
from memprobe.features import (
    ActivationStore,
    Layer,
    LayerList,
    delete_fits,
    extract,
    get_reducer,
    list_layers,
    store_key,
)
from memprobe.pls import PLSWarning
from memprobe.sweep.config import SweepConfig, format_size
from memprobe.sweep.run_folder import RunFolder
from memprobe.zoo import load_model


@dataclass
class SweepTimes:
    """Wall time of the sweep's phases, in seconds (the cost benchmark reads these)."""

    extraction: float = 0.0
    scoring: float = 0.0


def _layer_row(layer) -> dict:
    return {
        "layer": layer.name,
        "call_index": layer.call_index,
        "relative_depth": layer.relative_depth,
        "units": layer.units,
    }


def score_cell(benchmark, layer, features: dict, config: SweepConfig, reducer_key: str):
    """One cell of the grid: its table record (with its per-split rows under ``splits``) and its details
    (or None). A layer whose features carry nothing to score gets a record without a score and the reason."""
    common = {
        "model": config.model,
        "weights": config.weights,
        **_layer_row(layer),
        "benchmark": benchmark.identifier,
        "reducer": reducer_key,
        "n_stimuli": int(sum(f.sizes["presentation"] for f in features.values())),
    }
    try:
        score, pls_warnings = _score_quietly(benchmark, features)
    except UnscorableFeatures as error:
        # One uninformative layer (e.g. constant output) must not stop a sweep over hundreds: it is
        # recorded without a score, with the reason, and the summary lists it.
        warnings.warn(f"{layer.name} × {benchmark.identifier} has no score: {error}", stacklevel=2)
        unscored = {"raw": None, "ceiling": None, "ceiled": None, "unscored": str(error), "splits": []}
        return {**common, **unscored}, None
    record = {
        **common,
        "raw": float(score.raw),
        "ceiling": None if score.ceiling is None else float(score.ceiling),
        "ceiled": None if score.ceiled is None else float(score.ceiled),
        **{k: v for k, v in score.protocol.items() if k != "reducer"},
        "pls_warnings": len(pls_warnings),
        "pls_warning": pls_warnings[0] if pls_warnings else None,
        "splits": score.per_split.to_dict(orient="records"),
    }
    return record, score.details


def _score_quietly(benchmark, features):
    """The benchmark's score and its PLS warnings (kept in the table rather than printed per fold)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = benchmark.score(features)
    pls = []
    for warning in caught:
        if issubclass(warning.category, PLSWarning):
            pls.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return score, sorted(set(pls))


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    store: ActivationStore | None = None,
    batch_size: int = 32,
    device: str | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    times: SweepTimes | None = None,
    pls_device: str | None = None,
    max_store: int | None = None,
    keep_activations: bool = False,
) -> pd.DataFrame:
    """Score every selected layer of ``config.model`` on every benchmark; returns (and writes) ``scores.csv``.

    Finished cells found in ``out`` are not rescored; the activation store makes a rerun skip finished
    extraction batches too. ``device`` runs the network, ``pls_device`` the PLS fits (default: ``device``,
    itself CUDA when present).

    ``max_store`` (bytes) is a disk budget for what this sweep keeps in the store: its layers are then taken
    in groups whose reduced activations over all its stimulus sets, with what the reducer fits to them
    (PCA: the raw reference activations and the components), fit the budget. Each group is fitted and
    extracted (one pass over each stimulus set), scored, written, and its activations and fits freed
    unless ``keep_activations``; a killed sweep resumes at the first unfinished group. The scores do not
    depend on the budget. Without one, every layer is extracted in one pass and stays in the store.
    """
    identifiers = check_benchmarks(config.benchmarks)
    pls_device = resolve_device(pls_device or device)
    benchmarks = [load_benchmark(b, **config.benchmark_options(b, pls_device)) for b in identifiers]
    folder = RunFolder(out, config.model)
    folder.claim(config)
    times = times or SweepTimes()
    store = store or ActivationStore()

    model = load_model(config.model, weights=config.weights, seed=config.seed)
    catalogue = list_layers(model, min_units=config.min_units, distinct=config.distinct_layers)
    layers = _selected_layers(catalogue, config)
    reducer = get_reducer(config.reducer)
    folder.write_layers(catalogue.frame())

    pending = {layer.name: [b for b in benchmarks if not folder.has_cell(b.identifier, layer.name)]
               for layer in layers}
    sets_of = {b.identifier: b.stimulus_sets() for b in benchmarks if any(b in p for p in pending.values())}
    stimulus_sets = {s.name: s for sets in sets_of.values() for s in sets}
    keys = {name: store_key(model, stimuli, reducer) for name, stimuli in stimulus_sets.items()}
    todo = [layer for layer in layers if pending[layer.name]]
    if max_store is None:
        groups = [todo] if todo else []
    else:
        images = sum(len(s) for s in stimulus_sets.values())
        sizes = {layer.name: images * reducer.output_dim(layer.shape) * 4 + reducer.fit_bytes(layer.shape)
                 for layer in todo}
        groups = layer_groups(todo, sizes, max_store)
    free = max_store is not None and not keep_activations

    def free_store(names: list[str], sets) -> None:
        for name in sets:
            store.delete(keys[name], names)
        delete_fits(model, reducer, store, names)

    if free:  # a sweep killed between scoring a group and freeing it left that group behind
        free_store([layer.name for layer in layers if not pending[layer.name]], keys)

    bar = tqdm(total=sum(len(pending[x.name]) for x in todo), desc=f"scoring {config.model}", unit="cell",
               disable=not progress)
    for group in groups:
        started = time.perf_counter()
        names = [layer.name for layer in group]
        needed = {s.name for layer in group for b in pending[layer.name] for s in sets_of[b.identifier]}
        activations = {
            name: extract(model, stimulus_sets[name], layers=names, reducer=reducer, store=store,
                          batch_size=batch_size, device=device, num_workers=num_workers, progress=progress,
                          catalogue=catalogue)
            for name in stimulus_sets if name in needed
        }
        times.extraction += time.perf_counter() - started
        started = time.perf_counter()
        for layer in group:
            for benchmark in pending[layer.name]:
                features = {s.name: activations[s.name][layer.name] for s in sets_of[benchmark.identifier]}
                record, details = score_cell(benchmark, layer, features, config, reducer.key())
                folder.write_cell(benchmark.identifier, layer.name, record, details)
                bar.update()
        times.scoring += time.perf_counter() - started
        if free:
            free_store(names, needed)
    bar.close()
    return folder.collect([b.identifier for b in benchmarks], [x.name for x in layers])


def _selected_layers(catalogue: LayerList, config: SweepConfig) -> list[Layer]:
    layer_filter = list(config.layers) if isinstance(config.layers, tuple) else config.layers
    layers = catalogue.select(layer_filter)
    if config.max_module_depth is not None:
        layers = [x for x in layers if x.module.count(".") < config.max_module_depth]
        if not layers:
            raise MemprobeError(f"no layer has a module path of at most {config.max_module_depth} parts")
    return layers


def layer_groups(layers: list[Layer], sizes: dict[str, int], budget: int) -> list[list[Layer]]:
    """``layers`` (in call order) cut into consecutive groups whose ``sizes`` (bytes) add up to at most
    ``budget``; a layer larger than the budget alone is an error that names the smallest budget that works."""
    widest = max(layers, key=lambda layer: sizes[layer.name], default=None)
    if widest is not None and sizes[widest.name] > budget:
        raise MemprobeError(
            f"a store budget of {format_size(budget)} is smaller than what one layer keeps in the store: "
            f"{widest.name} needs {format_size(sizes[widest.name])} (its activations over this sweep's "
            "stimulus sets and its reducer's fit). "
            f"The smallest budget that works is {format_size(sizes[widest.name])} (--max-store, max_store_gb)"
        )
    groups: list[list[Layer]] = []
    used = budget
    for layer in layers:
        if used + sizes[layer.name] > budget:
            groups.append([])
            used = 0
        groups[-1].append(layer)
        used += sizes[layer.name]
    return groups
