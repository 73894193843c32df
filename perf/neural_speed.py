"""The full neural benchmark for one layer: memprobe's ``cowley_v4.V4-pls`` on one session vs Brain-Score.

Same features (resmem ResNet-152, global-average-pooled block outputs of one Cowley V4 session, cached
by tests/support/v4_features.py), same responses, same splits (ShuffleSplit(10, train 0.9, random_state=1)).
memprobe's side: ``benchmark.score(features)`` (splits, 10 PLS fits, Pearson, aggregation), 2 CPU threads.
Brain-Score's side: ``load_metric('pls')(source, target)`` timed inside its own environment
(.venv-brainscore, via perf/brainscore_peer.py; imports and process start not counted).

Second case, at the size of the real sweep: the whole ``cowley_v4.V4-pls`` benchmark (all 8 sessions,
7,840 images) on the ``srp:1024`` features of real resmem:resnet152 layers (read from the activation
store the sweep filled; extracted otherwise), against Brain-Score's metric run on each session, times
summed. Per-session raw scores are compared (Brain-Score has no pooled multi-session score). memprobe
runs it twice: in float64 (the default) and in float32 (``PLSOptions(dtype=torch.float32)``).

On a GPU machine, where neither the resmem weights nor the Brain-Score environment can be had:
``--device cuda`` runs memprobe's PLS there, ``--features FILE`` reads the layer's features from an
.npz written on a machine that has the weights (the first run with a missing FILE extracts and writes it,
as float16 to keep it small to carry; both sides then score the same rounded values), and
``--peer sklearn`` times the regression Brain-Score's metric runs: scikit-learn's PLSRegression(25,
scale=False), fitted per split on the same splits, in this process on 2 CPU threads (a lower bound on
Brain-Score's time: its xarray bookkeeping is left out).

    python perf/neural_speed.py   # writes results/benchmarks/neural_speed.json
    python perf/neural_speed.py --device cuda --features F.npz --peer sklearn   # neural_speed_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
# This checkout's memprobe (whatever else is installed) and the tests' V4 feature helper.
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]
from v4_features import SESSION, v4_features  # noqa: E402

from memprobe.benchmarks import PLSOptions, load_benchmark  # noqa: E402
from memprobe.benchmarks.neural import brainscore_splits  # noqa: E402
from memprobe.correlation import pearson_per_column  # noqa: E402

LAYERS = ("layer1", "layer2")
SWEEP_MODEL, SWEEP_REDUCER = "resmem:resnet152", "srp:1024"
SWEEP_LAYERS = ("layer3.17",)
THREADS = 2
REPEATS = 3


def brainscore_score(features, responses) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "peer.npz"
        np.savez(path, features=features, responses=responses.values,
                 stimulus_id=np.array([str(i) for i in responses["stimulus_id"].values]),
                 neuroid_id=np.array([str(i) for i in responses["neuroid_id"].values]))
        env = {"OMP_NUM_THREADS": str(THREADS), "OPENBLAS_NUM_THREADS": str(THREADS),
               "MKL_NUM_THREADS": str(THREADS), "PATH": "/usr/bin:/bin"}
        run = subprocess.run([str(REPO / ".venv-brainscore" / "bin" / "python"),
                              str(REPO / "benchmarks" / "brainscore_peer.py"), str(path), str(REPEATS)],
                             capture_output=True, text=True, check=True, env=env)
    return json.loads(run.stdout.strip().splitlines()[-1])


def sklearn_score(features, responses) -> dict:
    """Brain-Score's regression: PLSRegression(25, scale=False) per split; median r, mean over splits."""
    from sklearn.cross_decomposition import PLSRegression
    from threadpoolctl import threadpool_limits

    X, Y = np.asarray(features, dtype=np.float64), np.asarray(responses.values, dtype=np.float64)
    start = time.perf_counter()
    per_split = []
    with threadpool_limits(THREADS):
        for train, test in brainscore_splits(len(X)):
            prediction = PLSRegression(25, scale=False).fit(X[train], Y[train]).predict(X[test])
            per_split.append(float(np.median(pearson_per_column(prediction, Y[test]))))
    return {"raw": float(np.mean(per_split)), "per_split": per_split, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="where memprobe's PLS runs")
    parser.add_argument("--features", type=Path,
                        help=f"{SWEEP_LAYERS[0]}'s features as .npz (written first if missing); "
                        "then only the all-session case runs")
    parser.add_argument("--peer", choices=["brainscore", "sklearn"], default="brainscore")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    peer = brainscore_score if args.peer == "brainscore" else sklearn_score
    rows = [] if args.features else session_rows(args.device, peer)
    rows += sweep_sized_rows(args.device, peer, args.features)
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    out = REPO / "results" / "benchmarks" / f"neural_speed{suffix}.json"
    machine = {"threads": THREADS, "cpu_count": os.cpu_count(), "load_average_1_5_15min": os.getloadavg(),
               "device": args.device, "peer": args.peer, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


def session_rows(device: str, peer) -> list[dict]:
    benchmark = load_benchmark("cowley_v4.V4-pls", sessions=[SESSION], pls=PLSOptions(device=device))
    responses = benchmark.recordings[0].responses
    rows = []
    for layer in LAYERS:
        features = v4_features(layer, "resmem")
        times = []
        for _ in range(REPEATS):  # the fastest of REPEATS calls on both sides: the first pays set-up costs
            start = time.perf_counter()
            ours = benchmark.score({f"cowley_v4.{SESSION}": features})
            times.append(time.perf_counter() - start)
        memprobe_s = min(times)
        theirs = peer(features.values, responses)
        images, units = features.shape
        row = {"session": SESSION, "layer": layer, "images": images, "units": units,
               "neuroids": int(responses.shape[1]), "memprobe_raw": ours.raw, "peer_raw": theirs["raw"],
               "memprobe_s": memprobe_s, "peer_s": theirs["seconds"],
               "speedup": theirs["seconds"] / memprobe_s}
        rows.append(row)
        print(f"{SESSION} {layer} ({units} units): memprobe {ours.raw:.4f} in {memprobe_s:.2f} s | "
              f"peer {theirs['raw']:.4f} in {theirs['seconds']:.2f} s | ×{row['speedup']:.1f}")
    return rows


def layer_features(benchmark, layer: str, path: Path | None) -> dict:
    """The layer's features of every session: extracted from the sweep's store, or read from ``path``."""
    if path is not None and path.exists():
        stored = np.load(path)
        if str(stored["layer"]) != layer:
            raise ValueError(f"{path} holds the features of {stored['layer']}, not {layer}")
        return {s.name: xr.DataArray(stored[s.name].astype(np.float32), dims=("presentation", "neuroid"),
                                     coords={"stimulus_id": ("presentation", s.ids)})
                for s in benchmark.stimulus_sets()}
    from memprobe.features import extract
    from memprobe.zoo import load_model

    model = load_model(SWEEP_MODEL)
    features = {s.name: extract(model, s, [layer], SWEEP_REDUCER, progress=False)[layer]
                for s in benchmark.stimulus_sets()}
    if path is None:
        return features
    for stimuli in benchmark.stimulus_sets():
        if list(features[stimuli.name]["stimulus_id"].values) != stimuli.ids:
            raise RuntimeError(f"{stimuli.name}: extracted rows are not in the stimulus set's order")
    rounded = {name: f.values.astype(np.float16) for name, f in features.items()}
    np.savez(path, layer=np.array(layer), **rounded)
    return layer_features(benchmark, layer, path)  # score the rounded values, as a reader of the file will


def sweep_sized_rows(device: str, peer, path: Path | None) -> list[dict]:
    from memprobe.benchmarks.base import aligned_features

    benchmark = load_benchmark("cowley_v4.V4-pls", pls=PLSOptions(device=device))
    rows = []
    for layer in SWEEP_LAYERS:
        features = layer_features(benchmark, layer, path)
        ours, seconds = _fastest_score(benchmark, features)
        in_float32 = load_benchmark("cowley_v4.V4-pls", pls=PLSOptions(device=device, dtype=torch.float32))
        ours32, seconds32 = _fastest_score(in_float32, features)
        ours_per_session = ours.per_split.groupby("recording")["score"].mean()
        theirs_s, differences = 0.0, []
        for recording in benchmark.recordings:
            ids = [str(i) for i in recording.responses["stimulus_id"].values]
            values = aligned_features(features, recording.stimuli.name, ids, benchmark.identifier)
            theirs = peer(values, recording.responses.transpose("presentation", "neuroid"))
            theirs_s += theirs["seconds"]
            differences.append(abs(theirs["raw"] - ours_per_session[recording.name]))
        row = {"session": "all 8", "layer": layer, "reducer": SWEEP_REDUCER, "features_file": str(path),
               "images": sum(f.shape[0] for f in features.values()), "units": 1024,
               "neuroids": int(sum(r.responses.shape[1] for r in benchmark.recordings)),
               "memprobe_raw": ours.raw, "max_session_abs_diff": max(differences),
               "memprobe_s": seconds, "peer_s": theirs_s, "speedup": theirs_s / seconds,
               "memprobe_float32_raw": ours32.raw, "memprobe_float32_s": seconds32,
               "speedup_float32": theirs_s / seconds32}
        rows.append(row)
        print(f"all sessions {layer} (srp:1024): memprobe {ours.raw:.4f} in {seconds:.2f} s | "
              f"peer (8 sessions) {theirs_s:.2f} s | ×{row['speedup']:.1f} | "
              f"max per-session |Δ| {row['max_session_abs_diff']:.1e} | float32 {ours32.raw:.4f} in "
              f"{seconds32:.2f} s (×{row['speedup_float32']:.1f})")
    return rows


def _fastest_score(benchmark, features):
    """The score and the fastest of REPEATS runs (the first pays set-up costs)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        score = benchmark.score(features)
        times.append(time.perf_counter() - start)
    return score, min(times)


if __name__ == "__main__":
    main()
