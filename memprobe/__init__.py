"""memprobe: layer-wise memorability and brain-similarity probing of ImageNet CNNs.

Front doors: ``list_models`` / ``load_model`` / ``model_set`` (the zoo), ``list_datasets`` / ``load_dataset``
(the data), ``list_benchmarks`` / ``load_benchmark`` (the benchmarks).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "list_models": "memprobe.zoo",
    "load_model": "memprobe.zoo",
    "model_set": "memprobe.zoo",
    "list_datasets": "memprobe.data",
    "load_dataset": "memprobe.data",
    "list_benchmarks": "memprobe.benchmarks",
    "load_benchmark": "memprobe.benchmarks",
}


def __getattr__(name: str):
    # Lazy, so that `import memprobe` stays light (no torch until a model is asked for).
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memprobe' has no attribute {name!r}")
