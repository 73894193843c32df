"""The paper's correlations, computed from result tables, with CIs, permutation p and depth/model controls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from memprobe.analysis import reference
from memprobe.analysis.regions import benchmark_region
from memprobe.analysis.stats import correlate
from memprobe.analysis.tables import (
    as_mapping,
    choose_memorability,
    finetune_summary,
    layer_matrix,
    list_brain_benchmarks,
    penultimate_layers,
    require_benchmarks,
    score_values,
)
from memprobe.errors import DataError

MIN_POINTS = 4


def memorability_brain_stats(
    table: pd.DataFrame,
    memorability_benchmark: str | None = None,
    brain_benchmarks: Sequence[str] | None = None,
    value: str = "auto",
    region_overrides: Mapping[str, str] | None = None,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Layer-wise memorability accuracy vs each brain benchmark (Figure 2; what ``memprobe probe`` prints).

    One row per brain benchmark: Spearman ρ over all layers (of all models in the table) with a bootstrap
    95 % CI (layers; with several models, models then layers within models) and permutation p; and the
    partial Spearman ρ controlling for relative depth (and for model identity when there are several models);
    with several models also each control alone (``depth_partial_*``, ``model_partial_*``).
    """
    memorability = choose_memorability(table, memorability_benchmark, region_overrides)
    if brain_benchmarks is None:
        brain_benchmarks = list_brain_benchmarks(table, region_overrides)
    brain = [benchmark for benchmark in brain_benchmarks if benchmark != memorability]
    if not brain:
        raise DataError(
            "no brain benchmark (id naming V1, V2, V4 or IT, e.g. MajajHong2015public.IT-pls) in the score "
            f"table; it has {', '.join(sorted(table['benchmark'].unique()))}. "
            "Map one with --region ID=REGION."
        )
    require_benchmarks(table, [memorability, *brain], "memorability vs brain similarity")
    rows = []
    for benchmark in brain:
        layers = layer_matrix(table, [memorability, benchmark], value)
        if len(layers) < MIN_POINTS:
            raise DataError(
                f"only {len(layers)} layer(s) are scored on both {memorability} and {benchmark}; "
                f"a correlation needs at least {MIN_POINTS}."
            )
        several = layers["model"].nunique() > 1
        x, y, groups = layers[memorability], layers[benchmark], layers["model"]
        raw = correlate(x, y, groups=groups, n_boot=n_boot, n_perm=n_perm, seed=seed)
        depth = layers["relative_depth"]
        resampling = dict(groups=groups, n_boot=n_boot, n_perm=n_perm, seed=seed)
        partial = correlate(x, y, covariates=depth, control_groups=several,
                            covariate_names=("relative depth",), **resampling)
        # Across models, which control takes the correlation away: depth alone, or model identity alone?
        separate = {} if not several else {
            **correlate(x, y, covariates=depth, covariate_names=("relative depth",),
                        **resampling).as_dict("depth_partial_"),
            **correlate(x, y, control_groups=True, **resampling).as_dict("model_partial_"),
        }
        region = benchmark_region(benchmark, region_overrides)
        rows.append(
            {
                "figure": "2",
                "x": memorability,
                "y": benchmark,
                "region": region,
                "n_models": layers["model"].nunique(),
                **raw.as_dict(),
                **partial.as_dict("partial_"),
                **separate,
                "paper_region": reference.paper_region(region),
                "paper_rho": reference.paper_rho("2", reference.paper_region(region)),
                "n_boot": n_boot,
                "n_perm": n_perm,
                "seed": seed,
            }
        )
    return pd.DataFrame(rows)


def choose_it_benchmark(table: pd.DataFrame, requested: str | None = None, region_overrides=None) -> str:
    """The IT similarity benchmark: the one requested, else the IT PLS one, else the IT RSA one."""
    if requested:
        require_benchmarks(table, [requested], "the IT similarity axis")
        return requested
    labelled = {b: benchmark_region(b, region_overrides) for b in sorted(table["benchmark"].unique())}
    for wanted in ("IT", "IT (RSA)"):
        matches = [b for b, region in labelled.items() if region == wanted]
        if matches:
            return matches[0]
    raise DataError(
        "no IT benchmark in the score table (ids naming IT, e.g. MajajHong2015public.IT-pls or "
        f"rsa92.IT-monkey-rsa); it has {', '.join(labelled)}. Pass --it-benchmark ID."
    )


def it_similarity_per_model(
    table: pd.DataFrame, it_benchmark: str, value: str = "auto", penultimate: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per model: IT similarity of its penultimate layer and its best IT similarity over layers."""
    rows = table[table["benchmark"] == it_benchmark].assign(score=lambda t: score_values(t, value))
    layers = penultimate_layers(table, penultimate)
    at_penultimate = rows.set_index(["model", "layer"])["score"]
    keys = [(model, layer) for model, layer in layers.items() if (model, layer) in at_penultimate.index]
    return pd.DataFrame(
        {
            "penultimate_layer": layers,
            "it_penultimate": pd.Series({key[0]: at_penultimate[key] for key in keys}, dtype=float),
            "it_best": rows.groupby("model")["score"].max(),
        }
    ).rename_axis("model")


def across_models(
    x: pd.Series,
    y: pd.Series,
    figure: str,
    x_name: str,
    y_name: str,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
) -> dict:
    """Spearman ρ between two per-model quantities, bootstrap CI over models, permutation p."""
    paired = pd.concat([x.rename("x"), y.rename("y")], axis=1, join="inner").dropna()
    if len(paired) < MIN_POINTS:
        raise DataError(
            f"Figure {figure} needs {x_name} and {y_name} for at least {MIN_POINTS} models; "
            f"{len(paired)} model(s) have both ({', '.join(map(str, paired.index)) or 'none'})."
        )
    result = correlate(paired["x"], paired["y"], n_boot=n_boot, n_perm=n_perm, seed=seed)
    return {
        "figure": figure,
        "x": x_name,
        "y": y_name,
        "n_models": len(paired),
        **result.as_dict(),
        "resampling": "models",
        "paper_rho": reference.paper_rho(figure),
        "n_boot": n_boot,
        "n_perm": n_perm,
        "seed": seed,
    }


def table_s2(finetune: pd.DataFrame) -> pd.DataFrame:
    """Our fine-tuned models (mean fold ρ) beside the published memorability models, best first.

    The published numbers are on LaMem; a ``dataset`` column in the fine-tune table is named in ``source``
    so results on another data set are not mistaken for a like-for-like comparison.
    """
    datasets = sorted(finetune["dataset"].astype(str).unique()) if "dataset" in finetune.columns else []
    label = f"memprobe fine-tuned ({', '.join(datasets)})" if datasets else "memprobe fine-tuned"
    ours = finetune_summary(finetune).assign(source=label)
    published = reference.published_models().assign(source="published, LaMem (paper Table S2)")
    combined = pd.concat([ours, published], ignore_index=True)
    combined["human_consistency"] = reference.HUMAN_CONSISTENCY_LAMEM
    return combined.sort_values("spearman", ascending=False, ignore_index=True)


def top1_series(top1) -> pd.Series:
    return as_mapping(top1, "top1")
