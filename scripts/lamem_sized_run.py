"""A LaMem-sized sweep on this machine: the mechanics of a paper-scale task under a disk budget.

    python scripts/lamem_sized_run.py [--work runs/lamem_sized] [--max-store 800MB] [--kill-in-group 2]

The stimulus set has LaMem's size and ids: the 58,741 images named by the real split files
(``$MEMPROBE_DATA/lamem/splits``), scored on the official 5 train/test splits by ``lamem.memorability-pls``.
LaMem's images are not on this machine, so each id gets a STAND-IN image, cycling through small copies
(128 px on the long side) of the real LNSIM and ImageNet-sample photos here: the scores say nothing about
LaMem (the images repeat and do not match the scores); they are mechanics only.

Three runs of the same sweep (a real ImageNet network, its layers, a reducer), each in its own store:
1. under the budget, killed with SIGKILL once the chosen group is being extracted;
2. the same command again: it must resume (finished groups neither re-extracted nor rescored);
3. without a budget, all layers at once: the reference table.
The store is polled (bytes of activation arrays on disk) and so is the resident memory of the sweep's
processes. Writes ``results/benchmarks/lamem_sized_run.json`` and ``.txt``; exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAND_IN_SIZE = 128
KILL_DELAY_S = 60


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "lamem_sized")
    parser.add_argument("--model", default="efficientnet_lite:b0")
    parser.add_argument("--layers", default="_blocks.0,_blocks.1,_blocks.2")
    parser.add_argument("--reducer", default="sketch:1024")
    parser.add_argument("--max-store", default="300MB")
    parser.add_argument("--kill-in-group", type=int, default=2,
                        help="SIGKILL run 1 while it extracts this group")
    parser.add_argument("--subset", type=int, default=None,
                        help="keep the first N lines of each split file (a quick check of this script)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "lamem_sized_run")
    args = parser.parse_args()
    data = Path(os.environ.get("MEMPROBE_DATA", REPO.parent / "shared" / "data")).resolve()
    work = args.work.resolve()
    stand_in_root, n_images = _stand_in_data(data, work / "data", args.subset)
    layers = args.layers.split(",")

    command = [sys.executable, "-m", "memprobe.cli", "sweep", "--model", args.model, "--benchmarks",
               "lamem.memorability-pls", "--layers", args.layers, "--reducer", args.reducer,
               "--workers", "1"]
    budgeted = [*command, "--max-store", args.max_store, "--out", str(work / "budgeted")]
    environment = {**os.environ, "MEMPROBE_DATA": str(stand_in_root), "MEMPROBE_OFFLINE": "1"}
    cells = work / "budgeted" / _safe(args.model) / "cells" / "lamem.memorability-pls"

    def killed_in_group(seen: set[str]) -> bool:
        done = {path.stem for path in cells.glob("*.json")} if cells.is_dir() else set()
        return len(done) >= args.kill_in_group - 1 and bool(seen - done)

    budgeted_store = environment | {"MEMPROBE_CACHE": str(work / "cache-budgeted")}
    first = _run(budgeted, budgeted_store, work / "budgeted-killed.log", kill_when=killed_in_group)
    finished = {path: path.stat().st_mtime_ns for path in cells.glob("*.json")}
    second = _run(budgeted, budgeted_store, work / "budgeted-resumed.log")
    unbudgeted_store = environment | {"MEMPROBE_CACHE": str(work / "cache-all")}
    reference = _run([*command, "--out", str(work / "all")], unbudgeted_store, work / "unbudgeted.log")

    import pandas as pd

    table = pd.read_csv(work / "budgeted" / _safe(args.model) / "scores.csv")
    unbudgeted = pd.read_csv(work / "all" / _safe(args.model) / "scores.csv")
    budget = _bytes(args.max_store)
    finished_layers = {path.stem for path in finished}
    checks = {
        "run 1 was killed (SIGKILL) part-way": first["killed"],
        "peak store under the budget (runs 1 and 2)": max(first["peak_store"], second["peak_store"])
        <= budget,
        "peak RSS under 6 GB (all runs)": max(r["peak_rss"] for r in (first, second, reference)) < 6e9,
        "finished cells not rescored": all(path.stat().st_mtime_ns == t for path, t in finished.items()),
        "finished groups not re-extracted": not (second["layers_seen"] & finished_layers),
        "resumed table identical to the unbudgeted one": table.equals(unbudgeted),
        "every layer scored": sorted(table["layer"]) == sorted(layers),
    }
    report = {
        "what": f"LaMem-sized stimulus set ({n_images:,} ids of the real split files, STAND-IN images: "
        "mechanics only)",
        "model": args.model, "layers": layers, "reducer": args.reducer, "max_store_bytes": budget,
        "runs": {"budgeted, killed": first, "budgeted, resumed": second, "unbudgeted": reference},
        "seconds_per_1000_images_extraction_unbudgeted": 1000 * reference["extraction_s"] / n_images,
        "seconds_per_1000_images_scoring_unbudgeted": 1000 * reference["scoring_s"] / n_images,
        "checks": checks,
        "scores": table[["layer", "raw"]].to_dict(orient="records"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=_jsonable) + "\n")
    lines = [report["what"], f"{args.model}, layers {layers}, {args.reducer}, budget {args.max_store}"]
    for name, run in report["runs"].items():
        lines.append(f"{name}: {run['seconds']:.0f} s, peak store {run['peak_store'] / 1e6:.0f} MB, "
                     f"peak RSS {run['peak_rss'] / 1e9:.2f} GB, exit {run['returncode']}")
    lines += [f"extraction {report['seconds_per_1000_images_extraction_unbudgeted']:.1f} s / 1,000 images, "
              f"scoring {report['seconds_per_1000_images_scoring_unbudgeted']:.1f} s / 1,000 images "
              "(unbudgeted run, 2 cores)"]
    lines += [f"{'ok ' if passed else 'FAILED '} {name}" for name, passed in checks.items()]
    args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(checks.values()) else 1


def _stand_in_data(data: Path, root: Path, subset: int | None) -> tuple[Path, int]:
    """A data folder whose lamem/ has the real split files (or their first lines) and a stand-in image
    for every id; returns it with the number of ids."""
    from PIL import Image

    if subset is not None:
        root = root.with_name(f"{root.name}-{subset}")
    images = root / "lamem" / "images"
    splits = root / "lamem" / "splits"
    if (root / "lamem" / "complete").is_file():
        return root, int((root / "lamem" / "complete").read_text().split()[0])
    images.mkdir(parents=True, exist_ok=True)
    if subset is None:
        splits.unlink(missing_ok=True)
        splits.symlink_to(data / "lamem" / "splits")
    else:
        splits.mkdir(exist_ok=True)
        for path in (data / "lamem" / "splits").glob("*.txt"):
            (splits / path.name).write_text("".join(path.read_text().splitlines(True)[:subset]))
    sources = sorted((data / "lnsim" / "Image_data").glob("*.jpg"))
    sources += sorted((data / "imagenet_sample").glob("*.JPEG"))
    small = root / "small"
    small.mkdir(exist_ok=True)
    copies = []
    for index, source in enumerate(sources):
        copy = small / f"{index:05d}.jpg"
        if not copy.is_file():
            with Image.open(source) as image:
                image = image.convert("RGB")
                image.thumbnail((STAND_IN_SIZE, STAND_IN_SIZE))
                image.save(copy, quality=90)
        copies.append(copy)
    names = sorted({line.split()[0] for path in splits.glob("*.txt")
                    for line in path.read_text().splitlines() if line.strip()})
    for index, name in enumerate(names):
        link = images / name
        if not link.is_symlink():
            link.symlink_to(copies[index % len(copies)])
    (root / "lamem" / "complete").write_text(f"{len(names)} stand-in images\n")
    return root, len(names)


def _run(command: list[str], environment: dict, log: Path, kill_when=None) -> dict:
    """Run the sweep in its own process group, output to ``log``, polling its store and memory; SIGKILL it
    when asked."""
    store = Path(environment["MEMPROBE_CACHE"]) / "activations"
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen(command, env=environment, start_new_session=True, cwd=REPO,
                                   stdout=output, stderr=subprocess.STDOUT)
    peak_store = peak_rss = 0
    seen: set[str] = set()
    killed, due = False, None
    while process.poll() is None:
        arrays = list(store.rglob("*.npy")) if store.is_dir() else []
        seen |= {path.name.split(".npy")[0].removesuffix(".partial") for path in arrays}
        peak_store = max(peak_store, sum(_size(path) for path in arrays))
        peak_rss = max(peak_rss, _group_rss(process.pid))
        if kill_when is not None and due is None and kill_when(seen):
            due = time.monotonic() + KILL_DELAY_S  # part-way into the group's extraction
        if due is not None and not killed and time.monotonic() >= due:
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
        time.sleep(1.0)
    output = log.read_text()
    if process.returncode != 0 and not killed:
        print(f"{' '.join(command[2:])} failed:\n{output[-2000:]}", file=sys.stderr)
    return {"command": " ".join(command[2:]), "returncode": process.returncode, "killed": killed,
            "seconds": time.monotonic() - started, "peak_store": peak_store, "peak_rss": peak_rss,
            "layers_seen": seen, "extraction_s": _phase(output, "extraction"),
            "scoring_s": _phase(output, "scoring"), "output_tail": output[-2000:]}


def _phase(output: str, name: str) -> float | None:
    for line in output.splitlines():
        if line.startswith(f"time {name}:"):
            return float(line.split(":")[1].split()[0])
    return None


def _group_rss(pgid: int) -> int:
    """Resident bytes of every process in the process group (the sweep and its loader workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _bytes(text: str) -> int:
    from memprobe.sweep import parse_size

    return parse_size(text)


def _safe(model: str) -> str:
    from memprobe.naming import safe_name

    return safe_name(model)


def _jsonable(value):
    return sorted(value) if isinstance(value, set) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
