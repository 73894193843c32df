"""Reading result tables and shaping them for the analyses.

Three kinds of CSV feed the analyses, recognised by their columns:
- score tables (sweep output, docs/architecture.md "Score table"): ``model, layer, relative_depth,
  benchmark, raw`` (+ ``ceiled``, ``units``, ...); per-split tables (with a ``split`` column) are skipped;
- fine-tune tables: ``model, fold, spearman`` (+ ``mse``, ...), one row per model × fold;
- ImageNet top-1 tables: ``model, top1``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from memprobe.analysis.regions import MEMORABILITY, REGIONS, benchmark_region
from memprobe.errors import DataError

SCORE_COLUMNS = ("model", "layer", "relative_depth", "benchmark", "raw")
FINETUNE_COLUMNS = ("model", "fold", "spearman")
TOP1_COLUMNS = ("model", "top1")
IMAGENET_CLASSES = 1000


@dataclass
class Results:
    """The tables found under the paths given, concatenated per kind, and which files they came from."""

    scores: pd.DataFrame | None = None
    finetune: pd.DataFrame | None = None
    top1: pd.Series | None = None
    sources: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        if not any(self.sources.values()):
            return "no result tables"
        return "; ".join(f"{kind}: {', '.join(files)}" for kind, files in self.sources.items() if files)

    def without(self, patterns: Iterable[str]) -> Results:
        """These results less every model matching a shell-style pattern (e.g. a network trained for
        memorability, in an analysis of ImageNet networks); a pattern that matches no model is an error."""
        patterns = list(patterns)

        def kept(models: Iterable[str]) -> list[bool]:
            return [not any(fnmatch.fnmatchcase(model, p) for p in patterns) for model in models]

        models = set()
        for table in (self.scores, self.finetune):
            models |= set() if table is None else set(table["model"])
        models |= set() if self.top1 is None else set(self.top1.index)
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(m, p) for m in models)]
        if unmatched:
            listing = ", ".join(sorted(models))
            raise DataError(f"{', '.join(unmatched)} matches none of the models ({listing})")
        return replace(
            self,
            scores=None if self.scores is None else self.scores[kept(self.scores["model"])],
            finetune=None if self.finetune is None else self.finetune[kept(self.finetune["model"])],
            top1=None if self.top1 is None else self.top1[kept(self.top1.index)],
        )


def _table_kind(columns: Iterable[str]) -> str | None:
    columns = set(columns)
    if "split" in columns:
        return None
    for kind, required in (("scores", SCORE_COLUMNS), ("finetune", FINETUNE_COLUMNS), ("top1", TOP1_COLUMNS)):
        if set(required) <= columns:
            return kind
    return None


def _csv_files(paths: Iterable[str | Path]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(file for file in sorted(path.rglob("*.csv")) if not _task_output(file, path))
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path} does not exist. Give result CSV files or folders that hold them.")
    return list(dict.fromkeys(file.resolve() for file in files))  # a file named twice is read once


def _task_output(file: Path, folder: Path) -> bool:
    """Whether ``file`` (found under ``folder``) belongs to a task of a run folder (one with ``run.yaml``):
    a run is read through the table ``memprobe collect`` writes, not its tasks' own and their work files."""
    for parent in file.parents:
        if parent == folder:
            return False
        if parent.name == "tasks" and (parent.parent / "run.yaml").is_file():
            return True
    return False


def load_results(paths: Iterable[str | Path]) -> Results:
    """Read every CSV under ``paths`` (files or folders; a run folder's tasks through its collected table)
    and sort them into score/fine-tune/top-1 tables."""
    found: dict[str, list[pd.DataFrame]] = {"scores": [], "finetune": [], "top1": []}
    sources: dict[str, list[str]] = {"scores": [], "finetune": [], "top1": []}
    for file in _csv_files(paths):
        try:
            table = pd.read_csv(file)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DataError(f"{file} is not a readable CSV ({error}). Fix or remove it.") from error
        kind = _table_kind(table.columns)
        if kind:
            found[kind].append(table.assign(source=str(file)))
            sources[kind].append(str(file))
    results = Results(sources=sources)
    if found["scores"]:
        results.scores = check_scores(pd.concat(found["scores"], ignore_index=True))
    if found["finetune"]:
        finetune = pd.concat(found["finetune"], ignore_index=True)
        # `memprobe finetune` and `collect` add summary rows (fold "mean", "overall") below the folds
        results.finetune = finetune[pd.to_numeric(finetune["fold"], errors="coerce").notna()]
        _check_unique(results.finetune, ["model", "fold"], "fine-tune")
    if found["top1"]:
        top1 = pd.concat(found["top1"], ignore_index=True).drop_duplicates("model", keep="last")
        results.top1 = top1.set_index("model")["top1"].astype(float)
    return results


def _check_unique(table: pd.DataFrame, keys: list[str], kind: str) -> None:
    """Rows repeating ``keys`` are an error naming the file(s): within one file a malformed table, across
    files two runs of the same thing that must not be pooled."""
    duplicated = table.duplicated(keys, keep=False)
    if not duplicated.any():
        return
    first = table.loc[duplicated, keys].iloc[0]
    same = (table[keys] == first).all(axis=1)
    files = (
        list(dict.fromkeys(table.loc[same, "source"])) if "source" in table.columns else [f"the {kind} table"]
    )
    key = ", ".join(f"{k}={v}" for k, v in first.items())
    if len(files) > 1:
        raise DataError(
            f"{kind} rows for {key} (and others) appear in {' and '.join(files)}: separate runs of the "
            "same model. Analyse one of them (give its file or folder), or remove one."
        )
    raise DataError(
        f"{files[0]} repeats {kind} rows ({key}, {int(duplicated.sum())} rows in all); keep one row per "
        f"{' × '.join(keys)} (per-split rows belong in the per-split table)."
    )


def check_scores(table: pd.DataFrame, source: str = "score table") -> pd.DataFrame:
    """Check a score table has the columns the analyses read, and one row per model × layer × benchmark."""
    missing = [column for column in SCORE_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(
            f"{source} lacks column(s) {', '.join(missing)}; a score table needs {', '.join(SCORE_COLUMNS)} "
            "(see docs/architecture.md, 'Score table'). Was it written by `memprobe sweep`?"
        )
    _check_unique(table, ["model", "layer", "benchmark"], "score")
    return table


def score_values(table: pd.DataFrame, value: str = "auto") -> pd.Series:
    """The number each row contributes: ``raw``, ``ceiled``, or ``auto``.

    ``auto`` follows the paper: memorability accuracy is the raw Spearman ρ, brain similarity is the
    ceiled Brain-Score value where a ceiling exists (raw otherwise). Within one benchmark the ceiling is a
    constant, so this choice changes the axes, never a rank correlation.
    """
    if value == "raw":
        return table["raw"].astype(float)
    if value == "ceiled":
        if "ceiled" not in table.columns:
            raise DataError("the score table has no 'ceiled' column; use --value raw.")
        return table["ceiled"].astype(float)
    if value != "auto":
        raise ValueError(f"value must be raw, ceiled or auto, got {value!r}")
    raw = table["raw"].astype(float)
    if "ceiled" not in table.columns:
        return raw
    is_memorability = table["benchmark"].map(lambda b: benchmark_region(b) == MEMORABILITY)
    ceiled = table["ceiled"].astype(float)
    return raw.where(is_memorability | ceiled.isna(), ceiled)


def require_benchmarks(table: pd.DataFrame, benchmarks: Iterable[str], needed_for: str) -> None:
    available = sorted(table["benchmark"].unique())
    missing = [benchmark for benchmark in benchmarks if benchmark not in available]
    if missing:
        raise DataError(
            f"{needed_for} needs benchmark(s) {', '.join(missing)}, which the score table lacks; "
            f"it has: {', '.join(available)}."
        )


def layer_matrix(table: pd.DataFrame, benchmarks: Iterable[str], value: str = "auto") -> pd.DataFrame:
    """One row per (model, layer) scored on all ``benchmarks``: model, layer, relative_depth, <benchmark>…"""
    benchmarks = list(dict.fromkeys(benchmarks))
    rows = table[table["benchmark"].isin(benchmarks)].assign(score=lambda t: score_values(t, value))
    wide = rows.pivot_table(index=["model", "layer"], columns="benchmark", values="score", aggfunc="first")
    depth = rows.groupby(["model", "layer"])["relative_depth"].first()
    wide = wide.reindex(columns=benchmarks).assign(relative_depth=depth).dropna().reset_index()
    return wide[["model", "layer", "relative_depth", *benchmarks]]


def memorability_benchmarks(table: pd.DataFrame, overrides: Mapping[str, str] | None = None) -> list[str]:
    return [b for b in sorted(table["benchmark"].unique()) if benchmark_region(b, overrides) == MEMORABILITY]


def _region_order(label: str) -> tuple:
    area = label.removeprefix("human ").split(" ")[0]
    return (label.startswith("human "), REGIONS.index(area) if area in REGIONS else len(REGIONS), label)


def list_brain_benchmarks(table: pd.DataFrame, overrides: Mapping[str, str] | None = None) -> list[str]:
    """Benchmarks with a brain region: macaque V1, V2, V4, IT (PLS before RSA), then human, then others."""
    labelled = {b: benchmark_region(b, overrides) for b in table["benchmark"].unique()}
    brain = [b for b, region in labelled.items() if region not in (None, MEMORABILITY)]
    return sorted(brain, key=lambda b: (*_region_order(labelled[b]), b))


def choose_memorability(table: pd.DataFrame, requested: str | None, overrides=None) -> str:
    """The memorability benchmark to analyse: the one requested, else LaMem's if present, else the first."""
    candidates = memorability_benchmarks(table, overrides)
    if requested:
        require_benchmarks(table, [requested], "the memorability axis")
        return requested
    if not candidates:
        raise DataError(
            "no memorability benchmark (id with a 'memorability' token, e.g. lnsim.memorability-pls) in the "
            f"score table; it has {', '.join(sorted(table['benchmark'].unique()))}. Pass --memorability ID."
        )
    lamem = [c for c in candidates if c.startswith("lamem")]
    return (lamem or candidates)[0]


def penultimate_layers(
    table: pd.DataFrame, overrides: Mapping[str, str] | None = None, n_classes: int = IMAGENET_CLASSES
) -> pd.Series:
    """model → its penultimate layer (the classifier's input).

    Rule: order a model's layers by relative depth; the trailing layers with exactly ``n_classes`` units, or
    one more (a background class first, as TensorFlow's MobileNets have), are the classifier (and e.g. its
    softmax); the deepest layer before them is the penultimate one. A model whose deepest layer is not
    ``n_classes`` wide was swept without its classifier, so its deepest layer is taken. Without a ``units``
    column, the second-deepest layer is taken. ``overrides`` wins per model.
    """
    overrides = dict(overrides or {})
    chosen = {}
    for model, layers in table.drop_duplicates(["model", "layer"]).groupby("model"):
        if model in overrides:
            if overrides[model] not in set(layers["layer"]):
                raise DataError(
                    f"penultimate layer {overrides[model]!r} for {model} is not in the score table."
                )
            chosen[model] = overrides[model]
            continue
        layers = layers.sort_values("relative_depth")
        if "units" in layers.columns:
            widths = layers["units"].to_numpy()
            trailing = 0
            while trailing < len(widths) and widths[len(widths) - 1 - trailing] in (n_classes, n_classes + 1):
                trailing += 1
            position = len(widths) - 1 - trailing
        else:
            position = len(layers) - 2
        if position < 0:
            raise DataError(
                f"cannot tell the penultimate layer of {model}; give it with --penultimate MODEL=LAYER."
            )
        chosen[model] = layers["layer"].iloc[position]
    return pd.Series(chosen, name="layer").rename_axis("model")


def finetune_summary(finetune: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and SD of the fold Spearman ρ, and the number of folds."""
    missing = [column for column in FINETUNE_COLUMNS if column not in finetune.columns]
    if missing:
        raise DataError(
            f"fine-tune table lacks {', '.join(missing)}; it needs {', '.join(FINETUNE_COLUMNS)}."
        )
    summary = finetune.groupby("model")["spearman"].agg(spearman="mean", spearman_sd="std", folds="count")
    return summary.reset_index()


def as_mapping(values, name: str) -> pd.Series:
    """A model → number Series from a Series, dict, or two-column DataFrame (model, name)."""
    if isinstance(values, pd.DataFrame):
        if not {"model", name} <= set(values.columns):
            raise DataError(f"the {name} table needs columns model, {name}.")
        values = values.set_index("model")[name]
    series = pd.Series(values, dtype=float, name=name)
    return series[np.isfinite(series)].rename_axis("model")
