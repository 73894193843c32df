"""Figure 2 on the committed real sweep of resmem:resnet152: it runs, and its numbers are what scipy and
pingouin compute independently from the same table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pingouin
import pytest
from scipy import stats

from memprobe.analysis.paper import Options, figure2
from memprobe.analysis.tables import load_results, score_values

REAL = Path(
    os.environ.get(
        "MEMPROBE_REAL_RESULTS", Path(__file__).resolve().parents[2] / "results" / "resmem_resnet152"
    )
)

pytestmark = pytest.mark.skipif(
    not (REAL / "scores.csv").is_file(),
    reason=f"{REAL}/scores.csv (the real resmem sweep) is not committed yet",
)


@pytest.fixture(scope="module")
def real():
    results = load_results([REAL / "scores.csv"])
    return results, figure2(results, options=Options(n_boot=1000, n_perm=1000))


def test_figure2_on_the_real_resmem_sweep_matches_scipy_and_pingouin(real):
    results, result = real
    scores = results.scores.assign(value=lambda t: score_values(t))
    wide = scores.pivot(index="layer", columns="benchmark", values="value")
    depth = scores.groupby("layer")["relative_depth"].first()
    assert set(scores["model"]) == {"resmem:resnet152"}
    statistics = result.statistics
    assert len(statistics) >= 2  # at least V4 and IT (RSA)
    for _, row in statistics.iterrows():
        pair = pd.concat([wide[[row["x"], row["y"]]], depth], axis=1).dropna()
        assert row["n"] == len(pair) >= 10
        assert row["rho"] == pytest.approx(
            stats.spearmanr(pair[row["x"]], pair[row["y"]]).statistic, abs=1e-10
        )
        partial = pingouin.partial_corr(pair, row["x"], row["y"], covar="relative_depth", method="spearman")
        assert row["partial_rho"] == pytest.approx(partial["r"].iloc[0], abs=1e-10)
        assert row["ci_low"] < row["rho"] < row["ci_high"]
        assert row["ci_high"] - row["ci_low"] > 0.02
        assert 0 < row["p_perm"] <= 1 and row["resampling"] == "layers"


def test_figure2_real_figures_are_drawn(real, tmp_path):
    _, result = real
    assert set(result.figures) == {"scatter", "profile"}
    n_panels = len(result.statistics)
    assert (
        len([axis for axis in result.figures["scatter"].axes if axis.get_label() != "<colorbar>"]) == n_panels
    )
