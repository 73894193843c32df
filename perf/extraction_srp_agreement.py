"""Are projected layer scores honest? Neural PLS scores of resmem:resnet152 layers on real Cowley V4
sessions, from unreduced activations vs from srp- and sketch-reduced ones at several D.

Protocol: the ``cowley_v4.V4-pls`` benchmark restricted to one session at a time (its images, its
neuroids, Brain-Score's 10 stratified splits, PLS-25, median Pearson r over neuroids, mean over splits;
raw, not ceiled). The same benchmark object scores every version of a layer's features, so only the
features differ. Unreduced activations are extracted per depth-ordered group of layers into a scratch
store that is deleted once the group is scored (disk stays bounded); the reduced versions are the
reducer's own projection of those same activations (it depends only on the layer's size, seed and D,
so it equals what extraction with that ``--reducer`` stores).

    python perf/extraction_srp_agreement.py [--sessions 210305 210325] [--reducers srp:1024 …]

Writes results/benchmarks/extraction_srp_agreement.{csv,txt}.
"""

from __future__ import annotations

import argparse
import shutil
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
import xarray as xr
from scipy.stats import spearmanr

from memprobe.benchmarks import load_benchmark
from memprobe.features import extract
from memprobe.features.reducers import get_reducer
from memprobe.features.store import ActivationStore
from memprobe.pls.estimator import PLSWarning
from memprobe.zoo import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"
LAYER_GROUPS = [
    ["conv1", "relu", "maxpool", "layer1.0.conv1", "layer1.0"],
    ["layer1.2", "layer2.0.relu@1", "layer2.3", "layer2.7"],
    ["layer3.0", "layer3.5.bn2", "layer3.10", "layer3.17", "layer3.24.relu@3"],
    ["layer3.35", "layer4.0.conv2", "layer4.1", "layer4.2", "avgpool", "fc"],
]
ROW_CHUNK = 50


def projected(features: xr.DataArray, layer: str, reducer: str) -> xr.DataArray:
    reduction = get_reducer(reducer).for_layer(layer, (features.shape[1],), "cpu")
    rows = [reduction(torch.from_numpy(features.values[r : r + ROW_CHUNK].astype("float32")))
            for r in range(0, features.shape[0], ROW_CHUNK)]
    values = torch.cat(rows).numpy()
    ids = ("presentation", features["stimulus_id"].values)
    return xr.DataArray(values, dims=features.dims, coords={"stimulus_id": ids})


def session_rows(model, session: str, reducers: list[str], scratch: Path, batch_size: int) -> list[dict]:
    benchmark = load_benchmark("cowley_v4.V4-pls", sessions=[session])
    (stimuli,) = benchmark.stimulus_sets()
    rows = []
    for group in LAYER_GROUPS:
        raw = extract(model, stimuli, group, "none", ActivationStore(scratch), batch_size=batch_size,
                      progress=False)
        for layer in group:
            features = raw[layer]
            row = {"session": session, "layer": layer, "units": features.shape[1]}
            versions = {"unreduced": features} | {r: projected(features, layer, r) for r in reducers}
            for name, values in versions.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PLSWarning)  # max_iter notices: same for every version
                    row[name] = benchmark.score({stimuli.name: values}).raw
            rows.append(row)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        shutil.rmtree(scratch)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", nargs="+", default=["210305", "210325"])
    parser.add_argument("--reducers", nargs="+", default=["srp:1024", "srp:4096", "sketch:4096"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--scratch", type=Path, default=None, help="where raw activations go (deleted)")
    args = parser.parse_args()
    model = load_model("resmem:resnet152")
    scratch = args.scratch or Path(ActivationStore().root).parent / "srp-agreement-raw"
    started = time.time()
    table = pd.DataFrame([row for s in args.sessions
                          for row in session_rows(model, s, args.reducers, scratch, args.batch_size)])
    lines = [f"resmem:resnet152, {len(LAYER_GROUPS)} groups of layers, cowley_v4.V4-pls per session "
             f"(raw score: median r over neuroids, mean over 10 splits); {time.time() - started:.0f} s"]
    for session, rows in [*table.groupby("session"), ("all", table)]:
        for column in args.reducers:
            rho = spearmanr(rows["unreduced"], rows[column])[0]
            delta = (rows[column] - rows["unreduced"]).abs()
            lines.append(f"session {session:>6} {column:>11}: Spearman across {len(rows)} layers = "
                         f"{rho:.3f}, mean |Δr| = {delta.mean():.4f}, max |Δr| = {delta.max():.4f}  "
                         "(issue check: ≥ 0.95 and ≤ 0.02)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "extraction_srp_agreement.csv", index=False, float_format="%.5f")
    text = "\n".join(lines) + "\n\n" + table.to_string(index=False, float_format="%.4f") + "\n"
    (RESULTS / "extraction_srp_agreement.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
