"""Benchmarks addressed by identifier: ``list_benchmarks()``, ``load_benchmark(identifier)``.

Each benchmark has ``.identifier``, ``.stimulus_sets()`` and ``.score(features) → Score`` where
``features`` maps a stimulus-set name to a presentation × neuroid ``xr.DataArray`` with a
``stimulus_id`` coordinate (rows in any order).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Sequence

from memprobe.benchmarks.base import Benchmark, PLSOptions, Score
from memprobe.errors import BenchmarkError

# identifier → (module, factory, arguments)
_REGISTRY = {
    "lnsim.memorability-pls": ("memorability", "LNSIMMemorability", {}),
    "lamem.memorability-pls": ("memorability", "LaMemMemorability", {}),
    "cowley_v4.V4-pls": ("neural", "CowleyV4PLS", {}),
    "MajajHong2015public.V4-pls": ("neural", "BrainScorePLS", {"assembly": "MajajHong2015public.V4"}),
    "MajajHong2015public.IT-pls": ("neural", "BrainScorePLS", {"assembly": "MajajHong2015public.IT"}),
    "FreemanZiemba2013public.V1-pls": ("neural", "BrainScorePLS", {"assembly": "FreemanZiemba2013public.V1"}),
    "FreemanZiemba2013public.V2-pls": ("neural", "BrainScorePLS", {"assembly": "FreemanZiemba2013public.V2"}),
    "rsa92.IT-monkey-rsa": ("rsa", "RSA92", {"rdm": "monkey_IT"}),
    "rsa92.IT-human-rsa": ("rsa", "RSA92", {"rdm": "human_IT"}),
}


def list_benchmarks(pattern: str = "*") -> list[str]:
    """Benchmark identifiers matching a shell-style pattern, e.g. ``'*-pls'``."""
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


def check_benchmarks(
    identifiers: Sequence[str], known: Sequence[str] | None = None, where: str = ""
) -> list[str]:
    """``identifiers`` as a list, or a BenchmarkError naming the unknown ones and listing the ``known``
    (default: this registry's; a run config's custom runner may bring its own). ``where`` prefixes the
    message (e.g. the config file and stimulus set that named them)."""
    known = list_benchmarks() if known is None else list(known)
    unknown = [b for b in identifiers if b not in known]
    prefix = f"{where}: " if where else ""
    if unknown:
        raise BenchmarkError(f"{prefix}unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not identifiers:
        raise BenchmarkError(f"{prefix}no benchmark given; known: {', '.join(known)}")
    return list(identifiers)


def load_benchmark(identifier: str, **options):
    """The benchmark ``identifier``; ``options`` go to its constructor (e.g. ``pls=PLSOptions(...)``,
    ``root=`` a data folder, ``dataset=`` already loaded data)."""
    if identifier not in _REGISTRY:
        raise BenchmarkError(f"unknown benchmark {identifier!r}; known: {', '.join(_REGISTRY)}")
    module, factory, arguments = _REGISTRY[identifier]
    cls = getattr(importlib.import_module(f"memprobe.benchmarks.{module}"), factory)
    return cls(identifier=identifier, **arguments, **options)


__all__ = ["Benchmark", "PLSOptions", "Score", "check_benchmarks", "list_benchmarks", "load_benchmark"]
