"""Bootstrap CIs of (partial) Spearman ρ: memprobe's batched code vs scipy / pingouin in this process.

For 2,000 percentile-bootstrap resamples over layers, times ``memprobe.analysis.stats.correlate``-style
resampling against scipy.stats.bootstrap(spearmanr) and, for the partial ρ | depth, a loop of
pingouin.partial_corr; prints the speed ratio and both CIs. Also times the hierarchical (models, then layers)
bootstrap at the paper's scale (64 models, 16,860 layers), which neither library offers.

    python perf/analysis_bootstrap.py        # writes results/benchmarks/analysis_bootstrap.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
from scipy import stats

from memprobe.analysis.stats import bootstrap_distribution

REPO = Path(__file__).resolve().parents[1]
N_BOOT = 2000


def layers(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(size=n)
    x = depth + rng.normal(0, 0.5, n)
    y = depth + 0.3 * x + rng.normal(0, 0.5, n)
    return x, y, depth


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def spearman_row(n: int) -> dict:
    x, y, _ = layers(n)
    ours, ours_s = timed(
        lambda: np.quantile(bootstrap_distribution(x, y, n_boot=N_BOOT, seed=0), [0.025, 0.975])
    )
    scipy_ci, scipy_s = timed(
        lambda: (
            stats.bootstrap(
                (x, y),
                lambda a, b: stats.spearmanr(a, b).statistic,
                paired=True,
                vectorized=False,
                method="percentile",
                n_resamples=N_BOOT,
                rng=np.random.default_rng(1),
            ).confidence_interval
        )
    )
    return {
        "statistic": "spearman",
        "n_layers": n,
        "memprobe_s": round(ours_s, 3),
        "peer": "scipy.stats.bootstrap(spearmanr, percentile)",
        "peer_s": round(scipy_s, 3),
        "speedup": round(scipy_s / ours_s, 1),
        "memprobe_ci": [round(v, 4) for v in ours],
        "peer_ci": [round(scipy_ci.low, 4), round(scipy_ci.high, 4)],
    }


def partial_row(n: int, n_boot: int) -> dict:
    x, y, depth = layers(n)
    ours, ours_s = timed(
        lambda: np.quantile(bootstrap_distribution(x, y, depth, n_boot=n_boot, seed=0), [0.025, 0.975])
    )
    frame = pd.DataFrame({"x": x, "y": y, "d": depth})
    rng = np.random.default_rng(1)

    def pingouin_loop():
        replicates = [
            pingouin.partial_corr(frame.iloc[rng.integers(0, n, n)], "x", "y", covar="d", method="spearman")[
                "r"
            ].iloc[0]
            for _ in range(n_boot)
        ]
        return np.quantile(replicates, [0.025, 0.975])

    peer, peer_s = timed(pingouin_loop)
    return {
        "statistic": "partial spearman | depth",
        "n_layers": n,
        "n_boot": n_boot,
        "memprobe_s": round(ours_s, 3),
        "peer": "loop of pingouin.partial_corr(method='spearman')",
        "peer_s": round(peer_s, 3),
        "speedup": round(peer_s / ours_s, 1),
        "memprobe_ci": [round(v, 4) for v in ours],
        "peer_ci": [round(v, 4) for v in peer],
    }


def hierarchical_row() -> dict:
    sizes = np.random.default_rng(2).integers(60, 470, size=64)
    sizes = np.round(sizes * 16_860 / sizes.sum()).astype(int)
    x, y, depth = layers(int(sizes.sum()))
    groups = np.repeat(np.arange(64), sizes)
    _, raw_s = timed(lambda: bootstrap_distribution(x, y, groups=groups, n_boot=N_BOOT, seed=0))
    _, partial_s = timed(
        lambda: bootstrap_distribution(x, y, depth, groups=groups, partial_groups=True, n_boot=N_BOOT, seed=0)
    )
    return {
        "statistic": "hierarchical bootstrap (64 models, then layers), no peer",
        "n_layers": int(sizes.sum()),
        "spearman_s": round(raw_s, 2),
        "partial_spearman_depth_model_s": round(partial_s, 2),
    }


def main() -> None:
    rows = [spearman_row(n) for n in (150, 2_000, 16_860)]
    rows.append(partial_row(500, n_boot=500))
    rows.append(hierarchical_row())
    for row in rows:
        print(json.dumps(row))
    out = REPO / "results" / "benchmarks" / "analysis_bootstrap.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n_boot": N_BOOT, "cpu": "2 shared cores", "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
