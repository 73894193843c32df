"""Rescore a handful of layers of the committed ResNet-152 sweep from fresh activations and compare with
``results/resmem_resnet152/scores.csv``: after a change that must not change numbers, they agree to the bit.

    python scripts/reproduce_committed_scores.py [--layers conv1,layer1.0.relu@2,layer1.0] [--out DIR]

The committed sweep is ``memprobe demo --full`` (every layer, every image, srp:1024). Early layers keep the
check cheap: extraction stops after the last requested layer. A fresh activation store (a temporary
``MEMPROBE_CACHE``, printed; ``--cache`` reuses one) makes the activations fresh too. Writes the comparison to
``results/benchmarks/committed_scores_reproduced.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "resmem_resnet152"
COLUMNS = ["raw", "ceiling", "ceiled"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", default="conv1,maxpool,layer1.0.conv1,layer1.0.relu@2,layer1.0")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    parser.add_argument("--cache", type=Path, help="reuse this cache's activations (default: a fresh one)")
    args = parser.parse_args()
    os.environ["MEMPROBE_CACHE"] = str(args.cache or tempfile.mkdtemp(prefix="memprobe-fresh-store-"))
    print(f"activation store: {os.environ['MEMPROBE_CACHE']}")

    from memprobe.sweep import SweepConfig, run_sweep

    committed_config = json.loads((COMMITTED / "sweep.json").read_text())["config"]
    layers = tuple(args.layers.split(","))
    config = SweepConfig(**{**committed_config, "benchmarks": tuple(committed_config["benchmarks"]),
                            "layers": layers})
    with tempfile.TemporaryDirectory() as out:
        run_sweep(config, out, progress=False)
        rescored = pd.read_csv(Path(out) / "resmem_resnet152" / "scores.csv", engine="python")
    committed = pd.read_csv(COMMITTED / "scores.csv", engine="python")  # parses 17 digits exactly
    committed = committed[committed["layer"].isin(layers)].set_index(["layer", "benchmark"])[COLUMNS]
    fresh = rescored.set_index(["layer", "benchmark"])[COLUMNS].loc[committed.index]
    comparison = committed.join(fresh.add_suffix("_fresh"))
    same = all(comparison[c].equals(comparison[f"{c}_fresh"]) for c in COLUMNS)
    n_benchmarks = committed.index.get_level_values("benchmark").nunique()
    lines = [
        f"{len(comparison)} committed cells ({len(layers)} layers × {n_benchmarks} benchmarks) of "
        f"{COMMITTED.relative_to(REPO)} rescored from fresh activations:",
        comparison.to_string(float_format=lambda v: f"{v:.17g}"),
        f"max |difference| in raw: {(comparison['raw'] - comparison['raw_fresh']).abs().max():.3g}",
        "identical to the bit" if same else "NOT identical",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "committed_scores_reproduced.txt").write_text(text)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
