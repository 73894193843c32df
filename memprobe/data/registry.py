"""The named data sets: where each lives in the data folder, how to load it, and its public source.

``load_dataset(name)`` imports the data set's module only when asked, so listing data sets stays cheap.
Each data set that ``memprobe data fetch`` can download ships a checksum manifest
(``manifests/<name>.sha256``, lines ``<sha256>  <path relative to the data folder>``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from memprobe import config
from memprobe.errors import DataError

MANIFEST_DIR = Path(__file__).with_name("manifests")


@dataclass(frozen=True)
class Source:
    """A GitHub repository at a pinned commit; ``prefix`` is the repository folder that holds the files."""

    repository: str
    commit: str
    prefix: str

    def __str__(self) -> str:
        return f"github.com/{self.repository}@{self.commit}:{self.prefix or '/'}"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: str  # "module:function"; the function takes the data folder as its first argument
    folder: str | None  # sub-folder of the data folder it lives in (None: the user names the folder)
    description: str
    size: str = ""
    source: Source | None = None
    # Why fetching from the public source cannot reproduce the shipped checksums (use --mirror instead).
    fetch_blocker: str | None = None

    def manifest_path(self) -> Path | None:
        path = MANIFEST_DIR / f"{self.name}.sha256"
        return path if path.is_file() else None


_DATASETS = {
    info.name: info
    for info in [
        DatasetInfo(
            "lnsim",
            "memprobe.data.lnsim:load_lnsim",
            "lnsim",
            "LNSIM: 2,632 outdoor natural scenes with memorability scores (25 participant splits)",
            "125 MB",
            Source(
                "JiaxinLu-home/Natural-Scene-Memorability-Dataset",
                "27e8e4a54d2ef30afa84b30aa640778d16a7ddf2",
                "",
            ),
        ),
        DatasetInfo(
            "lamem",
            "memprobe.data.lamem:load_lamem",
            "lamem",
            "LaMem: official train/val/test splits 1-5 (58,741 images); images if lamem/images/ exists",
            "6 MB (splits; images 2.7 GB)",
            Source(
                "tang-ji/media-memorability-prediction", "ef46dd0cd0261ab220f80f4c19309d0ca7d9c0c9", "lamem/"
            ),
        ),
        DatasetInfo(
            "cowley_v4",
            "memprobe.data.cowley_v4:load_cowley_v4",
            "cowley_v4",
            "Macaque V4 responses (Cowley et al. 2023), 8 sessions, images read from zips",
            "31 MB",
            Source(
                "cowleygroup/V4_compact_models",
                "f4552ad9d34a466ebc66658f72a08a8e5038f1cf",
                "data_V4_responses/",
            ),
        ),
        DatasetInfo(
            "rsa92",
            "memprobe.data.rsa92:load_rsa92",
            "rsa92",
            "The 92 images of Kiani/Kriegeskorte with monkey-IT and human-IT dissimilarity matrices",
            "4 MB",
            Source("rsagroup/rsatoolbox", "f1f83cad", "demos/92imageData/"),
        ),
        DatasetInfo(
            "imagenet_sample",
            "memprobe.data.imagenet_sample:load_imagenet_sample",
            "imagenet_sample",
            "1,000 ImageNet images, one per class, with class indices (a reference set, e.g. for PCA)",
            "30 MB",
            Source("EliSchwartz/imagenet-sample-images", "HEAD", ""),
            fetch_blocker=(
                "the shipped copy was re-encoded (256 px short side, JPEG q90), so the upstream originals "
                "do not match its checksums"
            ),
        ),
        DatasetInfo(
            "folder",
            "memprobe.data.folder:load_folder",
            None,
            "Your own images folder plus a CSV of scores: load_dataset('folder', root=DIR, csv=...)",
        ),
        DatasetInfo(
            "brainscore",
            "memprobe.data.brainscore:load_brainscore",
            None,
            "Brain-Score assemblies (MajajHong2015public.V4/.IT, FreemanZiemba2013public.V1/.V2) "
            "through brainscore_vision",
        ),
    ]
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(_DATASETS)}") from None


def load_dataset(name: str, root: str | Path | None = None, download: bool | None = None, **options):
    """Load a data set by name.

    ``root`` is the data folder (default ``$MEMPROBE_DATA``, else ``~/.cache/memprobe/data``); for
    ``folder`` it is the images folder itself, and ``brainscore`` takes an identifier instead
    (``load_dataset('brainscore', identifier='MajajHong2015public.IT')``). ``options`` go to the data set's
    loader. A data set that ``memprobe data fetch`` can download and that is missing files is fetched into
    the data folder first when ``download`` (default: unless offline, see ``config.offline``); otherwise
    the loader's DataError says how to get it.
    """
    info = dataset_info(name)
    module_name, function_name = info.loader.split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    if info.name == "brainscore":
        return loader(**options)
    if info.folder is None:
        if root is None:
            raise DataError(f"load_dataset({name!r}) needs root=<your images folder>")
        return loader(Path(root), **options)
    if download is None:
        download = not config.offline()
    if download:
        _fetch_if_incomplete(info, root)
    return loader(root, **options)


def _fetch_if_incomplete(info: DatasetInfo, root: str | Path | None) -> None:
    from memprobe.data import fetch  # fetch builds on this module

    if info.manifest_path() is None or info.fetch_blocker:
        return
    base = Path(root) if root is not None else config.data_root()
    if not all((base / path).is_file() for path in fetch.manifest(info.name)):
        fetch.fetch(info.name, root=base)


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder of data set ``name`` inside the data folder ``root`` (default ``config.data_root()``)."""
    info = dataset_info(name)
    base = Path(root) if root is not None else config.data_root()
    folder = base / info.folder
    if not folder.is_dir():
        raise DataError(
            f"data set {name!r} is not in the data folder {base} (no {folder}). "
            f"Get it with `memprobe data fetch {name} --root {base}` (or --mirror DIR from a copy)."
        )
    return folder


