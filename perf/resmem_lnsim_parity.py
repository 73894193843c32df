"""``load_model("resmem")`` + its Preprocessing vs the resmem package's own ``ResMem(pretrained=True)`` +
``transformer`` on LNSIM: are the memorability predictions identical, image for image? Also reports
their zero-shot Spearman ρ with LNSIM's memorability scores.

Both pipelines see the same batches (so identical arithmetic is expected, not just close numbers).

    python perf/resmem_lnsim_parity.py [--limit N]  # writes results/benchmarks/resmem_lnsim_parity.txt
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import resmem
import torch
from scipy import stats
from tqdm import tqdm

from memprobe.atomic import write_text
from memprobe.data.registry import load_dataset
from memprobe.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "resmem_lnsim_parity.txt"
BATCH = 16


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MEMPROBE_THREADS", "2")))
    lnsim = load_dataset("lnsim")
    ids = lnsim.stimuli.ids[: args.limit]
    ours = load_model("resmem")
    transform = ours.preprocessing.transform()
    package = resmem.ResMem(pretrained=True).eval()

    predicted, reference = [], []
    times = {"memprobe": 0.0, "package": 0.0}
    for start in tqdm(range(0, len(ids), BATCH), desc="LNSIM", unit="batch"):
        images = [lnsim.stimuli.open(i) for i in ids[start : start + BATCH]]
        with torch.no_grad():
            tick = time.perf_counter()
            predicted.append(ours.network(torch.stack([transform(image) for image in images])).squeeze(1))
            times["memprobe"] += time.perf_counter() - tick
            tick = time.perf_counter()
            reference.append(package(torch.stack([resmem.transformer(image) for image in images])).squeeze(1))
            times["package"] += time.perf_counter() - tick
    predicted, reference = torch.cat(predicted), torch.cat(reference)

    identical = int((predicted == reference).sum())
    scores = lnsim.scores.loc[ids].to_numpy()
    rho_ours = stats.spearmanr(predicted.numpy(), scores).statistic
    rho_package = stats.spearmanr(reference.numpy(), scores).statistic
    lines = [
        f"ResMem on LNSIM ({len(ids)} images, batches of {BATCH}): memprobe load_model('resmem') vs the "
        "resmem package's ResMem(pretrained=True) + transformer",
        f"identical predictions: {identical} / {len(ids)}; max |difference| "
        f"{(predicted - reference).abs().max().item():.3g}",
        f"zero-shot Spearman rho with LNSIM scores: memprobe {rho_ours:.4f}, package {rho_package:.4f}",
        f"time (preprocess + forward): memprobe {times['memprobe']:.1f} s, package {times['package']:.1f} s, "
        f"ratio {times['memprobe'] / times['package']:.3f} ({1000 * times['memprobe'] / len(ids):.0f} ms per "
        f"image, {torch.get_num_threads()} threads)",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_text(OUTPUT, text)


if __name__ == "__main__":
    main()
