"""Statistics of memprobe.analysis against scipy/pingouin, and on tables whose true correlation is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest
from analysis_synthetic import IT, IT_RSA, MEMORABILITY, V4, depth_confounded_table, one_model_table
from scipy import stats

from memprobe.analysis import correlate, memorability_brain_stats, rank_correlation
from memprobe.analysis.stats import (
    bootstrap_distribution,
    permutation_distribution,
    weighted_rank_correlation,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_spearman_matches_scipy_with_ties_and_batches(rng):
    x = rng.integers(0, 8, size=(5, 60)).astype(float)  # many ties
    y = x + rng.integers(0, 5, size=(5, 60))
    ours = rank_correlation(x, y)
    assert ours.shape == (5,)
    for row in range(5):
        assert ours[row] == pytest.approx(stats.spearmanr(x[row], y[row]).statistic, abs=1e-12)


def test_bootstrap_weights_give_the_statistic_of_the_repeated_points(rng):
    """A replicate computed from counts equals ranking the resample itself, with ties, covariates, groups."""
    n = 120
    x, y = np.round(rng.normal(size=n), 1), np.round(rng.normal(size=n), 1)  # ties within and across models
    depth, model = rng.uniform(size=n), rng.integers(0, 4, n)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(3)]).astype(float)
    for row in weights:
        repeated = np.repeat(np.arange(n), row.astype(int))
        for covariates, groups in ((None, None), (depth[:, None], None), (depth[:, None], model)):
            expected = rank_correlation(
                x[repeated],
                y[repeated],
                None if covariates is None else covariates[repeated],
                None if groups is None else groups[repeated],
            )
            got = weighted_rank_correlation(x, y, row[None], covariates, groups)[0]
            assert got == pytest.approx(expected, abs=1e-10)


def test_partial_spearman_matches_pingouin(rng):
    n = 200
    depth = rng.uniform(size=n)
    x = depth + rng.normal(0, 0.5, n)
    y = depth + 0.3 * x + rng.normal(0, 0.5, n)
    expected = pingouin.partial_corr(
        pd.DataFrame({"x": x, "y": y, "d": depth}), "x", "y", covar="d", method="spearman"
    )
    result = correlate(x, y, covariates=depth, n_boot=200, n_perm=200)
    assert result.rho == pytest.approx(expected["r"].iloc[0], abs=1e-10)
    assert result.p_parametric == pytest.approx(expected["p_val"].iloc[0], rel=1e-6)


def test_model_control_equals_pingouin_on_within_model_ranks_with_dummies(rng):
    n = 240
    model = rng.integers(0, 5, n)
    depth = rng.uniform(size=n)
    x = depth + model + rng.normal(size=n)
    y = depth - model + 0.4 * x + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "y": y, "d": depth, "model": model})
    within = frame.groupby("model")[["x", "y", "d"]].rank()
    dummies = pd.get_dummies(frame["model"], prefix="m", drop_first=True).astype(float)
    expected = pingouin.partial_corr(pd.concat([within, dummies], axis=1), "x", "y", covar=["d", *dummies])
    result = correlate(x, y, covariates=depth, groups=model, control_groups=True, n_boot=100, n_perm=100)
    assert result.rho == pytest.approx(expected["r"].iloc[0], abs=1e-10)
    assert result.p_parametric == pytest.approx(expected["p_val"].iloc[0], rel=1e-6)
    assert result.controls == "model" and result.resampling.startswith("models")


def test_bootstrap_ci_matches_scipy_percentile_bootstrap(rng):
    x, y = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=120).T
    ours = correlate(x, y, n_boot=4000, n_perm=100, seed=3)
    reference = stats.bootstrap(
        (x, y),
        lambda a, b: stats.spearmanr(a, b).statistic,
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=4000,
        rng=np.random.default_rng(4),
    ).confidence_interval
    assert ours.ci_low == pytest.approx(reference.low, abs=0.03)
    assert ours.ci_high == pytest.approx(reference.high, abs=0.03)


def test_permutation_p_matches_scipy_permutation_test(rng):
    x = rng.normal(size=40)
    y = 0.45 * x + rng.normal(size=40)
    ours = correlate(x, y, n_boot=100, n_perm=5000, seed=1)
    reference = stats.permutation_test(
        (x, y),
        lambda a, b: stats.spearmanr(a, b).statistic,
        permutation_type="pairings",
        n_resamples=5000,
        rng=np.random.default_rng(2),
    ).pvalue
    assert 0.005 < reference < 0.2  # a p-value where the comparison means something
    assert ours.p_perm == pytest.approx(reference, abs=0.015)


def test_bootstrap_ci_covers_known_correlation():
    """Bivariate normal ρ = 0.6 over 150 layers: the population Spearman ρ is 6/π·asin(ρ/2) = 0.582."""
    truth = 6 / np.pi * np.arcsin(0.3)
    covered, widths = [], []
    for seed in range(40):
        layers = one_model_table(n_layers=150, rho=0.6, seed=seed)
        wide = layers.pivot(index="layer", columns="benchmark", values="raw")
        result = correlate(wide[MEMORABILITY], wide[IT], n_boot=1000, n_perm=10, seed=seed)
        covered.append(result.ci_low <= truth <= result.ci_high)
        widths.append(result.ci_high - result.ci_low)
    assert np.mean(covered) >= 0.85
    assert 0.15 < np.mean(widths) < 0.35  # ~2 × 1.96 × SE of Spearman ρ at n = 150


def test_permutation_p_is_uniform_under_the_null(rng):
    p_values = [
        correlate(rng.normal(size=50), rng.normal(size=50), n_boot=10, n_perm=300, seed=s).p_perm
        for s in range(200)
    ]
    assert 0.03 <= np.mean(np.array(p_values) < 0.05) <= 0.09
    assert np.mean(p_values) == pytest.approx(0.5, abs=0.06)


def test_depth_confound_raw_high_partial_near_zero():
    table = depth_confounded_table(n_models=6, n_layers=60, seed=0)
    result = memorability_brain_stats(table, MEMORABILITY, [IT, IT_RSA], n_boot=400, n_perm=400).set_index(
        "y"
    )
    assert result.loc[IT, "rho"] > 0.85
    assert result.loc[IT, "ci_low"] > 0.8
    assert result.loc[IT, "p_perm"] < 0.01
    for benchmark in (IT, IT_RSA):
        assert abs(result.loc[benchmark, "partial_rho"]) < 0.1
        assert result.loc[benchmark, "partial_ci_low"] < 0 < result.loc[benchmark, "partial_ci_high"]
        assert result.loc[benchmark, "partial_controls"] == "relative depth, model"
    assert result.loc[IT, "resampling"] == "models, then layers within models"
    assert result.loc[IT, "paper_rho"] == 0.82 and result.loc[IT, "n_models"] == 6
    # Beside the IT RSA benchmark: the paper's IT, which it measured by PLS
    assert (result.loc[IT_RSA, "paper_region"], result.loc[IT_RSA, "paper_rho"]) == ("IT", 0.82)
    # Each control alone leaves what the other explains: the models' shared offsets (depth removed), the
    # rise with depth inside every model (model removed).
    assert result.loc[IT, "depth_partial_rho"] > 0.6
    assert result.loc[IT, "depth_partial_controls"] == "relative depth"
    assert result.loc[IT, "model_partial_rho"] > 0.85 and result.loc[IT, "model_partial_controls"] == "model"


def test_one_model_stats_resample_layers_and_compare_with_paper():
    result = memorability_brain_stats(one_model_table(seed=1), n_boot=500, n_perm=500).set_index("region")
    assert list(result.index) == ["V4", "IT"]
    assert result.loc["IT", "ci_low"] < 6 / np.pi * np.arcsin(0.3) < result.loc["IT", "ci_high"]
    assert result.loc["IT", "partial_controls"] == "relative depth"
    assert "model_partial_rho" not in result.columns  # one model: nothing to control between models
    assert result.loc["IT", "resampling"] == "layers"
    assert result.loc["V4", "paper_rho"] == 0.21
    assert result.loc["V4", "y"] == V4


def test_hierarchical_bootstrap_reflects_between_model_spread(rng):
    """Models with different layer-wise correlations: resampling models widens the CI beyond layers only."""
    x_parts, y_parts, groups = [], [], []
    for model, rho in enumerate([0.9, 0.0, 0.8, -0.2, 0.6, 0.1]):
        x, y = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=80).T
        x_parts.append(x)
        y_parts.append(y)
        groups += [model] * 80
    x, y = np.concatenate(x_parts), np.concatenate(y_parts)
    flat = np.diff(np.quantile(bootstrap_distribution(x, y, n_boot=800, seed=0), [0.025, 0.975]))[0]
    nested = np.diff(
        np.quantile(bootstrap_distribution(x, y, groups=groups, n_boot=800, seed=0), [0.025, 0.975])
    )
    assert nested[0] > 1.5 * flat


def test_permutation_null_centres_on_zero_and_inputs_are_checked(rng):
    null = permutation_distribution(rng.normal(size=30), rng.normal(size=30), n_perm=2000)
    assert abs(null.mean()) < 0.02
    with pytest.raises(ValueError, match="same length"):
        correlate(np.arange(5), np.arange(6))
