"""The one Spearman and per-column Pearson against scipy on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from memprobe import correlation
from memprobe.errors import MemprobeError


def test_spearman_handles_ties_like_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=200).astype(float)  # many ties
    b = a + rng.integers(0, 4, size=200)
    assert correlation.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    columns_a, columns_b = rng.integers(0, 5, size=(50, 7)), rng.normal(size=(50, 7))
    expected = [scipy.stats.spearmanr(columns_a[:, j], columns_b[:, j]).statistic for j in range(7)]
    np.testing.assert_allclose(correlation.spearman_per_column(columns_a, columns_b), expected, atol=1e-12)


def test_pearson_per_column_matches_scipy_and_gives_nan_for_constant_columns():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 9)), rng.normal(size=(40, 9))
    b[:, 3] += 2 * a[:, 3]
    expected = [scipy.stats.pearsonr(a[:, j], b[:, j]).statistic for j in range(9)]
    np.testing.assert_allclose(correlation.pearson_per_column(a, b), expected, atol=1e-12)
    a[:, 5] = 1.0
    r = correlation.pearson_per_column(a, b)
    assert np.isnan(r[5]) and np.isfinite(np.delete(r, 5)).all()
    with pytest.raises(MemprobeError, match="shapes"):
        correlation.pearson_per_column(a, b[:30])
