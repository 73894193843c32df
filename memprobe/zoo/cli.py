"""``memprobe models``: list registered models with source, published top-1, preprocessing and where their
pretrained weights are (or are expected); ``memprobe models fetch`` downloads those weights ahead of use."""

from __future__ import annotations

import fnmatch

from memprobe import config
from memprobe.errors import MemprobeError, ModelError
from memprobe.zoo.registry import MODEL_SETS, get_spec, list_models, model_set
from memprobe.zoo.weights import require

MIRROR_HELP = (
    "with fetch: take the files from a mirror laid out like their URLs, <mirror>/<host>/<path> (as `wget -x "
    "URL` saves them), e.g. DIR/download.pytorch.org/models/resnet50-0676ba61.pth or "
    "DIR/huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors; a folder, or the base URL "
    "(http://...) of a server that serves one. Files are checked against the hash their names carry "
    "(torchvision's)"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list models (source, ImageNet top-1, preprocessing, weights file); fetch pretrained weights",
        usage="memprobe models [PATTERN] [--set SET]\n"
        "       memprobe models fetch SET|ID... [--mirror DIR|URL]",
        description=(
            "List registered models; timm's are listed by a 'timm:' pattern, e.g. 'timm:resnet*'. "
            "`memprobe models fetch` downloads pretrained weights into the caches their libraries read "
            "(torch hub's checkpoints folder, the Hugging Face cache), e.g. on a login node for jobs on "
            "compute nodes without internet (weights missing there are otherwise downloaded on first use, "
            "where there is internet). Files already there are kept."
        ),
    )
    parser.add_argument(
        "pattern",
        nargs="?",
        default="*",
        metavar="PATTERN",
        help="fnmatch pattern over identifiers (default: all); or `fetch`, to download weights",
    )
    parser.add_argument(
        "targets", nargs="*", metavar="SET|ID", help="with fetch: named sets (paper64) or model identifiers"
    )
    parser.add_argument("--set", dest="model_set", help="a named set, e.g. paper64")
    parser.add_argument("--mirror", metavar="DIR|URL", help=MIRROR_HELP)
    parser.set_defaults(func=run_models)


def run_models(args) -> int:
    if args.pattern == "fetch":
        return run_fetch(args.targets, args.mirror)
    if args.targets or args.mirror:
        raise MemprobeError(
            "`memprobe models` takes one PATTERN; to download weights: "
            "`memprobe models fetch SET|ID... [--mirror DIR|URL]`"
        )
    if args.model_set:
        identifiers = [i for i in model_set(args.model_set) if fnmatch.fnmatchcase(i, args.pattern)]
    else:
        identifiers = list_models(args.pattern)
    rows = []
    for identifier in identifiers:
        spec = get_spec(identifier)
        found = spec.weights.locate() if spec.weights is not None else None
        rows.append(
            (
                identifier,
                spec.source,
                "-" if spec.top1 is None else f"{spec.top1:.2f}",
                spec.preprocessing.describe(),
                _weights_file(spec.weights, found),
                "yes" if found else "no",
            )
        )
    header = ("model", "source", "top1", "preprocessing", "file", "weights")
    widths = [max(len(str(row[k])) for row in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(
        f"{len(rows)} models; file = where the pretrained weights are (or are expected), weights = whether "
        "they are there; `memprobe models fetch` downloads missing ones"
    )
    return 0


def _weights_file(location, found) -> str:
    if location is None:
        return "-"
    expected = found or location.expected_path()
    return str(expected) if expected is not None else "(its package is not installed)"


def run_fetch(targets: list[str], mirror: str | None) -> int:
    """Fill the local caches with the pretrained weights of ``targets`` (sets or identifiers)."""
    if not targets:
        raise MemprobeError("memprobe models fetch: name model sets (e.g. paper64) or model identifiers")
    identifiers = []
    for target in targets:
        identifiers += model_set(target) if target in MODEL_SETS else [target]
    specs = [get_spec(identifier) for identifier in dict.fromkeys(identifiers)]  # unknown ids fail up front
    download = mirror is not None or not config.offline()
    failed = 0
    for spec in specs:
        present = spec.weights is not None and spec.weights.locate() is not None
        try:
            path = require(spec.weights, spec.identifier, download=download, mirror=mirror)
        except ModelError as error:
            failed += 1
            print(f"{spec.identifier}  FAILED  {error}")
            continue
        print(f"{spec.identifier}  {'present' if present else 'fetched'}  {path}")
    print(f"{len(specs) - failed} of {len(specs)} models have their pretrained weights on this machine")
    return 1 if failed else 0
