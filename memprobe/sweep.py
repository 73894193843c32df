"""The layer sweep: one model × its layers × benchmarks → a tidy score table.

Activations are extracted once per stimulus set (all requested layers in one streaming pass, kept in the
activation store), then every layer is scored on every benchmark. Each (benchmark, layer) result is written
atomically under ``OUT/<model>/units/`` as soon as it exists, so a killed sweep resumes at layer granularity;
the tables are assembled from those files at the end:

- ``scores.csv``: one row per model × layer × benchmark (the analysis input, see docs/architecture.md);
- ``splits.csv``: one row per model × layer × benchmark × split;
- ``details/<benchmark>/<layer>.nc``: per-neuroid (or per-split) labelled results, where a benchmark has them,
  gathered at the end into ``details/<benchmark>.nc`` (layer × the benchmark's dims, float32, compressed:
  the file to keep or share; the per-layer files, like the units, only serve resuming);
- ``layers.csv``: the model's layer table (incl. how many calls were skipped and why, in ``sweep.json``);
- ``sweep.json``: what was run (the configuration that every stored result must match).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

import memprobe
from memprobe.atomic import write_text
from memprobe.benchmarks import PLSOptions, list_benchmarks, load_benchmark
from memprobe.config import device as resolve_device
from memprobe.errors import BenchmarkError, MemprobeError, UnscorableFeatures
from memprobe.extract import extract, list_layers
from memprobe.reduce import get_reducer
from memprobe.regression import PLSWarning
from memprobe.store import ActivationStore, write_json_atomic

DEFAULT_BENCHMARKS = (
    "lnsim.memorability-pls",
    "cowley_v4.V4-pls",
    "rsa92.IT-monkey-rsa",
    "rsa92.IT-human-rsa",
)

# float32 PLS: scores equal to ~5 decimals in ~2/3 of the time (results/benchmarks/neural_speed.json)
PLS_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class SweepConfig:
    """Everything that changes a sweep's numbers (the result files of one output folder must share it)."""

    model: str
    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS
    weights: str = "pretrained"
    seed: int = 0
    layers: str | tuple[str, ...] | None = None
    max_module_depth: int | None = None
    reducer: str = "sketch"
    subset: int | None = None
    subset_seed: int = 0
    min_units: int = 24
    pls_dtype: str = "float64"

    def digest(self) -> str:
        fields = asdict(self)
        if fields["pls_dtype"] == "float64":  # the default: older output folders keep their digest
            del fields["pls_dtype"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def benchmark_options(self, identifier: str, pls_device: str = "cpu") -> dict:
        """``pls_device`` is where the PLS fits run: not part of the configuration (same numbers)."""
        options = {"subset": self.subset, "subset_seed": self.subset_seed}
        if identifier.endswith("-pls"):
            if self.pls_dtype not in PLS_DTYPES:
                raise MemprobeError(f"pls_dtype {self.pls_dtype!r}: choose one of {', '.join(PLS_DTYPES)}")
            options["pls"] = PLSOptions(device=pls_device, dtype=PLS_DTYPES[self.pls_dtype])
        return options


@dataclass
class SweepTimes:
    """Wall time of the sweep's phases, in seconds (the cost benchmark reads these)."""

    extraction: float = 0.0
    scoring: float = 0.0


def model_dirname(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def check_benchmarks(identifiers: Sequence[str]) -> list[str]:
    known = list_benchmarks()
    unknown = [b for b in identifiers if b not in known]
    if unknown:
        raise BenchmarkError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not identifiers:
        raise BenchmarkError(f"no benchmark given; known: {', '.join(known)}")
    return list(identifiers)


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise MemprobeError(
            f"output directory {out} is not writable ({error.strerror}); choose another --out"
        ) from error


def _unit_path(run_dir: Path, benchmark: str, layer: str) -> Path:
    return run_dir / "units" / benchmark / f"{layer}.json"


def _details_path(run_dir: Path, benchmark: str, layer: str) -> Path:
    return run_dir / "details" / benchmark / f"{layer}.nc"


def _write_details(path: Path, details, encoding: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    details.to_netcdf(temporary, engine="h5netcdf", encoding=encoding)
    os.replace(temporary, path)


def _claim_run_dir(run_dir: Path, config: SweepConfig) -> None:
    """Record the configuration, or check that the folder already holds results of this very configuration."""
    manifest = run_dir / "sweep.json"
    run_dir.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        stored = json.loads(manifest.read_text())
        if stored.get("config_digest") != config.digest():
            raise MemprobeError(
                f"{run_dir} holds a sweep with another configuration ({stored.get('config')}); "
                "use another --out, or delete that folder to start over"
            )
        return
    write_json_atomic(
        manifest,
        {"config": asdict(config), "config_digest": config.digest(), "memprobe": memprobe.__version__},
    )


def _layer_row(layer) -> dict:
    return {
        "layer": layer.name,
        "call_index": layer.call_index,
        "relative_depth": layer.relative_depth,
        "units": layer.units,
    }


def _score_unit(
    benchmark, layer, features: dict, config: SweepConfig, reducer_key: str, run_dir: Path
) -> dict:
    common = {
        "model": config.model,
        "weights": config.weights,
        **_layer_row(layer),
        "benchmark": benchmark.identifier,
    }
    n_stimuli = int(sum(f.sizes["presentation"] for f in features.values()))
    try:
        score, pls_warnings = _score_quietly(benchmark, features)
    except UnscorableFeatures as error:
        # One uninformative layer (e.g. constant output) must not stop a sweep over hundreds: it is
        # recorded without a score, with the reason, and the summary lists it.
        warnings.warn(f"{layer.name} × {benchmark.identifier} has no score: {error}", stacklevel=2)
        record = {**common, "raw": None, "ceiling": None, "ceiled": None, "reducer": reducer_key,
                  "n_stimuli": n_stimuli, "unscored": str(error), "splits": []}
        _write_unit(run_dir, benchmark.identifier, layer.name, record)
        return record
    record = {
        **common,
        "raw": float(score.raw),
        "ceiling": None if score.ceiling is None else float(score.ceiling),
        "ceiled": None if score.ceiled is None else float(score.ceiled),
        "reducer": reducer_key,
        "n_stimuli": n_stimuli,
        **{k: v for k, v in score.protocol.items() if k not in ("reducer",)},
        "pls_warnings": len(pls_warnings),
        "pls_warning": pls_warnings[0] if pls_warnings else None,
        "splits": score.per_split.to_dict(orient="records"),
    }
    if score.details is not None:
        _write_details(_details_path(run_dir, benchmark.identifier, layer.name), score.details)
    _write_unit(run_dir, benchmark.identifier, layer.name, record)
    return record


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


def _write_unit(run_dir: Path, benchmark: str, layer: str, record: dict) -> None:
    path = _unit_path(run_dir, benchmark, layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)


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
) -> pd.DataFrame:
    """Score every selected layer of ``config.model`` on every benchmark; returns (and writes) ``scores.csv``.

    Finished (benchmark, layer) units found in ``out`` are not rescored; the activation store makes a
    rerun skip finished extraction batches too. ``device`` runs the network, ``pls_device`` the PLS
    fits (default: ``device``, itself CUDA when present).
    """
    from memprobe.zoo import load_model

    identifiers = check_benchmarks(config.benchmarks)
    out = Path(out)
    check_writable(out)
    pls_device = resolve_device(pls_device or device)
    benchmarks = [load_benchmark(b, **config.benchmark_options(b, pls_device)) for b in identifiers]
    run_dir = out / model_dirname(config.model)
    _claim_run_dir(run_dir, config)
    times = times or SweepTimes()

    model = load_model(config.model, weights=config.weights, seed=config.seed)
    catalogue = list_layers(model, min_units=config.min_units)
    layer_filter = list(config.layers) if isinstance(config.layers, tuple) else config.layers
    layers = catalogue.select(layer_filter)
    if config.max_module_depth is not None:
        layers = [x for x in layers if x.module.count(".") < config.max_module_depth]
        if not layers:
            raise MemprobeError(f"no layer has a module path of at most {config.max_module_depth} parts")
    reducer = get_reducer(config.reducer)
    catalogue.frame().to_csv(run_dir / "layers.csv", index=False)

    done = {
        (b.identifier, layer.name)
        for b in benchmarks
        for layer in layers
        if _unit_path(run_dir, b.identifier, layer.name).exists()
    }
    todo = [(b, layer) for layer in layers for b in benchmarks if (b.identifier, layer.name) not in done]
    sets_of = {b.identifier: b.stimulus_sets() for b, _ in todo}
    stimulus_sets = {}
    for sets in sets_of.values():
        for stimuli in sets:
            stimulus_sets.setdefault(stimuli.name, stimuli)

    activations = {}
    started = time.perf_counter()
    for name, stimuli in stimulus_sets.items():
        activations[name] = extract(
            model,
            stimuli,
            layers=[layer.name for layer in layers],
            reducer=reducer,
            store=store,
            batch_size=batch_size,
            device=device,
            num_workers=num_workers,
            min_units=config.min_units,
            progress=progress,
        )
    times.extraction += time.perf_counter() - started

    started = time.perf_counter()
    for benchmark, layer in tqdm(
        todo, desc=f"scoring {config.model}", unit="layer×benchmark", disable=not progress
    ):
        features = {s.name: activations[s.name][layer.name] for s in sets_of[benchmark.identifier]}
        _score_unit(benchmark, layer, features, config, reducer.key(), run_dir)
    times.scoring += time.perf_counter() - started
    return collect_run(
        run_dir, benchmarks=[b.identifier for b in benchmarks], layers=[x.name for x in layers]
    )


def collect_run(run_dir: Path, benchmarks: Sequence[str], layers: Sequence[str]) -> pd.DataFrame:
    """Assemble ``scores.csv`` and ``splits.csv`` from the unit files; every unit must be present."""
    records, splits, missing = [], [], []
    for layer in layers:
        for benchmark in benchmarks:
            path = _unit_path(run_dir, benchmark, layer)
            if not path.exists():
                missing.append(f"{benchmark} × {layer}")
                continue
            record = json.loads(path.read_text())
            for split in record.pop("splits"):
                splits.append({"model": record["model"], "layer": layer, "benchmark": benchmark, **split})
            records.append(record)
    if missing:
        raise MemprobeError(f"{len(missing)} unit(s) missing in {run_dir}: {', '.join(missing[:5])}")
    scores = pd.DataFrame(records)
    for benchmark in benchmarks:
        _gather_details(run_dir, benchmark, layers)
    write_text(run_dir / "scores.csv", scores.to_csv(index=False))
    write_text(run_dir / "splits.csv", pd.DataFrame(splits).to_csv(index=False))
    return scores


def _gather_details(run_dir: Path, benchmark: str, layers: Sequence[str]) -> None:
    paths = {layer: _details_path(run_dir, benchmark, layer) for layer in layers}
    found = [layer for layer, path in paths.items() if path.exists()]
    if not found:
        return
    parts = []
    for layer in found:
        with xr.open_dataarray(paths[layer], engine="h5netcdf") as part:
            parts.append(part.load().astype(np.float32))
    gathered = xr.concat(parts, dim=pd.Index(found, name="layer"))
    gathered.name = "score"
    _write_details(run_dir / "details" / f"{benchmark}.nc", gathered,
                   encoding={"score": {"zlib": True, "complevel": 4}})
