"""The numbers Harada & Sakai report, kept as data so every figure can show them beside ours."""

from __future__ import annotations

import pandas as pd

# figure, quantity, region, rho (Spearman), description
_PAPER_CORRELATIONS = [
    ("2", "memorability vs brain similarity, all layers of 64 models", "V1", 0.37),
    ("2", "memorability vs brain similarity, all layers of 64 models", "V2", 0.76),
    ("2", "memorability vs brain similarity, all layers of 64 models", "V4", 0.21),
    ("2", "memorability vs brain similarity, all layers of 64 models", "IT", 0.82),
    ("3", "fine-tuned memorability vs IT similarity of the penultimate layer", "IT", 0.56),
    ("4A", "ImageNet top-1 vs IT similarity of the penultimate layer", "IT", -0.39),
    ("4B", "ImageNet top-1 vs best IT similarity over layers", "IT", 0.57),
    ("S1", "ImageNet top-1 vs fine-tuned memorability", None, 0.46),
]

# Table S2: published LaMem memorability models (Spearman ρ on LaMem).
_PUBLISHED_MODELS = [
    ("MemNet", 0.64),
    ("MCDRNet", 0.663),
    ("MemBoost", 0.67),
    ("EMNet", 0.671),
    ("AMNet", 0.677),
    ("ResMem-Net", 0.679),
    ("DualPathNet92 (fine-tuned, paper)", 0.685),
]

HUMAN_CONSISTENCY_LAMEM = 0.68


def paper_correlations() -> pd.DataFrame:
    """One row per reported correlation: figure, quantity, region, rho."""
    return pd.DataFrame(_PAPER_CORRELATIONS, columns=["figure", "quantity", "region", "rho"])


def paper_rho(figure: str, region: str | None = None) -> float | None:
    """The paper's ρ for a figure (and region for Figure 2), or None when the paper gives none."""
    table = paper_correlations()
    rows = table[table["figure"] == figure]
    if region is not None:
        rows = rows[rows["region"] == region]
    return float(rows["rho"].iloc[0]) if len(rows) == 1 else None


def paper_region(region: str | None) -> str | None:
    """The region of the paper's Figure 2 to set beside ours: the same one, or for a macaque RSA benchmark
    (``IT (RSA)``) the region the paper measured by PLS (``IT``); None where the paper has none (human)."""
    if region is None or region.startswith("human "):
        return None
    return region.removesuffix(" (RSA)")


def published_models() -> pd.DataFrame:
    """Table S2's published models: model, spearman."""
    return pd.DataFrame(_PUBLISHED_MODELS, columns=["model", "spearman"])
