"""A sweep's output folder, ``OUT/<model>/``:

- ``sweep.json``: what was run (the configuration that every stored result must match);
- ``layers.csv``: the model's layer table;
- ``cells/<benchmark>/<layer>.json``: one scored cell of the layer × benchmark grid, written atomically as
  soon as it exists, so a killed sweep resumes at cell granularity (only for resuming; not committed);
- ``details/<benchmark>/<layer>.nc``: a cell's per-neuroid (or per-split) labelled results, where the
  benchmark has them (only for resuming), gathered at the end into ``details/<benchmark>.nc`` (layer × the
  benchmark's dims, float32, compressed: the file to keep or share);
- ``scores.csv`` (one row per model × layer × benchmark, the analysis input; see docs/architecture.md) and
  ``splits.csv`` (one row per model × layer × benchmark × split), assembled from the cells at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import memprobe
from memprobe.atomic import atomic_path, write_json, write_text
from memprobe.errors import MemprobeError
from memprobe.naming import safe_name


class RunFolder:
    def __init__(self, out: str | os.PathLike, model: str):
        self.path = Path(out) / safe_name(model)

    def claim(self, config) -> None:
        """Record the configuration, or check that the folder holds results of this very configuration."""
        _check_writable(self.path)
        manifest = self.path / "sweep.json"
        if manifest.exists():
            stored = json.loads(manifest.read_text())
            if stored.get("config_digest") != config.digest():
                raise MemprobeError(
                    f"{self.path} holds a sweep with another configuration ({stored.get('config')}); "
                    "use another --out, or delete that folder to start over"
                )
            return
        write_json(manifest, {"config": asdict(config), "config_digest": config.digest(),
                              "memprobe": memprobe.__version__}, durable=True)

    def write_layers(self, table: pd.DataFrame) -> None:
        write_text(self.path / "layers.csv", table.to_csv(index=False))

    def cell_path(self, benchmark: str, layer: str) -> Path:
        return self.path / "cells" / benchmark / f"{safe_name(layer)}.json"

    def has_cell(self, benchmark: str, layer: str) -> bool:
        return self.cell_path(benchmark, layer).exists()

    def write_cell(self, benchmark: str, layer: str, record: dict, details: xr.DataArray | None) -> None:
        """A scored cell (and its details), the details first: a cell on disk is complete."""
        if details is not None:
            with atomic_path(self._details_path(benchmark, layer)) as temporary:
                details.to_netcdf(temporary, engine="h5netcdf")
        write_json(self.cell_path(benchmark, layer), record, durable=True)

    def _details_path(self, benchmark: str, layer: str) -> Path:
        return self.path / "details" / benchmark / f"{safe_name(layer)}.nc"

    def collect(self, benchmarks: Sequence[str], layers: Sequence[str]) -> pd.DataFrame:
        """Assemble ``scores.csv``, ``splits.csv`` and the details files from the cells; all must exist."""
        records, splits, missing = [], [], []
        for layer in layers:
            for benchmark in benchmarks:
                path = self.cell_path(benchmark, layer)
                if not path.exists():
                    missing.append(f"{benchmark} × {layer}")
                    continue
                record = json.loads(path.read_text())
                for split in record.pop("splits"):
                    splits.append({"model": record["model"], "layer": layer, "benchmark": benchmark, **split})
                records.append(record)
        if missing:
            raise MemprobeError(f"{len(missing)} cell(s) missing in {self.path}: {', '.join(missing[:5])}")
        scores = pd.DataFrame(records)
        for benchmark in benchmarks:
            self._gather_details(benchmark, layers)
        write_text(self.path / "scores.csv", scores.to_csv(index=False))
        write_text(self.path / "splits.csv", pd.DataFrame(splits).to_csv(index=False))
        return scores

    def details(self, benchmark: str) -> xr.DataArray | None:
        """The gathered per-layer details of ``benchmark`` (layer × its dims), once collected."""
        path = self.path / "details" / f"{benchmark}.nc"
        if not path.exists():
            return None
        with xr.open_dataarray(path, engine="h5netcdf") as gathered:
            return gathered.load()

    def _gather_details(self, benchmark: str, layers: Sequence[str]) -> None:
        paths = {layer: self._details_path(benchmark, layer) for layer in layers}
        found = [layer for layer, path in paths.items() if path.exists()]
        if not found:
            return
        parts = []
        for layer in found:
            with xr.open_dataarray(paths[layer], engine="h5netcdf") as part:
                parts.append(part.load().astype(np.float32))
        gathered = xr.concat(parts, dim=pd.Index(found, name="layer"))
        gathered.name = "score"
        with atomic_path(self.path / "details" / f"{benchmark}.nc") as temporary:
            encoding = {"score": {"zlib": True, "complevel": 4}}
            gathered.to_netcdf(temporary, engine="h5netcdf", encoding=encoding)


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise MemprobeError(
            f"output directory {path} is not writable ({error.strerror}); choose another --out"
        ) from error
