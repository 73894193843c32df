"""Calibrate the costs ``memprobe plan`` computes with, and write them to ``slurm/costs.json``.

- PLS on the CPU (measured here, 2 threads, float64): memprobe's ``fit_predict_folds`` timed on a few
  sizes (both of its forms; 1 to 168 targets; 1 to 10 folds) and ``memprobe.slurm.pls_cost.PLSTiming``'s
  three constants fitted to them (non-negative least squares on relative error), with each size's
  predicted and measured seconds.
- PLS on an H100: the same three constants from the committed H100 runs (results/benchmarks/
  pls_speed_cuda.json: two single fits; neural_speed_cuda.json: cowley_v4.V4-pls's 8 sessions × 10
  folds, taken as 8 fits of the sessions' mean size). Three timings, three constants: solved exactly,
  so they leave nothing to check the model against; they reproduce those runs and nothing more is known.
- GPU forward pass and store writes on an H100 (results/benchmarks/extraction_throughput_cuda.json):
  the bare forward of a random ResNet-152 as FLOP/s (its FLOPs per image from slurm/models.csv), and
  the hooked extraction's extra seconds (522 layers, sketch:4096) per byte stored.
- Dense float64 products on the CPU (a PCA fit's Gram matrix and components, memprobe.features.pca):
  multiply-adds per second of a 1,000 × p by p × 1,000 product, 2 threads.

    python perf/plan_costs.py        # after slurm/layers.csv holds torchvision:resnet152
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's memprobe, whatever else is installed
from memprobe.atomic import write_json  # noqa: E402
from memprobe.features import get_reducer  # noqa: E402
from memprobe.pls import PLSRegression  # noqa: E402
from memprobe.slurm.layer_table import LayerTable  # noqa: E402
from memprobe.slurm.pls_cost import multiply_adds  # noqa: E402

THREADS = 2
COMPONENTS = 25
REPEATS = 3
# (images n, features p, targets q, folds fitted together): memorability-like, neural-like, wide layers
CPU_SIZES = [(2000, 1000, 1, 5), (8000, 1000, 1, 1), (3200, 1000, 168, 10), (3200, 4096, 88, 10),
             (1000, 20000, 88, 10), (135, 100000, 102, 10), (4000, 4096, 1, 1)]
BENCHMARKS = REPO / "results" / "benchmarks"
GEMM_SIZE = (1000, 50000)
EXTRACTION_REDUCER = "sketch:4096"  # extraction_throughput_cuda.json's reducer


def cpu_pls_seconds(n: int, p: int, q: int, folds: int) -> float:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 32))
    X = np.maximum(latent @ rng.normal(size=(32, p)) / 6 + rng.normal(size=(n, p)), 0)
    Y = latent[:, :8] @ rng.normal(size=(8, q)) + rng.normal(size=(n, q))
    test = n // 10 if folds > 1 else n // 5
    order = [rng.permutation(n) for _ in range(folds)]
    trains, tests = [o[test:] for o in order], [o[:test] for o in order]
    runs = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        PLSRegression(COMPONENTS).fit_predict_folds(X, Y, trains, tests)
        runs.append(time.perf_counter() - started)
    return float(np.median(runs))


def fit_timing(rows: list[dict]) -> dict:
    """per_fit_s, per_fold_s and multiply_adds_per_s of ``PLSTiming`` (non-negative, least relative error)."""
    design = np.array([[1.0, row["folds"], row["multiply_adds"]] for row in rows])
    seconds = np.array([row["seconds"] for row in rows])
    coefficients, _ = nnls(design / seconds[:, None], np.ones(len(rows)))
    for row, predicted in zip(rows, design @ coefficients, strict=True):
        row["predicted_s"] = round(float(predicted), 4)
    per_fit, per_fold, per_multiply_add = coefficients
    return {"per_fit_s": per_fit, "per_fold_s": per_fold,
            "multiply_adds_per_s": 1 / per_multiply_add if per_multiply_add > 0 else math.inf}


def measured_row(n: int, p: int, q: int, folds: int, seconds: float, fits: int = 1) -> dict:
    return {"n": n, "p": p, "q": q, "folds": folds, "fits": fits, "seconds": seconds / fits,
            "multiply_adds": multiply_adds(n, p, q, COMPONENTS, folds)}


def gpu_pls_rows() -> tuple[list[dict], str]:
    single = json.loads((BENCHMARKS / "pls_speed_cuda.json").read_text())
    neural = json.loads((BENCHMARKS / "neural_speed_cuda.json").read_text())
    rows = [measured_row(r["n_train"], r["p"], r["q"], 1, r["memprobe_float64"]) for r in single["rows"]]
    whole = neural["rows"][0]  # 8 sessions, each fitted on its own
    rows.append(measured_row(round(whole["images"] / 8), whole["units"], round(whole["neuroids"] / 8), 10,
                             whole["memprobe_s"], fits=8))
    return rows, single["machine"]["gpu"]


def gpu_forward(table: LayerTable) -> dict:
    """H100 forward FLOP/s and store-write bytes/s from the committed ResNet-152 extraction."""
    run = json.loads((BENCHMARKS / "extraction_throughput_cuda.json").read_text())
    images = int(run["images"].split()[0])
    model, reducer = run["model"], get_reducer(EXTRACTION_REDUCER)
    assert run["reducer"] == reducer.key(), f"the committed run used {run['reducer']}"
    stored = images * 4 * sum(reducer.output_dim(shape) for _, shape in table.model_layers(model))
    return {
        "model": model, "source": "results/benchmarks/extraction_throughput_cuda.json",
        "flops_per_s": images * table.models.loc[model, "gflops"] * 1e9 / run["bare_forward_s"],
        "store_bytes_per_s": stored / (run["hooked_extraction_s"] - run["bare_forward_s"]),
        "bare_images_per_s": images / run["bare_forward_s"], "batch_size": run["batch_size"],
        "layers_measured_run": run["layers"], "layers_in_table": len(table.model_layers(model)),
    }


def cpu_gemm_multiply_adds_per_s() -> float:
    n, p = GEMM_SIZE
    block = np.random.default_rng(0).normal(size=(n, p))
    with threadpool_limits(THREADS):
        block @ block.T
        started = time.perf_counter()
        block @ block.T
        return n * n * p / (time.perf_counter() - started)


def main() -> None:
    torch.set_num_threads(THREADS)
    cpu_rows = []
    for n, p, q, folds in CPU_SIZES:
        cpu_rows.append(measured_row(n, p, q, folds, cpu_pls_seconds(n, p, q, folds)))
        print(f"CPU PLS n={n} p={p} q={q} folds={folds}: {cpu_rows[-1]['seconds']:.3f} s", flush=True)
    gpu_rows, card = gpu_pls_rows()
    table = LayerTable.load(REPO / "slurm")
    costs = {
        "pls": {
            "cpu": {**fit_timing(cpu_rows), "device": f"this machine's CPU, {THREADS} threads (shared; load "
                    f"{os.getloadavg()[0]:.1f} while measured)", "dtype": "float64", "timings": cpu_rows},
            "gpu": {**fit_timing(gpu_rows), "device": card, "dtype": "float64",
                    "source": "results/benchmarks/pls_speed_cuda.json, neural_speed_cuda.json",
                    "timings": gpu_rows},
        },
        "gpu_forward": {**gpu_forward(table), "device": card},
        "cpu_gemm_multiply_adds_per_s": cpu_gemm_multiply_adds_per_s(),
        "torch": torch.__version__,
    }
    for device in ("cpu", "gpu"):
        for row in costs["pls"][device]["timings"]:
            print(f"{device} n={row['n']} p={row['p']} q={row['q']} folds={row['folds']}: measured "
                  f"{row['seconds']:.3f} s, model {row['predicted_s']:.3f} s")
    write_json(REPO / "slurm" / "costs.json", costs, indent=1)
    print(f"wrote slurm/costs.json: {json.dumps({k: v for k, v in costs.items() if k != 'pls'})}")


if __name__ == "__main__":
    main()
