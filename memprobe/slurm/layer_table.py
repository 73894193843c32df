"""The layers of the models a plan covers, measured once and committed: ``slurm/layers.csv`` (one row per
layer: ``model, layer, shape, units, channels``) and ``slurm/models.csv`` (one row per model:
``model, input_size, layers, params_m, gflops, peak_rss_gb``).

Measuring a model builds it with random weights (nothing is downloaded) and runs the one forward pass of
``memprobe.features.list_layers`` (a batch of 2 at the model's own preprocessing size), so the layers
are exactly those a sweep hooks (every module call with >= 24 units). Over that same pass torch's
``FlopCounterMode`` counts the floating-point operations per image (convolutions and matrix products:
the ops it knows), and the process's peak resident memory is read at the end. Each model is measured
in a fresh process, so one model's memory is not another's and a big model's is given back at once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from memprobe.atomic import write_text
from memprobe.slurm.config import SlurmError

LAYERS_FILE, MODELS_FILE = "layers.csv", "models.csv"
LAYER_COLUMNS = ["model", "layer", "shape", "units", "channels"]
MODEL_COLUMNS = ["model", "input_size", "layers", "params_m", "gflops", "peak_rss_gb"]


def format_shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(size) for size in str(text).split("×"))


@dataclass
class LayerTable:
    models: pd.DataFrame  # MODEL_COLUMNS, indexed by model
    layers: pd.DataFrame  # LAYER_COLUMNS, in each model's call order

    @classmethod
    def empty(cls) -> LayerTable:
        return cls(pd.DataFrame(columns=MODEL_COLUMNS).set_index("model"),
                   pd.DataFrame(columns=LAYER_COLUMNS))

    @classmethod
    def load(cls, folder: Path) -> LayerTable:
        models, layers = folder / MODELS_FILE, folder / LAYERS_FILE
        if not models.is_file() or not layers.is_file():
            return cls.empty()
        return cls(pd.read_csv(models).set_index("model"), pd.read_csv(layers))

    def save(self, folder: Path) -> None:
        """Layers first: a model counts as measured once its row is in models.csv."""
        write_text(folder / LAYERS_FILE, self.layers.to_csv(index=False))
        write_text(folder / MODELS_FILE, self.models.reset_index().to_csv(index=False))

    def missing(self, identifiers: Iterable[str]) -> list[str]:
        return [model for model in identifiers if model not in self.models.index]

    def with_model(self, model_row: dict, layer_rows: list[dict]) -> LayerTable:
        """This table with one model's rows (replacing any it had)."""
        model = model_row["model"]
        models = self.models.drop(index=model, errors="ignore")
        layers = self.layers[self.layers["model"] != model]
        new_model = pd.DataFrame([model_row], columns=MODEL_COLUMNS).set_index("model")
        new_layers = pd.DataFrame(layer_rows, columns=LAYER_COLUMNS)
        return LayerTable(pd.concat([models, new_model]) if len(models) else new_model,
                          pd.concat([layers, new_layers], ignore_index=True) if len(layers) else new_layers)

    def model_layers(self, model: str) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of the model's layers, in call order."""
        rows = self.layers[self.layers["model"] == model]
        return [(name, parse_shape(shape)) for name, shape in zip(rows["layer"], rows["shape"], strict=True)]


def measure_model(identifier: str) -> tuple[dict, list[dict]]:
    """One model's row of models.csv and its rows of layers.csv (see the module docstring)."""
    import resource

    from torch.utils.flop_counter import FlopCounterMode

    from memprobe.features import list_layers
    from memprobe.features.layers import DUMMY_BATCH
    from memprobe.zoo import load_model

    model = load_model(identifier, weights="random")
    with FlopCounterMode(display=False) as counter:
        layers = list_layers(model)
    layer_rows = [{"model": identifier, "layer": layer.name, "shape": format_shape(layer.shape),
                   "units": layer.units, "channels": layer.shape[0]} for layer in layers]
    model_row = {
        "model": identifier,
        "input_size": format_shape(model.preprocessing.crop),
        "layers": len(layer_rows),
        "params_m": round(sum(p.numel() for p in model.network.parameters()) / 1e6, 3),
        "gflops": round(counter.get_total_flops() / DUMMY_BATCH / 1e9, 4),
        # ru_maxrss is in KiB on Linux
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3),
    }
    return model_row, layer_rows


def _fresh_processes() -> multiprocessing.context.BaseContext:
    """Processes forked from a server that has imported the zoo but run nothing: each starts in a second
    (a spawned one spends most of a minute importing), and none inherits a parent's threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "memprobe.features", "memprobe.zoo"])
    return context


def measure_missing(identifiers: Iterable[str], folder: Path,
                    report: Callable[[str], None] = print) -> LayerTable:
    """Measure the models the table in ``folder`` lacks, one fresh process each, saving after each model,
    so an interrupted run keeps what it measured. Models that fail are named in one error at the end."""
    table = LayerTable.load(folder)
    todo = table.missing(dict.fromkeys(identifiers))
    failed = []
    context = _fresh_processes()
    for index, model in enumerate(todo, 1):
        with ProcessPoolExecutor(1, mp_context=context) as process:
            try:
                model_row, layer_rows = process.submit(measure_model, model).result()
            except Exception as error:  # one model's failure must not lose the others' measurements
                failed.append(f"{model}: {type(error).__name__}: {error}")
                report(f"[{index}/{len(todo)}] {model}: failed ({type(error).__name__}: {error})")
                continue
        table = table.with_model(model_row, layer_rows)
        table.save(folder)
        report(f"[{index}/{len(todo)}] {model}: {model_row['layers']} layers at {model_row['input_size']}, "
               f"{model_row['gflops']:.2f} GFLOPs/image, peak {model_row['peak_rss_gb']:.2f} GB")
    if failed:
        raise SlurmError(f"{len(failed)} model(s) could not be measured (the others were saved to "
                         f"{folder}):\n  " + "\n  ".join(failed))
    return table
