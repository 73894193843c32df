"""Where the demo sweep's time goes: bare forward pass vs hooks + reduction + store vs PLS/RSA scoring.

    python perf/sweep_cost.py [--subset 250] [--max-module-depth 2] [--reducer srp]

Runs the `memprobe demo` configuration into a fresh activation store and output folder, then a bare
forward pass (no hooks) over the same images with the same loader settings, in the same process.
Extraction − bare forward = the cost of hooking, reducing and storing. Writes
results/benchmarks/sweep_cost.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from memprobe.benchmarks import load_benchmark
from memprobe.features.extract import StimulusImages, collate_images, default_workers
from memprobe.features.store import ActivationStore
from memprobe.probe import DEMO_MAX_MODULE_DEPTH, DEMO_MODEL, DEMO_SUBSET
from memprobe.sweep import DEFAULT_BENCHMARKS, SweepConfig, SweepTimes, run_sweep
from memprobe.zoo import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def bare_forward(model, stimulus_sets, batch_size: int, num_workers: int) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        for stimuli in stimulus_sets:
            loader = torch.utils.data.DataLoader(
                StimulusImages(stimuli, model.preprocessing.transform()),
                batch_size=batch_size,
                collate_fn=collate_images,
                num_workers=num_workers,
            )
            for _, images, _ in loader:
                model.network(images)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=DEMO_SUBSET)
    parser.add_argument("--max-module-depth", type=int, default=DEMO_MAX_MODULE_DEPTH)
    parser.add_argument("--reducer", default="srp")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()

    config = SweepConfig(
        model=DEMO_MODEL,
        benchmarks=DEFAULT_BENCHMARKS,
        max_module_depth=args.max_module_depth,
        reducer=args.reducer,
        subset=args.subset,
    )
    times = SweepTimes()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        scores = run_sweep(
            config,
            Path(scratch) / "out",
            store=ActivationStore(Path(scratch) / "store"),
            batch_size=args.batch_size,
            num_workers=args.workers,
            times=times,
        )
        total = time.perf_counter() - started
    stimulus_sets = {
        s.name: s
        for b in DEFAULT_BENCHMARKS
        for s in load_benchmark(b, subset=args.subset).stimulus_sets()
    }
    forward = bare_forward(load_model(DEMO_MODEL), stimulus_sets.values(), args.batch_size, args.workers)
    result = {
        "config": {**config.__dict__, "benchmarks": list(config.benchmarks)},
        "images": sum(len(s) for s in stimulus_sets.values()),
        "layers": int(scores["layer"].nunique()),
        "units": len(scores),
        "torch_threads": torch.get_num_threads(),
        "total_s": round(total, 1),
        "extraction_s": round(times.extraction, 1),
        "bare_forward_s": round(forward, 1),
        "hooks_reduction_store_s": round(times.extraction - forward, 1),
        "scoring_s": round(times.scoring, 1),
        "setup_s": round(total - times.extraction - times.scoring, 1),
        "extraction_over_forward": round(times.extraction / forward, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
