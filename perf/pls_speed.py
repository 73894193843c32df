"""memprobe's torch PLS vs scikit-learn's PLSRegression, same data, same process, 2 CPU threads.

For each size (images n, features p, targets q): one fit + predict of PLSRegression(25, scale=False)
by scikit-learn and by memprobe (float64, and float32), the median seconds of each (3 runs of
scikit-learn's, which take seconds each, 5 of memprobe's), the speed-up and the largest relative
difference of the predictions. Both sides get the same numpy arrays: the training and test rows are
sliced out once, before any timing, so that only the fit and the prediction are timed. Data: low-rank
features plus noise, non-negative like ReLU activations, and targets that depend on them.

    python perf/pls_speed.py [--device cuda]   # writes results/benchmarks/pls_speed_<device>.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's memprobe, whatever else is installed
from memprobe.pls.estimator import PLSRegression  # noqa: E402

SIZES = [(2880, 4096, 168), (1200, 25088, 33)]
THREADS = 2
SKLEARN_REPEATS, REPEATS = 3, 5  # medians: this machine's timings move by ±10 % from run to run


def make_data(n: int, p: int, q: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 64))
    X = np.maximum(latent @ rng.normal(size=(64, p)) / 8 + rng.normal(size=(n, p)), 0)
    Y = latent[:, :16] @ rng.normal(size=(16, q)) + 2 * rng.normal(size=(n, q))
    return X, Y


def sklearn_fit_predict(X_train, Y_train, X_test):
    start = time.perf_counter()
    with threadpool_limits(THREADS):
        prediction = SklearnPLS(25, scale=False).fit(X_train, Y_train).predict(X_test)
    return prediction, time.perf_counter() - start


def memprobe_fit_predict(X_train, Y_train, X_test, device, dtype):
    """The same numpy input as scikit-learn's; conversion and any host → device copy are timed."""
    start = time.perf_counter()
    prediction = PLSRegression(25, device=device, dtype=dtype).fit(X_train, Y_train).predict(X_test)
    return prediction, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    for dtype in (torch.float64, torch.float32):  # CUDA context and cuBLAS/cuSOLVER set-up: not timed
        X, Y = make_data(100, 50, 3)
        memprobe_fit_predict(X[:90], Y[:90], X[90:], args.device, dtype)
    rows = []
    for n, p, q in SIZES:
        X, Y = make_data(n, p, q)
        n_train = int(0.9 * n)
        data = X[:n_train].copy(), Y[:n_train].copy(), X[n_train:].copy()
        del X, Y
        runs = [sklearn_fit_predict(*data) for _ in range(SKLEARN_REPEATS)]
        expected, sklearn_s = runs[0][0], float(np.median([run[1] for run in runs]))
        row = {"n": n, "p": p, "q": q, "n_train": n_train, "sklearn_s": sklearn_s}
        for dtype in (torch.float64, torch.float32):
            runs = [memprobe_fit_predict(*data, args.device, dtype) for _ in range(REPEATS)]
            ours, seconds = runs[0][0], float(np.median([run[1] for run in runs]))
            name = str(dtype).removeprefix("torch.")
            row[f"memprobe_{name}"] = seconds
            row[f"speedup_{name}"] = sklearn_s / seconds
            row[f"max_rel_diff_{name}"] = float(np.abs(ours - expected).max() / np.abs(expected).max())
        rows.append(row)
        summary = [f"n={n} p={p} q={q}: sklearn {sklearn_s:.1f} s"]
        for name in ("float64", "float32"):
            seconds, speedup, diff = (row[f"{key}_{name}"] for key in ("memprobe", "speedup", "max_rel_diff"))
            summary.append(f"memprobe {name} {seconds:.2f} s (×{speedup:.1f}, max rel diff {diff:.1e})")
        print(" | ".join(summary), flush=True)
    machine = {"device": args.device, "threads": THREADS, "cpu": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "load_average_1_5_15min": os.getloadavg(),
               "torch": torch.__version__}
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    out = REPO / "results" / "benchmarks" / f"pls_speed_{args.device.split(':')[0]}.json"
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
