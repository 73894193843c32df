"""The benchmarks' metrics against scipy on the same inputs, and the split-half ceiling on real repeats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from memprobe.benchmarks import metrics
from memprobe.data import load_dataset
from memprobe.errors import BenchmarkError


def test_rdm_is_one_minus_pearson_and_rdm_comparison_is_spearman_over_the_upper_triangle():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(12, 30))
    rdm = metrics.rdm(features)
    i, j = 2, 7
    assert rdm[i, j] == pytest.approx(1 - scipy.stats.pearsonr(features[i], features[j]).statistic, abs=1e-12)
    assert np.allclose(rdm, rdm.T) and np.all(np.diag(rdm) == 0)
    other = metrics.rdm(features + rng.normal(size=features.shape))
    upper = np.triu_indices(12, k=1)
    expected = scipy.stats.spearmanr(rdm[upper], other[upper]).statistic
    assert metrics.compare_rdms(rdm, other) == pytest.approx(expected, abs=1e-12)
    assert metrics.compare_rdms(rdm, rdm) == pytest.approx(1.0)
    features[4] = 3.0
    with pytest.raises(BenchmarkError, match=r"rows 4 have constant features"):
        metrics.rdm(features)


def test_split_half_consistency_recovers_a_known_reliability():
    """Repeats = signal + noise with known variances: the SB-corrected split-half r is predictable."""
    rng = np.random.default_rng(3)
    signal = rng.normal(size=(600, 20, 1))
    repeats = signal + 2.0 * rng.normal(size=(600, 20, 10))
    # reliability of the mean of 10 repeats: var_s / (var_s + var_n / 10) = 1 / (1 + 0.4)
    result = metrics.split_half_consistency(repeats)
    assert result.value == pytest.approx(1 / 1.4, abs=0.03)
    assert result.per_neuroid.shape == (10, 20) and result.per_split.shape == (10,)
    assert result.protocol["ceiling_seed"] == 1 and result.protocol["ceiling_splits"] == 10
    noise_only = metrics.split_half_consistency(rng.normal(size=(600, 20, 10)))
    assert abs(noise_only.value) < 0.1
    with pytest.raises(BenchmarkError, match="repetitions"):
        metrics.split_half_consistency(repeats[:, :, 0])


def test_v4_ceiling_from_the_real_210325_repeats():
    raw = load_dataset("cowley_v4").session("210325").raw
    assert raw is not None
    result = metrics.split_half_consistency(raw.transpose("presentation", "neuroid", "repetition").values)
    # 50 V4 units, up to 10 NaN-padded repeats: reliable but far from perfect
    assert 0.3 < result.value < 0.95
    assert np.isfinite(result.per_neuroid).mean() > 0.9
