"""Resumable, verified single-file downloads: how data sets and pretrained weights reach this machine.

The bytes go to ``<file>.part`` beside the target. A transfer that breaks off keeps it, and the next
attempt resumes it with an HTTP Range request (a server that ignores Range sends the whole file again, and
the part file starts over). The finished file is checked against the expected sha256, or the prefix of it
that torch hub file names carry, before :func:`memprobe.atomic.publish` gives it its final name: a file
under its final name is always complete and verified, and one that fails the check is deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from memprobe.atomic import publish
from memprobe.errors import MemprobeError

CHUNK = 1 << 20


class DownloadError(MemprobeError):
    """A download or copy that did not produce its file; the message names the URL and the file."""


class Unreachable(DownloadError):
    """No connection to the server: this machine is offline, or the server is down."""


class Interrupted(DownloadError):
    """The transfer kept breaking off; its part file is kept for the next attempt to resume."""


class ChecksumMismatch(DownloadError):
    """The finished file was not the expected one and has been deleted."""

    def __init__(self, message: str, lfs_pointer: bool = False):
        super().__init__(message)
        self.lfs_pointer = lfs_pointer  # the server sent a Git LFS pointer file instead of the content


class _Cut(Exception):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def download(
    url: str,
    path: Path,
    sha256: str | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``path``; ``sha256``: the expected digest or a prefix of it (None: unchecked).
    A transfer that breaks off is resumed up to ``retries`` times before :class:`Interrupted`."""
    part = part_path(path)
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress)
            break
        except _Cut as error:
            if attempt == retries:
                size = part.stat().st_size if part.exists() else 0
                raise Interrupted(
                    f"download of {url} was interrupted ({error}) after {size} bytes; the partial file "
                    f"{part} is kept and rerunning the same command resumes it"
                ) from None
    _publish_verified(part, path, sha256, url)
    return path


def copy(source: Path, path: Path, sha256: str | None = None) -> Path:
    """Copy a local file (a mirror's) to ``path``, verified and published like a download."""
    part = part_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, part)
    except OSError as error:
        raise DownloadError(f"cannot copy {source} to {part}: {error}") from None
    _publish_verified(part, path, sha256, str(source))
    return path


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (HTTP Range from its current size); _Cut if cut short."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            return  # the part file already holds everything; the checksum decides
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise Unreachable(
            f"cannot reach {url} ({reason}); this machine may be offline or the server down"
        ) from None
    with response:
        resumed = have if response.status == 206 else 0
        promised = response.headers.get("Content-Length")
        received = 0
        bar = tqdm(
            total=resumed + int(promised) if promised is not None else None,
            initial=resumed,
            desc=part.name.removesuffix(".part"),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not progress,
        )
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            with bar, open(part, "ab" if resumed else "wb") as out:
                while chunk := _read(response):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except OSError as error:  # this side: no permission, disk full
            raise DownloadError(f"cannot write {part}: {error}") from None
        # http.client returns b"" when the server hangs up early instead of raising, so count.
        if promised is not None and received < int(promised):
            raise _Cut(f"connection closed after {received} of {promised} bytes")


def _read(response) -> bytes:
    try:
        return response.read(CHUNK)
    except (http.client.IncompleteRead, OSError) as error:  # the connection broke (reset, timed out)
        raise _Cut(str(error) or type(error).__name__) from error


def _publish_verified(part: Path, path: Path, sha256: str | None, origin: str) -> None:
    if sha256 is not None:
        actual = sha256_file(part)
        if not actual.startswith(sha256):
            with open(part, "rb") as handle:
                lfs_pointer = handle.read(64).startswith(b"version https://git-lfs")
            part.unlink()
            if lfs_pointer:
                message = f"{path}: {origin} served a Git LFS pointer instead of the file (deleted)"
                raise ChecksumMismatch(message, lfs_pointer=True)
            expected = sha256 if len(sha256) == 64 else f"{sha256}…"
            raise ChecksumMismatch(
                f"{path}: checksum mismatch for {origin} (expected sha256 {expected}, got {actual}); the "
                "file was deleted. The source changed or the transfer was corrupted: rerun, or check the "
                "source/mirror"
            )
    publish(part, path)
