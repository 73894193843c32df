"""Figures from result tables (seaborn); each saves a PNG and a PDF when given an output path stem.

Figures are built as ``matplotlib.figure.Figure`` objects, not through pyplot: no backend or global figure
registry is involved, so they work headless, don't accumulate in long runs, and notebooks display them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from memprobe.analysis.correlations import memorability_brain_stats
from memprobe.analysis.regions import MEMORABILITY, benchmark_region
from memprobe.analysis.tables import (
    choose_memorability,
    layer_matrix,
    list_brain_benchmarks,
    require_benchmarks,
    score_values,
)
from memprobe.atomic import atomic_path

FORMATS = ("png", "pdf")


def save_figure(figure: Figure, out: str | Path) -> list[Path]:
    """Write ``out``.png and ``out``.pdf atomically (temp file, then rename); returns the paths."""
    stem = Path(out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def _finish(figure: Figure, out: str | Path | None) -> Figure:
    if out is not None:
        save_figure(figure, out)
    return figure


def _label(benchmark: str, overrides: Mapping[str, str] | None) -> str:
    region = benchmark_region(benchmark, overrides)
    return f"{benchmark} ({region})" if region else benchmark


def _format_correlation(row: Mapping, prefix: str = "") -> str:
    return (
        f"ρ = {row[prefix + 'rho']:.2f} [{row[prefix + 'ci_low']:.2f}, {row[prefix + 'ci_high']:.2f}], "
        f"p_perm = {row[prefix + 'p_perm']:.3g}"
    )


def layer_profile(
    table: pd.DataFrame,
    benchmarks: Sequence[str] | None = None,
    value: str = "auto",
    region_overrides: Mapping[str, str] | None = None,
    title: str | None = None,
    out: str | Path | None = None,
) -> Figure:
    """Each benchmark's score against relative depth, one line per benchmark (and per model, if several)."""
    benchmarks = list(benchmarks) if benchmarks is not None else sorted(table["benchmark"].unique())
    require_benchmarks(table, benchmarks, "the layer profile")
    rows = table[table["benchmark"].isin(benchmarks)].assign(
        score=lambda t: score_values(t, value),
        benchmark_label=lambda t: t["benchmark"].map(lambda b: _label(b, region_overrides)),
    )
    rows = rows.sort_values(["model", "benchmark", "relative_depth"])
    several = rows["model"].nunique() > 1
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    sns.lineplot(
        data=rows,
        x="relative_depth",
        y="score",
        hue="benchmark_label",
        units="model" if several else None,
        estimator=None if several else "mean",
        marker="o",
        markersize=3,
        linewidth=1,
        alpha=0.6 if several else 1.0,
        sort=False,
        ax=axes,
    )
    axes.set_xlabel("relative depth (0 = input side, 1 = output)")
    axes.set_ylabel(
        "score (memorability: Spearman ρ; brain: ceiled)" if value == "auto" else f"{value} score"
    )
    models = sorted(rows["model"].unique())
    axes.set_title(title or f"Layer profile: {models[0] if len(models) == 1 else f'{len(models)} models'}")
    axes.legend(title="benchmark", fontsize="small", loc="best")
    sns.despine(fig=figure)
    return _finish(figure, out)


def memorability_vs_brain(
    table: pd.DataFrame,
    memorability_benchmark: str | None = None,
    brain_benchmarks: Sequence[str] | None = None,
    stats: pd.DataFrame | None = None,
    value: str = "auto",
    region_overrides: Mapping[str, str] | None = None,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    out: str | Path | None = None,
) -> Figure:
    """Figure-2-style panels: memorability accuracy vs each brain similarity, one point per layer.

    Points are coloured by relative depth, since depth drives both axes; each title gives Spearman ρ with its
    bootstrap 95 % CI and permutation p, the partial ρ controlling for depth (and model), and the paper's ρ.
    """
    memorability = choose_memorability(table, memorability_benchmark, region_overrides)
    if brain_benchmarks is None:
        brain_benchmarks = list_brain_benchmarks(table, region_overrides)
    brain = [benchmark for benchmark in brain_benchmarks if benchmark != memorability]
    if stats is None:
        stats = memorability_brain_stats(
            table, memorability, brain, value, region_overrides, n_boot=n_boot, n_perm=n_perm, seed=seed
        )
    stats = stats.set_index("y")
    figure = Figure(figsize=(5.2 * len(brain) + 1, 5.4), layout="constrained")
    axes = figure.subplots(1, len(brain), squeeze=False)
    norm = Normalize(0, 1)
    y_name = "memorability accuracy" if benchmark_region(memorability) == MEMORABILITY else "score"
    for axis, benchmark in zip(axes[0], brain, strict=True):
        layers = layer_matrix(table, [memorability, benchmark], value)
        axis.scatter(
            layers[benchmark],
            layers[memorability],
            c=layers["relative_depth"],
            cmap="viridis",
            norm=norm,
            s=14,
        )
        sns.regplot(data=layers, x=benchmark, y=memorability, scatter=False, ci=None, color="black", ax=axis)
        row = stats.loc[benchmark]
        paper = ""
        if pd.notna(row["paper_rho"]):
            paper = f"\npaper ({row['paper_region']}): ρ = {row['paper_rho']:.2f}"
        axis.set_title(
            f"{_label(benchmark, region_overrides)}, {int(row['n'])} layers\n{_format_correlation(row)}\n"
            f"partial | {row['partial_controls']}:\n{_format_correlation(row, 'partial_')}{paper}",
            fontsize=8,
        )
        axis.set_xlabel(f"brain similarity ({benchmark})", fontsize=9)
        axis.set_ylabel(f"{y_name} ({memorability})", fontsize=9)
    colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=axes[0].tolist(), shrink=0.8)
    colorbar.set_label("relative depth")
    models = sorted(table["model"].unique())
    figure.suptitle(
        f"Memorability vs brain similarity: {models[0] if len(models) == 1 else f'{len(models)} models'}"
    )
    return _finish(figure, out)


def model_scatter(
    data: pd.DataFrame,
    x: str,
    y: str,
    statistic: Mapping,
    x_label: str,
    y_label: str,
    title: str,
    out: str | Path | None = None,
) -> Figure:
    """One point per model (labelled), regression line, ρ with CI and the paper's ρ in the title."""
    figure = Figure(figsize=(6, 5), layout="constrained")
    axis = figure.subplots()
    sns.regplot(data=data, x=x, y=y, ci=None, color="tab:blue", scatter_kws={"s": 18}, ax=axis)
    for model, row in data.iterrows():
        axis.annotate(str(model), (row[x], row[y]), fontsize=6, xytext=(2, 2), textcoords="offset points")
    paper = (
        ""
        if statistic.get("paper_rho") is None or pd.isna(statistic["paper_rho"])
        else (f"; paper ρ = {statistic['paper_rho']:.2f}")
    )
    axis.set_title(
        f"{title}\n{_format_correlation(statistic)} (n = {statistic['n']} models){paper}", fontsize=9
    )
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    sns.despine(fig=figure)
    return _finish(figure, out)


def table_s2_figure(table: pd.DataFrame, out: str | Path | None = None) -> Figure:
    """Bars of Spearman ρ for our fine-tuned models and the published ones, with human consistency."""
    figure = Figure(figsize=(7, 0.28 * len(table) + 1.5), layout="constrained")
    axis = figure.subplots()
    sns.barplot(data=table, y="model", x="spearman", hue="source", dodge=False, ax=axis)
    axis.axvline(table["human_consistency"].iloc[0], color="black", linestyle="--", label="human consistency")
    low = max(0.0, table["spearman"].min() - 0.05)
    axis.set_xlim(low, max(table["spearman"].max(), table["human_consistency"].iloc[0]) + 0.02)
    axis.set_xlabel("Spearman ρ with memorability")
    axis.set_title("Table S2: fine-tuned models vs published memorability models")
    axis.legend(fontsize="small", loc="lower right")
    sns.despine(fig=figure)
    return _finish(figure, out)
