"""How a run names its reducer: ``none``, ``pool``, ``srp[:D]``, ``sketch[:D]``, ``pca[:K]``, or the mapping
form of run configs (``{name: srp, dim: 4096}``). Parsed here and only here; light (no torch), so that
configs and plans can read it without building anything."""

from __future__ import annotations

from dataclasses import dataclass

from memprobe.errors import MemprobeError

# The keyword each sized reducer takes its size as, and its size when none is given.
SIZE_KEYWORDS = {"srp": "dim", "sketch": "dim", "pca": "n_components"}
DEFAULT_SIZES = {"srp": 4096, "sketch": 4096, "pca": 1000}
NAMES = ("none", "pool", *SIZE_KEYWORDS)


class ReducerSpecError(MemprobeError):
    pass


@dataclass(frozen=True)
class ReducerSpec:
    name: str
    size: int | None = None

    @classmethod
    def parse(cls, value: str | dict | ReducerSpec) -> ReducerSpec:
        if isinstance(value, ReducerSpec):
            return value
        if isinstance(value, dict):
            return cls._from_mapping(value)
        name, _, size = str(value).partition(":")
        if name not in NAMES or (size and (name not in SIZE_KEYWORDS or not size.isdigit())):
            raise ReducerSpecError(
                f"unknown reducer {value!r}; choose none, pool, srp[:D], sketch[:D] or pca[:K], "
                "e.g. sketch:4096"
            )
        return cls(name, int(size) if size else None)

    @classmethod
    def _from_mapping(cls, value: dict) -> ReducerSpec:
        name = value.get("name")
        size_keyword = SIZE_KEYWORDS.get(name)
        extra = set(value) - {"name", size_keyword}
        if name not in NAMES or extra:
            raise ReducerSpecError(
                f"reducer {value!r}: give a name (none, pool, srp, sketch, pca) and, for srp/sketch, 'dim' "
                "or, for pca, 'n_components'"
            )
        return cls.parse(f"{name}:{value[size_keyword]}" if size_keyword in value else name)

    def __str__(self) -> str:
        return self.name if self.size is None else f"{self.name}:{self.size}"

    @property
    def learns(self) -> bool:
        """Fitted to reference activations of each layer (pca), so a model's stimulus sets share its fits."""
        return self.name == "pca"

    @property
    def dims(self) -> int | None:
        """The most features a layer keeps (narrower layers pass through); None: the layer's own width."""
        if self.name not in SIZE_KEYWORDS:
            return None
        return self.size if self.size is not None else DEFAULT_SIZES[self.name]

    def options(self) -> dict:
        """Keyword arguments of the reducer's constructor."""
        return {} if self.size is None else {SIZE_KEYWORDS[self.name]: self.size}
