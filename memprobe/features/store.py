"""On-disk activation store: per-layer (n × d) float32 arrays, written batch by batch, resumable.

Layout: ``<root>/<model>/<digest of StoreKey>/`` holds

- ``key.json`` (the key) and ``stimuli.json`` (the stimulus ids, in row order);
- ``<layer>.partial.npy``: a preallocated ``.npy`` file whose rows are written in place per batch
  (plain ``pwrite``, no memory map, so finished rows never stay in this process's memory);
- ``progress.json``: the batch size and, per layer, which batches are on disk. It is rewritten
  atomically (``memprobe.atomic``, fsync'ed) only AFTER the batches' rows were written and fsync'ed,
  so after a kill at any point every batch it lists is complete and everything else is redone. It is
  committed at most every ``commit_interval_s`` seconds (fsync'ing hundreds of layer files per batch
  would cost more than the forward pass) and whenever the writer exits, also on an error: a SIGKILL
  loses at most that interval of work;
- ``<layer>.npy``: the finished array, renamed from the partial file once all its batches are done;
- ``fits/<layer>.<fit name>/``: what a reducer fitted on that layer's activations (PCA: ``.npy`` files,
  memory-mapped when read), published as a whole (``atomic_folder``) under the lock of ``fits/``.

The store keeps the batch size of the first run that wrote a directory, so resumed runs line up with
the partial files. Stimuli that failed to decode in a run that skips bad images are NaN rows, listed in
``progress.json``; reading drops them and lists them in ``attrs['dropped_stimuli']``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from memprobe import config
from memprobe.atomic import atomic_folder, publish, write_json
from memprobe.errors import DataError
from memprobe.naming import unique_safe_name

FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoreKey:
    """Everything that changes a layer's stored numbers, except the layer itself."""

    model: str
    weights: str
    preprocessing: str
    stimuli: str
    stimuli_fingerprint: str
    reducer: str
    version: int = FORMAT_VERSION

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """The directory's exclusive lock (one writer at a time, across processes)."""
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _progress(directory: Path) -> dict:
    path = directory / "progress.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class ActivationStore:
    def __init__(self, root: str | os.PathLike | None = None, commit_interval_s: float = 30.0):
        self.root = Path(root) if root is not None else config.cache_root() / "activations"
        self.commit_interval_s = commit_interval_s

    def directory(self, key: StoreKey) -> Path:
        return self.root / unique_safe_name(key.model) / key.digest()

    def layer_path(self, key: StoreKey, layer: str, partial: bool = False) -> Path:
        suffix = ".partial.npy" if partial else ".npy"
        return self.directory(key) / f"{unique_safe_name(layer)}{suffix}"

    def has(self, key: StoreKey, layer: str) -> bool:
        return self.layer_path(key, layer).is_file()

    def load(self, key: StoreKey, layer: str) -> xr.DataArray:
        """The finished layer as ``presentation`` × ``neuroid`` (memory-mapped, read-only)."""
        path = self.layer_path(key, layer)
        if not path.is_file():
            raise DataError(
                f"no stored activations for layer {layer!r} of {key.model} on {key.stimuli} "
                f"({path} is missing); run the extraction first"
            )
        directory = self.directory(key)
        ids = json.loads((directory / "stimuli.json").read_text())
        values = np.load(path, mmap_mode="r")
        bad = self.bad_stimuli(key)
        keep = np.array([sid not in bad for sid in ids])
        if not keep.all():
            values = values[keep]
            ids = [sid for sid, kept in zip(ids, keep, strict=True) if kept]
        return xr.DataArray(
            values,
            dims=("presentation", "neuroid"),
            coords={
                "stimulus_id": ("presentation", ids),
                "neuroid_id": ("neuroid", np.arange(values.shape[1])),
            },
            name=layer,
            attrs={**asdict(key), "layer": layer, "dropped_stimuli": sorted(bad)},
        )

    def bad_stimuli(self, key: StoreKey) -> dict[str, str]:
        """Stimuli that failed to decode in a run that skipped bad images: id → error (their rows are NaN)."""
        return _progress(self.directory(key)).get("bad", {})

    def delete(self, key: StoreKey, layers: list[str]) -> None:
        """Free the disk these layers' activations take (finished or partial); a later run recomputes them."""
        directory = self.directory(key)
        if not directory.is_dir():
            return
        with _locked(directory):
            progress = _progress(directory)
            for layer in layers:
                for partial in (False, True):
                    self.layer_path(key, layer, partial).unlink(missing_ok=True)
                progress.get("layers", {}).pop(layer, None)
            if progress:
                write_json(directory / "progress.json", progress, durable=True)

    def size(self, key: StoreKey) -> int:
        """Bytes on disk of the activation arrays under ``key`` (what a disk budget counts)."""
        directory = self.directory(key)
        return sum(path.stat().st_size for path in directory.glob("*.npy")) if directory.is_dir() else 0

    def writer(self, key: StoreKey, stimulus_ids: list[str], batch_size: int, dims: dict[str, int]):
        """A :class:`StoreWriter` (a context manager holding the directory's lock) for these layers."""
        return StoreWriter(self, key, stimulus_ids, batch_size, dims)

    def fit_path(self, key: StoreKey, layer: str, fit_name: str) -> Path:
        return self.directory(key) / "fits" / f"{unique_safe_name(layer)}.{fit_name}"

    def has_fit(self, key: StoreKey, layer: str, fit_name: str) -> bool:
        return self.fit_path(key, layer, fit_name).is_dir()

    def load_fit(self, key: StoreKey, layer: str, fit_name: str) -> dict[str, np.ndarray] | None:
        """The arrays a reducer fitted on these stored activations of ``layer`` (e.g. PCA components), if
        any: file stem → memory map (copy-on-write: writable, as torch wants, but writes never reach the
        file)."""
        folder = self.fit_path(key, layer, fit_name)
        if not folder.is_dir():
            return None
        return {path.stem: np.load(path, mmap_mode="c") for path in sorted(folder.glob("*.npy"))}

    @contextmanager
    def fitting(self, key: StoreKey) -> Iterator[None]:
        """The lock of ``key``'s fits (its own, not the activations' one, which the extraction of what is
        fitted takes): one process fits a layer while others wait, then find the fit done."""
        fits = self.directory(key) / "fits"
        fits.mkdir(parents=True, exist_ok=True)
        with _locked(fits):
            yield

    def delete_fits(self, key: StoreKey, layers: list[str], fit_name: str) -> None:
        """Free the disk of these layers' fits; a later extraction fits them again."""
        if not (self.directory(key) / "fits").is_dir():
            return
        with self.fitting(key):
            for layer in layers:
                shutil.rmtree(self.fit_path(key, layer, fit_name), ignore_errors=True)

    def fit_writer(self, key: StoreKey, layer: str, fit_name: str):
        """A context manager giving a new folder to write a fit's ``.npy`` files into; it becomes
        :meth:`fit_path` (fsync'ed, renamed) when the block succeeds, and is removed when it fails."""
        return atomic_folder(self.fit_path(key, layer, fit_name), durable=True)


class StoreWriter:
    """Writes batches of rows for a set of layers into one store directory; resumes partial work."""

    def __init__(self, store: ActivationStore, key: StoreKey, stimulus_ids, batch_size: int, dims):
        self.store = store
        self.key = key
        self.directory = store.directory(key)
        self.ids = list(stimulus_ids)
        self.requested_batch_size = batch_size
        self.dims = {layer: dim for layer, dim in dims.items() if not store.has(key, layer)}
        self._lock = None

    def __enter__(self) -> StoreWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = ExitStack()  # one writer per directory (e.g. concurrent SLURM jobs)
        self._lock.enter_context(_locked(self.directory))
        # Another writer may have finished layers while we waited for the lock.
        self.dims = {layer: dim for layer, dim in self.dims.items() if not self.store.has(self.key, layer)}
        self._open()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.commit()  # batches fully written before an error are kept
        finally:
            self._close()

    def _close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}
        self._lock.close()

    def _open(self) -> None:
        ids_path = self.directory / "stimuli.json"
        if ids_path.is_file():
            if json.loads(ids_path.read_text()) != self.ids:
                raise DataError(f"{ids_path} lists other stimulus ids than this run; delete {self.directory}")
        else:
            write_json(self.directory / "key.json", asdict(self.key), durable=True)
            write_json(ids_path, self.ids, durable=True)
        self.progress = _progress(self.directory) or {"batch_size": self.requested_batch_size}
        self.progress.setdefault("layers", {})
        self.progress.setdefault("bad", {})
        self.batch_size = self.progress["batch_size"]
        self.n_batches = -(-len(self.ids) // self.batch_size)
        self._fds: dict[str, int] = {}
        self._offsets: dict[str, int] = {}
        self._written: dict[str, list[int]] = {layer: [] for layer in self.dims}
        self._written_bad: dict[str, str] = {}
        self._last_commit = time.monotonic()
        for layer, dim in self.dims.items():
            entry = self.progress["layers"].get(layer)
            path = self.store.layer_path(self.key, layer, partial=True)
            if entry is None or entry["dim"] != dim or not path.is_file():
                entry = self.progress["layers"][layer] = {"dim": dim, "done": []}
                shape = (len(self.ids), dim)
                array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
                del array  # only the header and the (sparse) file size were written
            self._fds[layer] = os.open(path, os.O_WRONLY)
            with open(path, "rb") as handle:
                np.lib.format.read_magic(handle)
                np.lib.format.read_array_header_1_0(handle)
                self._offsets[layer] = handle.tell()

    def batch_rows(self, batch: int) -> slice:
        return slice(batch * self.batch_size, min((batch + 1) * self.batch_size, len(self.ids)))

    def layers_needing(self, batch: int) -> list[str]:
        return [
            layer
            for layer in self.dims
            if batch not in self.progress["layers"][layer]["done"] and batch not in self._written[layer]
        ]

    def pending_batches(self) -> dict[int, set[str]]:
        """Each unfinished batch (in order) → the layers it still needs."""
        needs = {batch: set(self.layers_needing(batch)) for batch in range(self.n_batches)}
        return {batch: layers for batch, layers in needs.items() if layers}

    def write_batch(self, batch: int, rows: dict[str, np.ndarray], bad: dict[str, str] | None = None) -> None:
        """Write a batch's rows for the layers that need it; they are recorded as done at the next commit."""
        rows_slice = self.batch_rows(batch)
        needing = self.layers_needing(batch)
        for layer in needing:
            values = np.ascontiguousarray(rows[layer], dtype=np.float32)
            if values.shape != (rows_slice.stop - rows_slice.start, self.dims[layer]):
                raise ValueError(f"layer {layer}: batch {batch} has shape {values.shape}")
            offset = self._offsets[layer] + rows_slice.start * self.dims[layer] * 4
            os.pwrite(self._fds[layer], values, offset)  # the array's own buffer: no copy
        for layer in needing:
            self._written[layer].append(batch)
        self._written_bad.update(bad or {})
        if time.monotonic() - self._last_commit >= self.store.commit_interval_s:
            self.commit()

    def commit(self) -> None:
        """fsync the rows written since the last commit, then record their batches in ``progress.json``."""
        written = {layer: batches for layer, batches in self._written.items() if batches}
        if not written:
            return
        for layer in written:
            os.fsync(self._fds[layer])
        for layer, batches in written.items():
            self.progress["layers"][layer]["done"].extend(batches)
            self._written[layer] = []
        self.progress["bad"].update(self._written_bad)
        self._written_bad = {}
        write_json(self.directory / "progress.json", self.progress, durable=True)
        self._last_commit = time.monotonic()

    def finalize(self) -> None:
        """Rename every layer whose batches are all done to its final name."""
        self.commit()
        for layer in list(self.dims):
            if len(set(self.progress["layers"][layer]["done"])) == self.n_batches:
                partial = self.store.layer_path(self.key, layer, partial=True)
                publish(partial, self.store.layer_path(self.key, layer), durable=True)
