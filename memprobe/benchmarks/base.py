"""What every benchmark is and returns (``Benchmark``, ``Score``), the PLS map and the cross-validation the
PLS benchmarks share, and how features are matched to a benchmark's stimuli."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import xarray as xr

from memprobe.errors import BenchmarkError
from memprobe.pls.estimator import PLSRegression


@dataclass
class Score:
    """A benchmark's result: ``raw`` aggregate, ``ceiling`` (None where none exists),
    ``ceiled = raw / ceiling``, per-split raw scores, the protocol (splits, seeds, stratification,
    ceiling formula) and per-neuroid details where the benchmark has neuroids."""

    raw: float
    ceiling: float | None
    per_split: pd.DataFrame
    protocol: dict
    details: xr.DataArray | None = None
    ceiled: float | None = field(init=False)

    def __post_init__(self):
        self.ceiled = None if self.ceiling is None else self.raw / self.ceiling


class Benchmark(ABC):
    """A benchmark scores one layer's features (stimulus-set name → presentation × neuroid ``DataArray``)
    against data it owns; ``protocol()`` says how (splits, seeds, stratification, ceiling formula) and is
    recorded with every score."""

    identifier: str

    @abstractmethod
    def stimulus_sets(self) -> list:
        """The ``StimulusSet``s whose features ``score`` needs."""

    @abstractmethod
    def protocol(self) -> dict:
        """How this benchmark scores: the entries recorded beside every score it gives."""

    @abstractmethod
    def score(self, features: dict[str, xr.DataArray]) -> Score:
        """The score of one layer's features."""


@dataclass
class PLSOptions:
    """The PLS map every PLS benchmark fits: scikit-learn's PLSRegression(n_components, scale=False)."""

    n_components: int = 25
    device: str = "cpu"
    dtype: torch.dtype = torch.float64

    def protocol(self) -> dict:
        dtype = str(self.dtype).removeprefix("torch.")
        return {"n_components": self.n_components, "scale": False, "dtype": dtype}

    def model(self) -> PLSRegression:
        return PLSRegression(self.n_components, scale=False, device=self.device, dtype=self.dtype)


def cross_validated(
    pls: PLSOptions,
    X: np.ndarray,
    Y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    metric: Callable[[np.ndarray, np.ndarray], np.ndarray | float],
) -> list:
    """``metric(prediction, truth)`` on each split's test rows of a PLS map fitted on its training rows
    (all splits fitted together)."""
    trains, tests = [train for train, _ in splits], [test for _, test in splits]
    predictions = pls.model().fit_predict_folds(X, Y, trains, tests)
    return [metric(prediction, Y[test]) for prediction, test in zip(predictions, tests, strict=True)]


def subset_protocol(stimuli, full, seed: int) -> dict:
    """Protocol entries recording that a benchmark runs on a seeded subset of its stimuli."""
    return {} if stimuli is full else {"subset": len(stimuli), "subset_seed": seed}


def aligned_features(features: dict[str, xr.DataArray], stimulus_set: str, ids, benchmark: str) -> np.ndarray:
    """Rows of ``features[stimulus_set]`` in the order of ``ids`` (features may come in any order)."""
    if stimulus_set not in features:
        if len(features) == 1 and stimulus_set.split("[")[0] == next(iter(features)).split("[")[0]:
            stimulus_set = next(iter(features))
        else:
            raise BenchmarkError(
                f"{benchmark}: no features for stimulus set {stimulus_set!r} (got {sorted(features)}); "
                "extract the layer on the benchmark's stimulus_sets() first"
            )
    array = features[stimulus_set]
    if array.ndim != 2 or "stimulus_id" not in array.coords:
        raise BenchmarkError(
            f"{benchmark}: features for {stimulus_set!r} must be presentation × neuroid with a stimulus_id "
            f"coordinate, got dims {array.dims}"
        )
    if array.dims[0] != "presentation":
        array = array.transpose("presentation", ...)
    have = pd.Index(np.asarray(array["stimulus_id"].values).astype(str))
    if have.has_duplicates:
        raise BenchmarkError(f"{benchmark}: features for {stimulus_set!r} repeat stimulus ids "
                             f"{list(have[have.duplicated()][:5])}")
    positions = have.get_indexer(pd.Index(np.asarray(ids).astype(str)))
    if (positions < 0).any():
        missing = [i for i, pos in zip(ids, positions, strict=True) if pos < 0]
        raise BenchmarkError(
            f"{benchmark}: features for {stimulus_set!r} lack {len(missing)} of its stimuli, "
            f"e.g. {missing[:5]}; extract features for the whole stimulus set"
        )
    values = np.asarray(array.values)[positions]
    if not np.isfinite(values).all():
        bad = [ids[i] for i in np.flatnonzero(~np.isfinite(values).all(axis=1))[:5]]
        raise BenchmarkError(f"{benchmark}: features of stimuli {bad} contain NaN or infinite values")
    return values
