"""Run configs (``analyses/paper.yaml`` documents every key): parsing, runner resolution, and the checks that
models and benchmarks exist, done before anything is written or submitted."""

from __future__ import annotations

import fnmatch
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from memprobe.benchmarks import check_benchmarks
from memprobe.errors import MemprobeError, ModelError
from memprobe.features.reducer_spec import ReducerSpec, ReducerSpecError

KINDS = ("sweep", "finetune")
DEFAULT_RUNNERS = {"sweep": "memprobe.slurm:sweep_task", "finetune": "memprobe.slurm:finetune_task"}


class SlurmError(MemprobeError):
    """A run directory, config or scheduler problem the user can fix."""


@dataclass
class StimulusGroup:
    """Benchmarks scored on one stimulus set. ``images`` (its size) and ``splits`` (CV splits per
    benchmark) size the plan; ``subset`` caps the images a task uses."""

    name: str
    benchmarks: list[str]
    images: int | None = None
    subset: int | None = None
    splits: int = 5


@dataclass
class RunConfig:
    path: Path | None
    name: str
    out: Path
    models: list[str]
    weights: str = "pretrained"
    layers: str | None = None
    reducer: ReducerSpec = field(default_factory=lambda: ReducerSpec("none"))
    seed: int = 0
    groups: list[StimulusGroup] = field(default_factory=list)
    runners: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))
    options: dict = field(default_factory=dict)
    max_store_gb: float | None = None
    finetune: dict | None = None
    resources: dict[str, dict] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    def finetune_settings(self, model: str) -> dict:
        """The ``finetune:`` keys for ``model``: the section's, then those of every ``per_model`` pattern
        that matches it, in the order written (e.g. a frozen backbone for a network too big to train)."""
        settings = {key: value for key, value in (self.finetune or {}).items() if key != "per_model"}
        for pattern, changes in (self.finetune or {}).get("per_model", {}).items():
            if fnmatch.fnmatchcase(model, pattern):
                settings.update(changes)
        return settings

    def task_sets(self) -> list[list[StimulusGroup]]:
        """The stimulus sets of each of a model's sweep tasks: one set each, or all in one task when the
        reducer learns (PCA), so that its fits are made once per model and freed with each layer group."""
        if not self.reducer.learns:
            return [[group] for group in self.groups]
        if len({group.subset for group in self.groups}) > 1:
            raise SlurmError(f"config {self.path}: with reducer {self.reducer} a model's stimulus sets run "
                             "in one task, so they need the same 'subset'")
        return [self.groups] if self.groups else []


def load_config(path: str | os.PathLike, out: str | os.PathLike | None = None) -> RunConfig:
    """Read a run config (see ``analyses/paper.yaml`` for every key, documented)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SlurmError(f"config {path} does not exist") from None
    except yaml.YAMLError as error:
        raise SlurmError(f"config {path} is not valid YAML: {error}") from None
    return parse_config(raw, path=path, out=out)


def parse_config(raw: dict, path: Path | None = None, out: str | os.PathLike | None = None) -> RunConfig:
    where = f"config {path}" if path else "config"
    if not isinstance(raw, dict):
        raise SlurmError(f"{where}: expected a mapping of keys (name, out, models, stimulus_sets, ...)")
    unknown = set(raw) - {
        "name", "out", "models", "weights", "layers", "reducer", "seed", "stimulus_sets", "runners",
        "options", "finetune", "resources", "description", "max_store_gb",
    }
    if unknown:
        raise SlurmError(f"{where}: unknown keys {sorted(unknown)}; see analyses/paper.yaml for the format")
    for key in ("models", "stimulus_sets"):
        if not raw.get(key):
            raise SlurmError(f"{where}: '{key}' is missing or empty")
    out_dir = out or raw.get("out")
    if not out_dir:
        raise SlurmError(f"{where}: no output directory; set 'out:' or pass --out DIR")
    groups = [_stimulus_group(entry, where) for entry in raw["stimulus_sets"]]
    names = [group.name for group in groups]
    if len(set(names)) != len(names):
        raise SlurmError(f"{where}: stimulus_sets names must be unique, got {names}")
    return RunConfig(
        path=path,
        name=raw.get("name", path.stem if path else "run"),
        out=Path(out_dir).expanduser().resolve(),
        models=list(raw["models"]),
        weights=raw.get("weights", "pretrained"),
        layers=raw.get("layers"),
        reducer=_reducer(raw.get("reducer", "none"), where),
        max_store_gb=_positive(raw.get("max_store_gb"), "max_store_gb", where),
        seed=int(raw.get("seed", 0)),
        groups=groups,
        runners={**DEFAULT_RUNNERS, **raw.get("runners", {})},
        options=raw.get("options", {}),
        finetune=_finetune_section(raw.get("finetune"), where),
        resources=raw.get("resources", {}),
        raw=raw,
    )


def _finetune_section(section, where: str) -> dict | None:
    if section is None:
        return None
    per_model = section.get("per_model", {}) if isinstance(section, dict) else None
    if not isinstance(per_model, dict) or not all(isinstance(v, dict) for v in per_model.values()):
        raise SlurmError(f"{where}: 'finetune:' must be a mapping of settings, its 'per_model:' a mapping of "
                         "model pattern → settings (e.g. per_model: {'resmem:*': {frozen: true}})")
    return section


def _stimulus_group(entry, where: str) -> StimulusGroup:
    if not isinstance(entry, dict) or "name" not in entry or not entry.get("benchmarks"):
        raise SlurmError(f"{where}: each stimulus_sets entry needs 'name' and 'benchmarks'; got {entry!r}")
    unknown = set(entry) - {"name", "benchmarks", "images", "subset", "splits"}
    if unknown:
        raise SlurmError(f"{where}: stimulus set {entry['name']!r} has unknown keys {sorted(unknown)}")
    return StimulusGroup(entry["name"], list(entry["benchmarks"]), entry.get("images"), entry.get("subset"),
                         int(entry.get("splits", 5)))


def _positive(value, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SlurmError(f"{where}: {key} must be a positive number, got {value!r}")
    return float(value)


def _reducer(value, where: str) -> ReducerSpec:
    try:
        return ReducerSpec.parse(value)
    except ReducerSpecError as error:
        raise SlurmError(f"{where}: {error}") from None


def resolve_runner(runner: str):
    """The function a ``module:function`` runner string names."""
    module_name, _, function_name = runner.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function_name)
    except (ImportError, AttributeError) as error:
        raise SlurmError(f"runner {runner!r} cannot be imported ({error}); expected 'module:function'") \
            from None


def _registry(runner: str, listing: str, fallback_module: str):
    """The runner's module may say what it can run (``list_models``, ``list_benchmarks``); else memprobe's."""
    module = importlib.import_module(runner.partition(":")[0])
    return module if hasattr(module, listing) else importlib.import_module(fallback_module)


def expand_models(config: RunConfig, kind: str = "sweep") -> list[str]:
    """Identifiers, glob patterns (``torchvision:resnet*``) and named sets (``paper64``) → identifiers;
    an entry that names nothing known is rejected before anything runs."""
    registry = _registry(config.runners[kind], "list_models", "memprobe.zoo")
    models: list[str] = []
    for entry in config.models:
        matches = registry.list_models(entry)
        if not matches and hasattr(registry, "model_set"):
            try:
                matches = registry.model_set(entry)
            except ModelError:
                matches = []
        if not matches:
            raise ModelError(
                f"config {config.path}: unknown model {entry!r} (no identifier, pattern match or named set); "
                "`memprobe models` lists the known identifiers"
            )
        models.extend(m for m in matches if m not in models)
    return models


def check_config_benchmarks(config: RunConfig) -> None:
    known = _registry(config.runners["sweep"], "list_benchmarks", "memprobe.benchmarks").list_benchmarks()
    for group in config.groups:
        check_benchmarks(group.benchmarks, known, where=f"config {config.path}: stimulus set {group.name!r}")
