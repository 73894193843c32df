"""Correlations, the one implementation every layer uses: Pearson per column, Spearman per column (average
ranks for ties, as scipy.stats.spearmanr) and Spearman between two vectors. Rows are observations (stimuli),
columns are variables (neuroids, targets). The correlation of a constant column is NaN, as in scipy.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from memprobe.errors import MemprobeError


def _columns(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise MemprobeError(f"{name} must be 1-D or 2-D (stimuli × columns), got shape {values.shape}")
    return values


def pearson_per_column(a, b) -> np.ndarray:
    """Pearson r between matching columns of a and b (stimuli × neuroids), vectorised."""
    a, b = _columns(a, "a"), _columns(b, "b")
    if a.shape != b.shape:
        raise MemprobeError(f"cannot correlate shapes {a.shape} and {b.shape}: stimuli × neuroids differ")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    norm = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / norm
    r[norm == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def spearman_per_column(a, b) -> np.ndarray:
    """Spearman ρ between matching columns: Pearson of average ranks (ties as scipy.stats.spearmanr)."""
    a, b = _columns(a, "a"), _columns(b, "b")
    return pearson_per_column(scipy.stats.rankdata(a, axis=0), scipy.stats.rankdata(b, axis=0))


def spearman(a, b) -> float:
    """Spearman ρ between two vectors."""
    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape:
        raise MemprobeError(f"cannot correlate {a.size} values with {b.size}")
    return float(spearman_per_column(a, b)[0])
