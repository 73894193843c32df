"""Made-up result tables in the sweep / fine-tune schemas, with known correlations (analysis tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MEMORABILITY = "lamem.memorability-pls"
IT = "MajajHong2015public.IT-pls"
V4 = "MajajHong2015public.V4-pls"
V1 = "FreemanZiemba2013public.V1-pls"
IT_RSA = "rsa92.IT-monkey-rsa"


def score_rows(model: str, depth: np.ndarray, values: dict[str, np.ndarray], units=None) -> pd.DataFrame:
    """Score-table rows (docs/architecture.md) for one model: one row per layer × benchmark."""
    n = len(depth)
    units = np.full(n, 4096) if units is None else np.asarray(units)
    frames = []
    for benchmark, scores in values.items():
        ceiling = np.nan if "memorability" in benchmark else 0.8
        frames.append(
            pd.DataFrame(
                {
                    "model": model,
                    "weights": "pretrained",
                    "layer": [f"layer{i}" for i in range(n)],
                    "call_index": 1,
                    "relative_depth": depth,
                    "units": units,
                    "benchmark": benchmark,
                    "raw": scores,
                    "ceiling": ceiling,
                    "ceiled": np.asarray(scores) / ceiling,
                    "metric": "spearman" if "memorability" in benchmark else "pearson",
                    "n_components": 25,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def correlated_pair(n: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n draws of a standard bivariate normal with Pearson correlation rho."""
    draws = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    return draws[:, 0], draws[:, 1]


def one_model_table(n_layers: int = 150, rho: float = 0.6, seed: int = 0) -> pd.DataFrame:
    """One model whose memorability and IT scores are bivariate normal with correlation ``rho`` (no depth
    effect), and whose V4 score is independent of memorability."""
    rng = np.random.default_rng(seed)
    memorability, it = correlated_pair(n_layers, rho, rng)
    depth = np.linspace(0, 1, n_layers)
    return score_rows(
        "toy:net",
        depth,
        {MEMORABILITY: 0.3 + 0.05 * memorability, IT: 0.5 + 0.1 * it, V4: rng.normal(size=n_layers)},
    )


def depth_confounded_table(n_models: int = 6, n_layers: int = 60, seed: int = 0) -> pd.DataFrame:
    """Models whose memorability and IT scores both rise with relative depth plus independent noise, and
    whose model-level offsets differ: strong raw ρ, partial ρ (depth, model) ≈ 0."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in range(n_models):
        depth = np.sort(rng.uniform(0, 1, n_layers))
        offset = rng.normal(0, 0.1)
        values = {
            MEMORABILITY: offset + 0.4 * depth + rng.normal(0, 0.04, n_layers),
            IT: 2 * offset + 0.5 * depth + rng.normal(0, 0.04, n_layers),
            V1: 0.6 - 0.3 * depth + rng.normal(0, 0.05, n_layers),
            IT_RSA: 0.1 + 0.2 * depth + rng.normal(0, 0.05, n_layers),
        }
        frames.append(score_rows(f"toy:model{m}", depth, values))
    return pd.concat(frames, ignore_index=True)


def zoo_tables(n_models: int = 12, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score table (ends with 2048-wide penultimate + 1000-wide classifier), fine-tune folds and top-1, where
    fine-tuned ρ rises with penultimate IT similarity and top-1 falls with it."""
    rng = np.random.default_rng(seed)
    frames, folds, top1 = [], [], []
    for m in range(n_models):
        model = f"toy:zoo{m}"
        n = 12
        depth = np.linspace(0, 1, n)
        units = [50_000] * (n - 2) + [2048, 1000]
        it = 0.2 + 0.3 * depth + rng.normal(0, 0.03, n)
        it[-2] = 0.3 + 0.02 * m  # penultimate IT similarity grows with m
        memorability = 0.2 + 0.2 * depth + rng.normal(0, 0.03, n)
        frames.append(score_rows(model, depth, {MEMORABILITY: memorability, IT: it}, units))
        for fold in range(5):
            folds.append({"model": model, "fold": fold, "spearman": 0.6 + 0.005 * m + rng.normal(0, 0.002)})
        top1.append({"model": model, "top1": 0.8 - 0.01 * m + rng.normal(0, 0.003)})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(folds), pd.DataFrame(top1)
