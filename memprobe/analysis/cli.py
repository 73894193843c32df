"""`memprobe analyze RESULTS... --figure 2|3|4|S1|S2|all [--out DIR]`: the paper's figures and statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from memprobe.analysis.paper import FIGURES, Options, write_csv
from memprobe.analysis.regions import parse_overrides
from memprobe.analysis.tables import load_results
from memprobe.errors import DataError

CHOICES = [*FIGURES, "all"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="paper figures and statistics (ρ, bootstrap CI, permutation p, partial ρ) from result tables",
        description="Reads score tables (memprobe sweep), fine-tune tables (memprobe finetune) and ImageNet "
        "top-1 tables (model, top1) from the CSV files/folders given, and writes each figure as PNG + PDF "
        "and all statistics (beside the paper's numbers) to OUT/statistics.csv.",
    )
    parser.add_argument("results", nargs="+", help="result CSV files or folders (searched recursively)")
    parser.add_argument(
        "--figure", choices=CHOICES, default="all", help="which figure (default: all possible)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/figures"), help="output folder")
    parser.add_argument("--top1", type=Path, help="CSV with columns model, top1 (ImageNet top-1 per model)")
    parser.add_argument(
        "--memorability", help="memorability benchmark id (default: LaMem's, else the only one)"
    )
    parser.add_argument("--it-benchmark", help="IT benchmark for Figures 3/4 (default: the IT PLS one)")
    parser.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="BENCHMARK=REGION",
        help="override the benchmark → region rule, e.g. my.bench=V4 (repeatable)",
    )
    parser.add_argument(
        "--penultimate",
        action="append",
        default=[],
        metavar="MODEL=LAYER",
        help="penultimate layer of a model, where the automatic rule is wrong (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="MODEL",
        help="leave out models matching this pattern (shell-style, e.g. 'resmem:*'; repeatable)",
    )
    parser.add_argument(
        "--value", choices=["auto", "raw", "ceiled"], default="auto", help="score column used"
    )
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--n-perm", type=int, default=2000, help="permutations (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    try:
        return parse_overrides(values)
    except ValueError as error:
        raise DataError(str(error).replace("--region", flag)) from error


def run(args: argparse.Namespace) -> int:
    paths = [*args.results, *([args.top1] if args.top1 else [])]
    results = load_results(paths)
    if args.top1 and results.top1 is None:
        raise DataError(f"{args.top1} has no columns model, top1; give a CSV with ImageNet top-1 per model.")
    print(f"read {results.describe()}")
    if args.exclude:
        results = results.without(args.exclude)
        print(f"without {', '.join(args.exclude)}")
    options = Options(
        value=args.value,
        memorability=args.memorability,
        it_benchmark=args.it_benchmark,
        region_overrides=_pairs(args.region, "--region"),
        penultimate=_pairs(args.penultimate, "--penultimate"),
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        seed=args.seed,
    )
    wanted = list(FIGURES) if args.figure == "all" else [args.figure]
    statistics, skipped = [], []
    for name in wanted:
        try:
            result = FIGURES[name](results, args.out, options)
        except DataError as error:
            if args.figure != "all":
                raise
            skipped.append(f"Figure {name}: {error}")
            continue
        if name != "S2":
            statistics.append(result.statistics)
        for path in result.files:
            print(f"wrote {path}")
    for note in skipped:
        print(f"skipped {note}")
    if len(skipped) == len(wanted):
        raise DataError(f"no figure could be drawn from {', '.join(map(str, paths))}; see the notes above.")
    if statistics:
        table = pd.concat(statistics, ignore_index=True)
        path = args.out / "statistics.csv"
        if path.is_file():  # keep the rows of figures not redrawn this time
            earlier = pd.read_csv(path, dtype={"figure": str})
            table = pd.concat([earlier[~earlier["figure"].isin(table["figure"])], table], ignore_index=True)
        table = table.sort_values("figure", kind="stable", ignore_index=True)
        write_csv(table, path)
        print(f"wrote {path}")
        columns = ["figure", "x", "y", "n", "rho", "ci_low", "ci_high", "p_perm", "partial_rho", "paper_rho"]
        print(table[[c for c in columns if c in table.columns]].to_string(index=False, float_format="%.3g"))
    return 0
