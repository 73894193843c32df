"""The full neural benchmark for one layer: memprobe's ``cowley_v4.V4-pls`` on one session vs Brain-Score.

Same features (resmem ResNet-152, global-average-pooled block outputs of one Cowley V4 session, cached
by tests/v4_features.py), same responses, same splits (ShuffleSplit(10, train 0.9, random_state=1)).
memprobe's side: ``benchmark.score(features)`` (splits, 10 PLS fits, Pearson, aggregation), 2 CPU threads.
Brain-Score's side: ``load_metric('pls')(source, target)`` timed inside its own environment
(.venv-brainscore, via benchmarks/brainscore_peer.py; imports and process start not counted).

Second case, at the size of the real sweep: the whole ``cowley_v4.V4-pls`` benchmark (all 8 sessions,
7,840 images) on the ``srp:1024`` features of real resmem:resnet152 layers (read from the activation
store the sweep filled; extracted otherwise), against Brain-Score's metric run on each session, times
summed. Per-session raw scores are compared (Brain-Score has no pooled multi-session score). memprobe
runs it twice: in float64 (the default) and in float32 (``PLSOptions(dtype=torch.float32)``).

    python benchmarks/neural_speed.py   # writes results/benchmarks/neural_speed.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's memprobe, whatever else is installed
from v4_features import SESSION, v4_features  # noqa: E402

from memprobe.benchmarks import PLSOptions, load_benchmark  # noqa: E402

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


def main() -> None:
    torch.set_num_threads(THREADS)
    benchmark = load_benchmark("cowley_v4.V4-pls", sessions=[SESSION])
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
        theirs = brainscore_score(features.values, responses)
        images, units = features.shape
        row = {"session": SESSION, "layer": layer, "images": images, "units": units,
               "neuroids": int(responses.shape[1]), "memprobe_raw": ours.raw, "brainscore_raw": theirs["raw"],
               "memprobe_s": memprobe_s, "brainscore_s": theirs["seconds"],
               "speedup": theirs["seconds"] / memprobe_s}
        rows.append(row)
        print(f"{SESSION} {layer} ({units} units): memprobe {ours.raw:.4f} in {memprobe_s:.2f} s | "
              f"brainscore {theirs['raw']:.4f} in {theirs['seconds']:.2f} s | ×{row['speedup']:.1f}")
    rows += sweep_sized_rows()
    out = REPO / "results" / "benchmarks" / "neural_speed.json"
    machine = {"threads": THREADS, "cpu_count": os.cpu_count(), "load_average_1_5_15min": os.getloadavg()}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


def sweep_sized_rows() -> list[dict]:
    from memprobe.benchmarks.base import aligned_features
    from memprobe.extract import extract
    from memprobe.zoo import load_model

    benchmark = load_benchmark("cowley_v4.V4-pls")
    model = load_model(SWEEP_MODEL)
    rows = []
    for layer in SWEEP_LAYERS:
        features = {s.name: extract(model, s, [layer], SWEEP_REDUCER, progress=False)[layer]
                    for s in benchmark.stimulus_sets()}
        ours, seconds = _fastest_score(benchmark, features)
        in_float32 = load_benchmark("cowley_v4.V4-pls", pls=PLSOptions(dtype=torch.float32))
        ours32, seconds32 = _fastest_score(in_float32, features)
        ours_per_session = ours.per_split.groupby("recording")["score"].mean()
        theirs_s, differences = 0.0, []
        for recording in benchmark.recordings:
            ids = [str(i) for i in recording.responses["stimulus_id"].values]
            values = aligned_features(features, recording.stimuli.name, ids, benchmark.identifier)
            theirs = brainscore_score(values, recording.responses.transpose("presentation", "neuroid"))
            theirs_s += theirs["seconds"]
            differences.append(abs(theirs["raw"] - ours_per_session[recording.name]))
        row = {"session": "all 8", "layer": layer, "reducer": SWEEP_REDUCER,
               "images": sum(f.shape[0] for f in features.values()), "units": 1024,
               "neuroids": int(sum(r.responses.shape[1] for r in benchmark.recordings)),
               "memprobe_raw": ours.raw, "max_session_abs_diff": max(differences),
               "memprobe_s": seconds, "brainscore_s": theirs_s, "speedup": theirs_s / seconds,
               "memprobe_float32_raw": ours32.raw, "memprobe_float32_s": seconds32,
               "speedup_float32": theirs_s / seconds32}
        rows.append(row)
        print(f"all sessions {layer} (srp:1024): memprobe {ours.raw:.4f} in {seconds:.2f} s | "
              f"brainscore (8 sessions) {theirs_s:.2f} s | ×{row['speedup']:.1f} | "
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
