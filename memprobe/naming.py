"""The one rule for turning identifiers (models, layers, benchmarks, tasks) into file and folder names."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_name(name: str) -> str:
    """``name`` with every run of other characters than letters, digits and ``._@+-`` replaced by ``_``
    and no leading dot: ``resmem:resnet152`` → ``resmem_resnet152``. Readable; two names may map to one."""
    return _UNSAFE.sub("_", name).lstrip(".") or "_"


def unique_safe_name(name: str) -> str:
    """:func:`safe_name`, plus a short hash of ``name`` whenever that changed it, so that distinct names
    never share a file (for folders that hold many names side by side, like the activation store)."""
    safe = safe_name(name)
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
