"""Ceilings and RDMs: split-half consistency with Spearman-Brown, RDMs and their comparison (the correlations
themselves are ``memprobe.correlation``'s). Arrays are numpy; rows are stimuli, columns neuroids.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import ShuffleSplit

from memprobe.correlation import pearson_per_column, spearman
from memprobe.errors import BenchmarkError, UnscorableFeatures

CEILING_SPLITS = 10
CEILING_SEED = 1  # Brain-Score's InternalConsistency: ShuffleSplit(10, train_size=0.5, random_state=1)


def spearman_brown(r, n: float = 2.0):
    """Reliability of an n-times longer test from the reliability r of one part: n r / (1 + (n − 1) r)."""
    return n * r / (1 + (n - 1) * r)


@dataclass
class SplitHalfConsistency:
    """Split-half internal consistency of repeated measurements, Spearman-Brown corrected."""

    value: float  # mean over splits of the median over neuroids
    per_split: np.ndarray  # splits
    per_neuroid: np.ndarray  # splits × neuroids (corrected r)
    protocol: dict = field(default_factory=dict)


def split_half_consistency(
    repeats, n_splits: int = CEILING_SPLITS, seed: int = CEILING_SEED
) -> SplitHalfConsistency:
    """Brain-Score's InternalConsistency on stimuli × neuroids × repetitions (NaN = missing repeat).

    For each of ``n_splits`` random halvings of the repetitions (ShuffleSplit, train_size 0.5), average
    each half over its repetitions, Pearson r per neuroid across stimuli, Spearman-Brown correct
    (n = 2) per neuroid, take the median over neuroids; the ceiling is the mean over splits.
    """
    repeats = np.asarray(repeats, dtype=np.float64)
    if repeats.ndim != 3 or repeats.shape[2] < 2:
        raise BenchmarkError(
            f"split-half consistency needs stimuli × neuroids × repetitions with ≥ 2 repetitions, "
            f"got shape {repeats.shape}"
        )
    splitter = ShuffleSplit(n_splits=n_splits, train_size=0.5, random_state=seed)
    per_neuroid = []
    for half1, half2 in splitter.split(np.zeros(repeats.shape[2])):
        with warnings.catch_warnings():  # a stimulus whose half has only missing repeats → NaN, dropped
            warnings.simplefilter("ignore", RuntimeWarning)
            mean1, mean2 = np.nanmean(repeats[:, :, half1], axis=2), np.nanmean(repeats[:, :, half2], axis=2)
        usable = np.isfinite(mean1).all(axis=1) & np.isfinite(mean2).all(axis=1)
        per_neuroid.append(spearman_brown(pearson_per_column(mean1[usable], mean2[usable])))
    per_neuroid = np.array(per_neuroid)
    per_split = np.nanmedian(per_neuroid, axis=1)
    protocol = {
        "ceiling_formula": "mean over splits of median over neuroids of SB(r), SB(r) = 2r/(1+r)",
        "ceiling_splits": n_splits,
        "ceiling_seed": seed,
        "ceiling_split": "ShuffleSplit over repetitions, train_size=0.5 (Brain-Score InternalConsistency)",
        "ceiling_repetitions": int(repeats.shape[2]),
    }
    return SplitHalfConsistency(float(per_split.mean()), per_split, per_neuroid, protocol)


def rdm(features) -> np.ndarray:
    """Representational dissimilarity matrix: 1 − Pearson r between stimuli's feature vectors."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] < 2:
        raise BenchmarkError(f"an RDM needs stimuli × features with ≥ 2 features, got shape {features.shape}")
    centred = features - features.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    if (norms == 0).any():
        constant = np.flatnonzero(norms == 0).tolist()
        shown = ", ".join(map(str, constant[:10]))
        shown += f" … ({len(constant)} in all)" if len(constant) > 10 else ""
        raise UnscorableFeatures(f"stimuli at rows {shown} have constant features: their correlation with "
                                 "other stimuli is undefined, so this layer has no RDM")
    unit = centred / norms[:, None]
    dissimilarity = 1.0 - np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(dissimilarity, 0.0)
    return dissimilarity


def upper_triangle(matrix) -> np.ndarray:
    """The entries above the diagonal, row by row."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise BenchmarkError(f"expected a square matrix, got shape {matrix.shape}")
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def compare_rdms(a, b) -> float:
    """Spearman ρ between the upper triangles of two RDMs (stimuli in the same order)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise BenchmarkError(f"RDMs of shapes {a.shape} and {b.shape} cannot be compared")
    return spearman(upper_triangle(a), upper_triangle(b))
