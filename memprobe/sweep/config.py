"""What a sweep computes: the configuration every result in one run folder shares."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

import torch

from memprobe.benchmarks import PLSOptions
from memprobe.errors import MemprobeError

DEFAULT_BENCHMARKS = (
    "lnsim.memorability-pls",
    "cowley_v4.V4-pls",
    "rsa92.IT-monkey-rsa",
    "rsa92.IT-human-rsa",
)

# float32 PLS: scores equal to ~5 decimals in ~2/3 of the time (results/benchmarks/neural_speed.json)
PLS_DTYPES = {"float64": torch.float64, "float32": torch.float32}


_SIZE_UNITS = {
    "": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12
}


def parse_size(text: str | int | float) -> int:
    """Bytes from ``50GB``, ``2.5G``, ``500MB`` or a plain number of bytes (decimal units, like disks)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise MemprobeError(f"size {text!r}: give a number with an optional unit, e.g. 50GB, 2.5G or 500MB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class SweepConfig:
    """Everything that changes a sweep's numbers (the result files of one output folder must share it)."""

    model: str
    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS
    weights: str = "pretrained"
    seed: int = 0
    layers: str | tuple[str, ...] | None = None
    max_module_depth: int | None = None
    distinct_layers: bool = False
    reducer: str = "sketch"
    subset: int | None = None
    subset_seed: int = 0
    min_units: int = 24
    pls_dtype: str = "float64"

    def digest(self) -> str:
        fields = asdict(self)
        # at their defaults, fields added later leave the digest of older output folders as it was
        if fields["pls_dtype"] == "float64":
            del fields["pls_dtype"]
        if not fields["distinct_layers"]:
            del fields["distinct_layers"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def benchmark_options(self, identifier: str, pls_device: str = "cpu") -> dict:
        """``pls_device`` is where the PLS fits run: not part of the configuration (same numbers)."""
        options = {"subset": self.subset, "subset_seed": self.subset_seed}
        if identifier.endswith("-pls"):
            if self.pls_dtype not in PLS_DTYPES:
                raise MemprobeError(f"pls_dtype {self.pls_dtype!r}: choose one of {', '.join(PLS_DTYPES)}")
            options["pls"] = PLSOptions(device=pls_device, dtype=PLS_DTYPES[self.pls_dtype])
        return options
