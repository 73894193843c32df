"""CPU throughput on this machine: per-model forward rates (results/benchmarks/throughput_cpu.csv) and
the JPEG decoding rate that ``memprobe plan`` reads from ``slurm/machine.json``.

Per model (torchvision architecture, random weights, one subprocess each so peak memory is its own):
forward images/s at 224 px (batch 16, after one warm-up batch), peak resident memory, the number of
layers with >= 24 units (all module outputs, as the sweep hooks them) and their mean width (units and
channels). Per machine: JPEG decoding + preprocessing images/s on one core (LNSIM photos, the sweep's
data loader work) and scikit-learn PLSRegression(25, scale=False) fit seconds at two sizes, reported
as seconds per (n_train × features) and as a ratio between the sizes (the plan assumes linear scaling).

    python perf/bench_throughput.py            # writes slurm/machine.json + results/benchmarks/
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "torchvision:alexnet": "alexnet",
    "torchvision:resnet18": "resnet18",
    "torchvision:resnet50": "resnet50",
    "torchvision:resnet152": "resnet152",
    "torchvision:densenet121": "densenet121",
    "torchvision:vgg16": "vgg16",
    "torchvision:mobilenet_v2": "mobilenet_v2",
}
BATCH = 16


def measure_model(architecture: str) -> dict:
    import torch
    import torchvision

    network = getattr(torchvision.models, architecture)(weights=None).eval()
    widths: list[tuple[int, int]] = []

    def record(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output[0].numel() >= 24:
            widths.append((output[0].numel(), output.shape[1]))

    handles = [module.register_forward_hook(record) for module in network.modules()]
    with torch.no_grad():
        network(torch.zeros(1, 3, 224, 224))
    for handle in handles:
        handle.remove()
    batch = torch.rand(BATCH, 3, 224, 224)
    with torch.no_grad():
        network(batch)
        started = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            network(batch)
        seconds = time.perf_counter() - started
    return {
        "images_per_s": round(repeats * BATCH / seconds, 2),
        "peak_mem_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "layers": len(widths),
        "mean_units": int(sum(units for units, _ in widths) / len(widths)),
        "mean_channels": int(sum(channels for _, channels in widths) / len(widths)),
        "params_m": round(sum(p.numel() for p in network.parameters()) / 1e6, 2),
    }


def measure_decoding(n: int = 100) -> float:
    import torch
    import torchvision.transforms as T
    from PIL import Image

    torch.set_num_threads(1)
    folder = Path(os.environ.get("MEMPROBE_DATA", REPO.parent / "shared" / "data")) / "lnsim" / "Image_data"
    paths = sorted(folder.glob("*.jpg"))[:n]
    transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    started = time.perf_counter()
    for path in paths:
        transform(Image.open(path).convert("RGB"))
    return len(paths) / (time.perf_counter() - started)


def measure_pls(n: int, d: int) -> float:
    import numpy as np
    from sklearn.cross_decomposition import PLSRegression

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal(n)
    started = time.perf_counter()
    PLSRegression(n_components=25, scale=False).fit(X, y)
    return time.perf_counter() - started


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--model":
        print(json.dumps(measure_model(sys.argv[2])))
        return
    import pandas as pd
    import torch

    rows = []
    for identifier, architecture in MODELS.items():
        output = subprocess.run([sys.executable, __file__, "--model", architecture], check=True,
                                capture_output=True, text=True).stdout
        row = {"model": identifier, "device": "cpu", "threads": torch.get_num_threads(), "batch": BATCH,
               **json.loads(output.strip().splitlines()[-1])}
        print(row, flush=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    small, large = (2000, 1000), (4000, 2000)
    pls_small, pls_large = measure_pls(*small), measure_pls(*large)
    machine = {
        "decode_images_per_s_per_core": round(measure_decoding(), 1),
        "pls25_seconds_per_sample_feature": pls_large / (large[0] * large[1]),
        "pls25_fit_s": {"x".join(map(str, size)): round(seconds, 3)
                        for size, seconds in ((small, pls_small), (large, pls_large))},
        "pls25_ratio_4x_size": round(pls_large / pls_small, 2),
        "cpu": f"{os.cpu_count()} cores (shared with other jobs while measured)",
        "torch": torch.__version__,
    }
    print(machine)
    out = REPO / "results" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "throughput_cpu.csv", index=False)
    (REPO / "slurm" / "machine.json").write_text(json.dumps(machine, indent=1) + "\n")
    (out / "throughput_machine.json").write_text(json.dumps(machine, indent=1) + "\n")


if __name__ == "__main__":
    main()
