"""Linear, ResMem-Net and AMNet heads on the frozen ResMem ResNet-152 backbone, LNSIM, 5-fold CV.

Beside them: ResMem's own zero-shot Spearman on LNSIM and the human split-half consistency. The
backbone's block features (every residual block, globally pooled, float32) and its layer3 map
(1024 × 15 × 15 at ResMem's 227 crop, stored float16) are cached once under $MEMPROBE_CACHE; the heads
train on them. Writes results/finetune/lnsim_heads.csv (one row per head and fold, plus mean and
pooled "overall" rows) and lnsim_heads.md (the summary table, with the command that produced it).

    python perf/finetune_lnsim_heads.py [--cached-only] [--heads linear resmemnet amnet]
        [--max-epochs HEAD=N ...]

``--cached-only`` uses the images whose features are cached so far (an unbiased subset: chunks follow
the order of the images' content digests), for when computing all of them does not fit the time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from memprobe.config import cache_root
from memprobe.data import load_dataset
from memprobe.data.lnsim import split_half_spearman
from memprobe.finetune.data import FeatureScores, kfold_splits
from memprobe.finetune.features import cache_frozen_features
from memprobe.finetune.heads import find_blocks
from memprobe.finetune.models import AMNET_LAYER, build_feature_head
from memprobe.finetune.recipes import get_recipe
from memprobe.finetune.run import DEFAULT_RECIPE
from memprobe.finetune.trainer import train_folds
from memprobe.zoo import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "finetune"
BACKBONE = "resmem:resnet152"
RESMEM_ZERO_SHOT = 0.494  # ResMem's own predictions on all 2,632 LNSIM images (data preparer, DESIGN.md)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=["linear", "resmemnet", "amnet"])
    parser.add_argument("--cached-only", action="store_true")
    parser.add_argument("--max-epochs", nargs="*", default=[], metavar="HEAD=N",
                        help="cap a head's recipe, e.g. amnet=8 (for CPU time; recorded in the table)")
    parser.add_argument("--fold", type=int, nargs="*",
                        help="train only these folds (to run folds in parallel processes); a later run "
                        "without --fold gathers them and writes the tables")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    caps = {head: int(n) for head, n in (item.split("=") for item in args.max_epochs)}

    started = time.perf_counter()
    lnsim = load_dataset("lnsim")
    loaded = load_model(BACKBONE)
    blocks = find_blocks(loaded.network)
    features = cache_frozen_features(
        loaded.network, loaded.preprocessing.transform(), lnsim.stimuli, blocks, spatial_layer=AMNET_LAYER,
        model_key=BACKBONE, cached_only=args.cached_only,
    )
    ids = features.ids
    scores = lnsim.scores.loc[ids].to_numpy()
    folds = kfold_splits(ids, n_folds=5, seed=0)
    print(f"[{time.perf_counter() - started:.0f} s] {len(ids)} of {len(lnsim.scores)} LNSIM images; "
          f"blocks {len(blocks)}; "
          f"pooled {features.pooled.shape[1]} dims; {AMNET_LAYER} map {features.spatial.shape[1:]}",
          flush=True)

    inputs = {"linear": features.last_block, "resmemnet": features.pooled, "amnet": features.spatial}
    position = {sid: i for i, sid in enumerate(ids)}
    rows = []
    for head in args.heads:
        recipe = get_recipe(DEFAULT_RECIPE[head])
        if head in caps:
            recipe = recipe.replace(max_epochs=caps[head])
        table = inputs[head]

        def make_dataset(subset, train, table=table):
            rows_ = [position[s] for s in subset]
            return FeatureScores(table[rows_], subset, scores[rows_])

        def build_model(fold, head=head):
            return build_feature_head(head, features.block_channels, features.spatial.shape[1])

        started = time.perf_counter()
        run_name = f"lnsim_{head}_{recipe.name}_n{len(ids)}_e{recipe.max_epochs}"
        run_dir = cache_root() / "finetune-runs" / run_name
        chosen = [folds[k] for k in args.fold] if args.fold is not None else folds
        _, metrics = train_folds(chosen, build_model, make_dataset, recipe, run_dir, meta={
            "model": BACKBONE, "head": head, "input": "spatial" if head == "amnet" else "pooled",
            "blocks": blocks, "layer": AMNET_LAYER, "input_size": 227, "weights": "pretrained", "seed": 0})
        metrics.insert(0, "head", head)
        metrics.insert(1, "recipe", recipe.name)
        metrics["max_epochs"] = recipe.max_epochs
        metrics["n_images"] = len(ids)
        metrics["train_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(metrics)
        print(metrics.to_string(index=False), flush=True)
    if args.fold is not None:
        return 0

    table = pd.concat(rows, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "lnsim_heads.csv", index=False)
    human = float(split_half_spearman(lnsim.half_scores).mean())
    summary = ["| predictor | Spearman ρ (mean of 5 folds) | ρ (pooled) | MSE | epochs cap | n images |",
               "|---|---|---|---|---|---|"]
    for head, group in table.groupby("head", sort=False):
        mean = group[group["fold"] == "mean"].iloc[0]
        overall = group[group["fold"] == "overall"].iloc[0]
        summary.append(
            f"| {head} head, frozen {BACKBONE} ({mean['recipe']} recipe) | {mean['spearman']:.3f} | "
            f"{overall['spearman']:.3f} | {mean['mse']:.4f} | {int(mean['max_epochs'])} | "
            f"{int(mean['n_images'])} |"
        )
    summary.append(f"| ResMem zero-shot (all 2,632 images, measured by the data preparer) | "
                   f"{RESMEM_ZERO_SHOT} | | 0.0156 | – | 2632 |")
    summary.append(f"| human split-half (mean over 25 splits, not Spearman-Brown corrected) | {human:.3f} "
                   f"| | | – | {len(lnsim.scores)} |")
    command = "python " + " ".join([str(Path(sys.argv[0]).as_posix())] + (argv or sys.argv[1:]))
    notes = [
        f"Images: {len(ids)} of {len(lnsim.scores)}"
        + (" (--cached-only: the images whose backbone features were cached when the run started; cache "
           "chunks follow the images' content digests, so this is a subset unrelated to ids or scores)"
           if len(ids) < len(lnsim.scores) else "") + ".",
        "Folds: seeded KFold(5, shuffle, random_state=0) over those images; per fold 10% of the training "
        "images (seeded) are the validation split that picks the best epoch; 'mean' averages the folds' "
        "Spearman, 'pooled' correlates all out-of-fold predictions at once.",
        "Features: every residual block of ResMem's ResNet-152 globally average-pooled (float32; the linear "
        "head sees the last block's 2048, ResMem-Net all 50 blocks) and layer3's 1024 x 15 x 15 map at the "
        "227 crop (stored float16; AMNet's input).",
        ("Epoch caps (" + ", ".join(f"{head}={n}" for head, n in caps.items()) + ") cut the named recipe "
         "after that many epochs, for CPU time; the other heads ran their whole recipe (with early stopping "
         "where the recipe has it)." if caps else "Every head ran its whole recipe (with early stopping "
         "where the recipe has it)."),
        "train_seconds: wall time of the run that wrote the table; folds trained by an earlier run are read "
        "back from their checkpoints and count 0 s.",
    ]
    (args.out / "lnsim_heads.md").write_text(
        "# Memorability heads on LNSIM (frozen ResMem ResNet-152 features, 5-fold CV)\n\n"
        + "\n".join(summary) + "\n\n" + "\n\n".join(notes) + f"\n\nProduced by: `{command}`\n"
    )
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
