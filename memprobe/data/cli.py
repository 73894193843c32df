"""``memprobe data list | verify [NAME] | fetch NAME | check-images NAME``."""

from __future__ import annotations

from pathlib import Path

from memprobe import config
from memprobe.data import fetch as fetching
from memprobe.data.registry import dataset_info, list_datasets, load_dataset

_ROOT_HELP = "data folder (default $MEMPROBE_DATA, else ~/.cache/memprobe/data)"


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="list, verify, fetch and check the data sets")
    commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="each data set: present in the data folder?, size, source")
    listing.add_argument("--root", type=Path, help=_ROOT_HELP)
    listing.set_defaults(func=run_list)

    verify = commands.add_parser("verify", help="check files against the data folder's SHA256SUMS")
    verify.add_argument("names", nargs="*", metavar="NAME", help="data sets to check (default: all listed)")
    verify.add_argument("--root", type=Path, help=_ROOT_HELP)
    verify.set_defaults(func=run_verify)

    fetch = commands.add_parser("fetch", help="download a data set (resumable, checksum-verified)")
    fetch.add_argument("name", choices=fetching.fetchable_datasets(), metavar="NAME")
    fetch.add_argument("--root", type=Path, help=_ROOT_HELP)
    fetch.add_argument("--mirror", type=Path, help="copy from this data folder instead of downloading")
    fetch.add_argument(
        "--base-url",
        help=f"where raw repository files are served (default ${fetching.BASE_URL_ENV} or "
        f"{fetching.DEFAULT_BASE_URL})",
    )
    fetch.add_argument("--retries", type=int, default=2, help="retries of an interrupted download (resumed)")
    fetch.set_defaults(func=run_fetch)

    check = commands.add_parser("check-images", help="decode every image of a data set; list unreadable ones")
    check.add_argument("name", choices=[n for n in list_datasets() if dataset_info(n).folder], metavar="NAME")
    check.add_argument("--root", type=Path, help=_ROOT_HELP)
    check.set_defaults(func=run_check_images)


def _root(args) -> Path:
    return args.root.expanduser().resolve() if args.root else config.data_root(required=False)


def _human_size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


def run_list(args) -> int:
    root = _root(args)
    print(f"data folder: {root}{'' if root.is_dir() else ' (does not exist)'}")
    rows = [("name", "present", "on disk", "size", "source")]
    for name in list_datasets():
        info = dataset_info(name)
        if info.manifest_path() is None:
            rows.append((name, "-", "-", "-", "(you bring it: " + info.description.split(":")[0] + ")"))
            continue
        entries = fetching.manifest(name)
        present = [root / p for p in entries if (root / p).is_file()]
        on_disk = sum(p.stat().st_size for p in present)
        status = "yes" if len(present) == len(entries) else f"{len(present)}/{len(entries)} files"
        rows.append((name, status, _human_size(on_disk), info.size, str(info.source)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    return 0


def run_verify(args) -> int:
    report = fetching.verify(_root(args), args.names or None)
    for path in report.missing:
        print(f"MISSING   {path}")
    for path, expected, actual in report.mismatched:
        print(f"MISMATCH  {path}  (expected {expected}, got {actual})")
    print(
        f"{report.root}: {len(report.checked) - len(report.mismatched)} files OK, "
        f"{len(report.missing)} missing, {len(report.mismatched)} with a wrong checksum"
    )
    if not report.ok:
        print("Re-fetch the affected data sets: `memprobe data fetch NAME` (or --mirror DIR).")
    return 0 if report.ok else 1


def run_fetch(args) -> int:
    report = fetching.fetch(
        args.name, root=_root(args), mirror=args.mirror, base_url=args.base_url, retries=args.retries
    )
    print(
        f"{args.name}: {len(report.fetched)} files fetched, {len(report.already_present)} already present "
        f"and verified, in {report.root}"
    )
    return 0


def run_check_images(args) -> int:
    dataset = load_dataset(args.name, root=_root(args))
    if hasattr(dataset, "sessions"):
        stimuli = [dataset.session(s).stimuli for s in dataset.sessions]
    else:
        stimuli = [dataset.stimuli] if dataset.stimuli is not None else []
    n_bad = 0
    for stimulus_set in stimuli:
        bad = stimulus_set.unreadable()
        n_bad += len(bad)
        for stimulus_id, row in bad.iterrows():
            print(f"UNREADABLE  {stimulus_set.name}  {stimulus_id}  {row['image']}: {row['error']}")
    total = sum(len(s) for s in stimuli)
    print(f"{args.name}: {total - n_bad} of {total} images decode")
    return 0 if n_bad == 0 else 1
