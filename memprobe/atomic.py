"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Every file memprobe writes that a rerun or another process may read goes through here: text, JSON,
arrays, NetCDF, figures and checkpoints through :func:`atomic_path` (write to a temporary name beside
the file, then rename), a folder of files that belong together (a store's fit) through
:func:`atomic_folder`, and files grown in place across runs (a resumable download, a store's partial
array) through :func:`publish` once they are complete. ``durable=True`` also fsyncs the file and its
folder, for records that must survive a power cut in the state they claim (the store's progress).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``: renamed onto ``path`` when the block succeeds, removed when it
    fails. Parent folders are created. Its name ends in ``.tmp``, so that one a kill leaves behind never
    matches a glob for the real files (write through a file handle where a writer would append a suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        publish(temporary, path, durable)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path`` (which must not exist): renamed onto ``path`` when the block
    succeeds, removed with its files when it fails. ``durable`` fsyncs every file in it first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield temporary
        if durable:
            for file in temporary.iterdir():
                _fsync(file, os.O_RDONLY)
        publish(temporary, path, durable)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def publish(partial: str | os.PathLike, path: str | os.PathLike, durable: bool = False) -> None:
    """Give a complete file its final name (``os.replace``, atomic within one file system)."""
    if durable:
        _fsync(partial, os.O_RDONLY)
    os.replace(partial, path)
    if durable:
        _fsync(Path(path).parent, os.O_RDONLY)


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    with atomic_path(path, durable) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike, text: str, durable: bool = False) -> None:
    write_bytes(path, text.encode(), durable)


def write_json(path: str | os.PathLike, payload, durable: bool = False, indent: int | None = None) -> None:
    write_text(path, json.dumps(payload, indent=indent), durable)


def _fsync(path: str | os.PathLike, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
