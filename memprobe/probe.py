"""``memprobe sweep``, ``memprobe probe`` and ``memprobe demo``: a sweep, then its summary and (probe, demo)
figures. Orchestration only, like the rest of the CLI: the sweep and the analysis do the work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from memprobe.sweep import (
    DEFAULT_BENCHMARKS,
    PLS_DTYPES,
    RunFolder,
    SweepConfig,
    SweepTimes,
    parse_size,
    run_sweep,
)

DEMO_MODEL = "resmem:resnet152"
DEMO_SUBSET = 250
DEMO_MAX_MODULE_DEPTH = 2
# The full run keeps 1,024 dimensions per layer: at the default 4,096 its activation store (522 layers ×
# 11,364 images) would take ~97 GB of disk instead of ~24 GB. This is how results/resmem_resnet152 was made.
FULL_DEMO_REDUCER = "srp:1024"


def _layers(value: str | None):
    """A glob pattern (``layer3.*``), or a comma-separated list of layer names."""
    if value is None or "," not in value and any(c in value for c in "*?["):
        return value
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _add_sweep_options(parser: argparse.ArgumentParser, out_default: str) -> None:
    # Outputs default to runs/: results/ holds the committed results, which the notebooks read in full.
    parser.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a file")
    parser.add_argument("--seed", type=int, default=0, help="seed for random weights")
    parser.add_argument("--layers", help="glob pattern (e.g. 'layer4.*') or comma-separated layer names")
    parser.add_argument(
        "--max-module-depth",
        type=int,
        help="keep layers whose module path has at most this many parts (2: stem, stages, blocks, head)",
    )
    parser.add_argument("--distinct-layers", action="store_true",
                        help="skip layers whose output repeats an earlier layer's values (a reshape, an "
                        "identity, a block returning its last ReLU): `memprobe layers --distinct` lists them")
    parser.add_argument("--reducer", default="sketch",
                        help="none | pool | srp[:D] | sketch[:D] | pca[:K] (default sketch, D = 4096)")
    parser.add_argument("--pls-dtype", choices=list(PLS_DTYPES), default="float64",
                        help="PLS precision (float32: faster, scores equal to ~5 decimals)")
    parser.add_argument("--subset", type=int, help="use N images of each stimulus set (seeded), not all")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    parser.add_argument("--pls-device", help="where the PLS fits run (default: the --device)")
    parser.add_argument("--workers", type=int, help="DataLoader workers for image decoding")
    parser.add_argument("--max-store", type=parse_size, metavar="SIZE",
                        help="disk budget for the activation store, e.g. 50GB: layers are extracted, scored "
                        "and freed in groups that fit it (default: all layers at once, kept)")
    parser.add_argument("--keep-activations", action="store_true",
                        help="with --max-store: keep each group's activations in the store after scoring")
    parser.add_argument("--out", default=out_default, help=f"output folder (default {out_default})")


def register(subparsers) -> None:
    sweep = subparsers.add_parser("sweep", help="score every layer of a model on benchmarks → tidy table")
    sweep.add_argument("--model", required=True, help="model identifier (see `memprobe models`)")
    sweep.add_argument(
        "--benchmarks",
        default=",".join(DEFAULT_BENCHMARKS),
        help="comma-separated benchmark ids (default: the probe's four)",
    )
    _add_sweep_options(sweep, "runs/sweeps")
    sweep.set_defaults(func=lambda args: _run(args, args.model, figures=False))

    probe = subparsers.add_parser("probe", help="sweep a model on the default benchmarks, with figures")
    probe.add_argument("model", help="model identifier, e.g. timm:convnext_tiny or torchvision:resnet50")
    _add_sweep_options(probe, "runs/probe")
    probe.set_defaults(func=lambda args: _run(args, args.model, figures=True))

    demo = subparsers.add_parser(
        "demo",
        help=f"probe {DEMO_MODEL} on {DEMO_SUBSET} images per stimulus set and its block-level layers",
    )
    demo.add_argument("--full", action="store_true",
                      help=f"all layers and all images, reducer {FULL_DEMO_REDUCER} (hours on a CPU, "
                      "~24 GB of activation store)")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--device")
    demo.add_argument("--pls-device")
    demo.add_argument("--workers", type=int)
    demo.add_argument("--max-store", type=parse_size, metavar="SIZE", help="disk budget, as for `sweep`")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    args.model = DEMO_MODEL
    args.weights, args.seed, args.layers, args.subset_seed = "pretrained", 0, None, 0
    args.distinct_layers = False
    args.pls_dtype = "float64"
    args.reducer = FULL_DEMO_REDUCER if args.full else "sketch"
    args.subset = None if args.full else DEMO_SUBSET
    args.max_module_depth = None if args.full else DEMO_MAX_MODULE_DEPTH
    return _run(args, DEMO_MODEL, figures=True)


def _run(args: argparse.Namespace, model: str, figures: bool) -> int:
    benchmarks = getattr(args, "benchmarks", None)
    config = SweepConfig(
        model=model,
        benchmarks=tuple(b.strip() for b in benchmarks.split(",")) if benchmarks else DEFAULT_BENCHMARKS,
        weights=args.weights,
        seed=args.seed,
        layers=_layers(args.layers),
        max_module_depth=args.max_module_depth,
        distinct_layers=args.distinct_layers,
        reducer=args.reducer,
        subset=args.subset,
        subset_seed=args.subset_seed,
        pls_dtype=args.pls_dtype,
    )
    times = SweepTimes()
    scores = run_sweep(config, args.out, batch_size=args.batch_size, device=args.device,
                       num_workers=args.workers, pls_device=args.pls_device, times=times,
                       max_store=args.max_store,
                       keep_activations=getattr(args, "keep_activations", False))
    print(f"time extraction: {times.extraction:.1f} s\ntime scoring: {times.scoring:.1f} s")
    run_dir = RunFolder(args.out, model).path
    _print_summary(scores, run_dir)
    if figures:
        _figures(scores, run_dir)
    return 0


def _print_summary(scores: pd.DataFrame, run_dir: Path) -> None:
    from memprobe.analysis.tables import score_values

    best = scores.assign(score=score_values(scores)).dropna(subset=["score"])
    best = best.sort_values("score").groupby("benchmark").tail(1)
    print(f"\n{scores['layer'].nunique()} layers × {scores['benchmark'].nunique()} benchmarks scored.")
    print("Best layer per benchmark (memorability: raw Spearman ρ; brain: ceiled where a ceiling exists):")
    for row in best.sort_values("benchmark").itertuples():
        print(f"  {row.benchmark:<28} {row.score:7.3f}  {row.layer} (depth {row.relative_depth:.2f})")
    if "pls_warnings" in scores and scores["pls_warnings"].fillna(0).gt(0).any():
        warned = scores[scores["pls_warnings"].fillna(0) > 0]
        print(f"PLS warnings in {len(warned)} of {len(scores)} layer × benchmark cells, e.g. "
              f"{warned['layer'].iloc[0]} × {warned['benchmark'].iloc[0]}: {warned['pls_warning'].iloc[0]} "
              "(columns pls_warnings, pls_warning of scores.csv)")
    if "unscored" in scores and scores["unscored"].notna().any():
        for row in scores[scores["unscored"].notna()].itertuples():
            print(f"  no score: {row.layer} × {row.benchmark}: {row.unscored}")
    print(f"Table: {run_dir / 'scores.csv'} (per split: {run_dir / 'splits.csv'})")


def _figures(scores: pd.DataFrame, run_dir: Path) -> None:
    from memprobe.analysis.correlations import memorability_brain_stats
    from memprobe.analysis.figures import layer_profile, memorability_vs_brain

    figures = run_dir / "figures"
    layer_profile(scores, out=figures / "layer_profile")
    stats = memorability_brain_stats(scores)
    memorability_vs_brain(scores, stats=stats, out=figures / "memorability_vs_brain")
    stats.to_csv(run_dir / "memorability_vs_brain.csv", index=False)
    print("Memorability accuracy vs brain similarity across layers (Spearman ρ, bootstrap 95 % CI):")
    for row in stats.itertuples():
        print(
            f"  {row.y:<28} ρ = {row.rho:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
            f" p = {row.p_perm:.3f}   partial | depth ρ = {row.partial_rho:+.2f}"
            f" [{row.partial_ci_low:+.2f}, {row.partial_ci_high:+.2f}]"
        )
    print(f"Figures: {figures}/layer_profile.{{png,pdf}}, {figures}/memorability_vs_brain.{{png,pdf}}")
