"""Checksums, verification and downloads of the data sets.

``verify`` checks a data folder against its ``SHA256SUMS`` (lines ``<sha256>  <relative path>``; the
package's per-data-set manifests when the folder has none). ``fetch`` puts a data set into a data folder
from its public source (raw files of a GitHub repository at a pinned commit, under a configurable base
URL) or from a local mirror (a data folder with the same layout, for cluster nodes without internet).

Files arrive through :mod:`memprobe.download`: an interrupted download keeps ``<final name>.part`` and the
next run resumes it, and the checksum is checked before the file gets its final name, so a file under its
final name is always complete and verified. A mismatching file is deleted, never kept.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from memprobe import config, download
from memprobe.atomic import write_bytes
from memprobe.data.registry import DatasetInfo, Source, dataset_info, list_datasets
from memprobe.download import sha256_file
from memprobe.errors import DataError

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/"
BASE_URL_ENV = "MEMPROBE_FETCH_BASE_URL"
SUMS_FILE = "SHA256SUMS"


class FetchError(DataError):
    """A download or copy that failed; the message says whether a rerun resumes it."""


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """``{relative path: sha256}`` from ``<sha256>  <path>`` lines (``./`` prefixes dropped)."""
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, path = line.partition("  ")
        digest = digest.strip().lower()
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not path:
            raise DataError(f"{source}, line {number}: expected '<sha256>  <relative path>', got {line!r}")
        entries[path.strip().removeprefix("./")] = digest
    return entries


def format_checksums(entries: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items()))


def manifest(name: str) -> dict[str, str]:
    """The checksums the package ships for data set ``name``."""
    info = dataset_info(name)
    path = info.manifest_path()
    if path is None:
        raise DataError(f"data set {name!r} has no checksum manifest: it is not a fetchable data set")
    return parse_checksums(path.read_text(), str(path))


def fetchable_datasets() -> list[str]:
    return [name for name in list_datasets() if dataset_info(name).manifest_path() is not None]


def _resolve_root(root: str | Path | None) -> Path:
    return Path(root).expanduser().resolve() if root is not None else config.data_root(required=False)


# ---------------------------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    root: Path
    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)  # (path, expected, actual)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched


def expected_checksums(root: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """What ``root`` should hold: its ``SHA256SUMS``, else the package manifests; only ``names`` if given."""
    sums = root / SUMS_FILE
    if sums.is_file():
        entries = parse_checksums(sums.read_text(), str(sums))
    else:
        entries = {}
        for name in fetchable_datasets():
            entries.update(manifest(name))
    if names is None:
        return entries
    selected = {}
    for name in names:
        folder = dataset_info(name).folder
        chosen = {p: d for p, d in entries.items() if folder and p.startswith(f"{folder}/")}
        if not chosen and dataset_info(name).manifest_path() is not None:
            chosen = manifest(name)  # the folder's SHA256SUMS does not cover it (yet): use what we ship
        if not chosen:
            raise DataError(
                f"no checksums are known for {name!r}: it is not a data set with a fixed file list"
            )
        selected.update(chosen)
    return selected


def verify(
    root: str | Path | None = None, names: Iterable[str] | None = None, progress: bool = True
) -> VerifyReport:
    """Hash every expected file under the data folder ``root`` and report missing and mismatching ones."""
    root = _resolve_root(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    report = VerifyReport(root)
    for path, expected in tqdm(
        sorted(expected_checksums(root, names).items()), desc="verifying", unit="file", disable=not progress
    ):
        target = root / path
        if not target.is_file():
            report.missing.append(path)
            continue
        actual = sha256_file(target)
        report.checked.append(path)
        if actual != expected:
            report.mismatched.append((path, expected, actual))
    return report


# ----------------------------------------------------------------------------------------------- fetch


@dataclass
class FetchReport:
    root: Path
    fetched: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)


def source_url(base_url: str, source: Source, remote_path: str) -> str:
    quoted = urllib.parse.quote(f"{source.prefix}{remote_path}")
    return f"{base_url.rstrip('/')}/{source.repository}/{source.commit}/{quoted}"


def _remote_path(info: DatasetInfo, path: str) -> str:
    return path.removeprefix(f"{info.folder}/")


def _fetch_one(name: str, url: str, final: Path, expected: str, retries: int, timeout: float) -> None:
    try:
        download.download(url, final, expected, retries=retries, timeout=timeout, progress=False)
    except download.Unreachable as error:
        raise FetchError(
            f"{error}. Download on a machine with internet (or copy an existing data folder) and use "
            f"`memprobe data fetch {name} --mirror DIR`"
        ) from None
    except download.ChecksumMismatch as error:
        lfs_hint = "; fetch with --base-url https://media.githubusercontent.com/media/"
        raise FetchError(f"{error}{lfs_hint if error.lfs_pointer else ''}") from None
    except download.Interrupted as error:
        raise FetchError(str(error)) from None
    except download.DownloadError as error:
        raise FetchError(f"{error}; check the source (or use --mirror)") from None


def _copy_one(mirror_file: Path, final: Path, expected: str) -> None:
    if not mirror_file.is_file():
        raise FetchError(f"the mirror has no {mirror_file}; is --mirror the data folder that holds it?")
    try:
        download.copy(mirror_file, final, expected)
    except download.DownloadError as error:
        raise FetchError(str(error)) from None


def _record_checksums(root: Path, entries: dict[str, str]) -> None:
    """Add ``entries`` to the data folder's SHA256SUMS so that ``verify`` covers what was fetched."""
    sums = root / SUMS_FILE
    current = parse_checksums(sums.read_text(), str(sums)) if sums.is_file() else {}
    if all(current.get(path) == digest for path, digest in entries.items()):
        return
    write_bytes(sums, format_checksums({**current, **entries}).encode())


def fetch(
    name: str,
    root: str | Path | None = None,
    mirror: str | Path | None = None,
    base_url: str | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> FetchReport:
    """Put data set ``name`` into the data folder ``root`` (default ``config.data_root()``).

    From ``mirror`` (a data folder with the same layout) if given, else from the public source under
    ``base_url`` (default ``$MEMPROBE_FETCH_BASE_URL`` or raw.githubusercontent.com). Files already
    present with the right checksum are kept; interrupted downloads are retried ``retries`` times and
    resume on the next run; every file is checksum-verified before it gets its final name.
    """
    info = dataset_info(name)
    entries = manifest(name)
    if mirror is None and info.fetch_blocker:
        raise FetchError(
            f"{name} cannot be fetched from its public source ({info.source}): {info.fetch_blocker}. "
            f"Copy it from a data folder that has it: `memprobe data fetch {name} --mirror DIR`"
        )
    root = _resolve_root(root)
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    mirror = Path(mirror).expanduser().resolve() if mirror is not None else None
    report = FetchReport(root)
    for path, expected in tqdm(
        sorted(entries.items()), desc=f"fetching {name} into {root}", unit="file", disable=not progress
    ):
        final = root / path
        if final.is_file() and sha256_file(final) == expected:
            report.already_present.append(path)
            continue
        if mirror is not None:
            _copy_one(mirror / path, final, expected)
        else:
            url = source_url(base_url, info.source, _remote_path(info, path))
            _fetch_one(name, url, final, expected, retries, timeout)
        report.fetched.append(path)
    _record_checksums(root, entries)
    return report
