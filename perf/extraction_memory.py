"""Memory: extract ALL layers of resmem:resnet152 (reduced) for the LNSIM images; report peak RSS.

The peer is a bare forward pass of one batch in the same process (what any extraction must hold).

    python perf/extraction_memory.py [--n 2632] [--batch-size 16] [--reducer sketch:4096] [--keep]

Writes results/benchmarks/extraction_memory.json. Goal: peak RSS < 6 GB for all 2,632 images.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from memprobe.data import load_dataset
from memprobe.features.extract import default_workers, extract, list_layers
from memprobe.features.reducers import get_reducer
from memprobe.features.store import ActivationStore
from memprobe.zoo import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def peak_rss_gb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # Linux reports KiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2632)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--reducer", default="sketch:4096")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--scratch", type=Path, default=None, help="store folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the store (default: delete it)")
    args = parser.parse_args()

    model = load_model("resmem:resnet152")
    stimuli = load_dataset("lnsim").stimuli.subset(n=args.n, seed=0)
    layers = list_layers(model)
    with torch.inference_mode():
        model.network(torch.rand(args.batch_size, *model.preprocessing.input_size))
    after_one_batch = peak_rss_gb()

    reducer = get_reducer(args.reducer)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="memprobe-memory-"))
    started = time.time()
    features = extract(
        model,
        stimuli,
        None,
        reducer,
        ActivationStore(scratch),
        batch_size=args.batch_size,
        num_workers=args.workers,
    )
    elapsed = time.time() - started
    disk = sum(path.stat().st_size for path in scratch.rglob("*.npy"))
    first, last = features[layers.names[0]], features[layers.names[-1]]
    result = {
        "model": model.id,
        "images": len(stimuli),
        "layers": len(features),
        "reducer": reducer.key(),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "peak_rss_workers_gb": round(peak_rss_gb(resource.RUSAGE_CHILDREN), 3),
        "peak_rss_after_bare_forward_of_one_batch_gb": round(after_one_batch, 3),
        "store_gb_on_disk": round(disk / 2**30, 2),
        "elapsed_s": round(elapsed, 1),
        "first_layer_shape": list(first.shape),
        "last_layer_shape": list(last.shape),
        "goal": "peak_rss_gb < 6",
    }
    if not args.keep:
        shutil.rmtree(scratch)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "extraction_memory.json" if args.n >= 2632 else f"extraction_memory_n{args.n}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
