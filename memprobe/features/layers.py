"""A model's layers: every module call of one forward pass, named, shaped and filtered.

A *layer* is one call of one module (leaf or container) during the forward pass. It is named by its
module path as ``named_modules()`` spells it; a module called more than once (torchvision Bottleneck's
shared ``relu``, recurrent steps) gets ``@k`` (k ≥ 1) per call, a module called once gets no suffix.
The root module is not a layer: its output is the network's output, which its last module call
already gives for the usual architectures.

Output rule: a tensor output is taken as is; from a tuple/list the first tensor (depth first), from a
dict the ``out`` entry if present, else the first tensor value. The table says which (``taken``).
Outputs without any tensor, or whose first dimension is not the batch, are skipped with a reason;
layers with fewer than ``min_units`` units per image (default 24, the paper's rule) are skipped and
counted, and so are, on request (``distinct``), layers whose output repeats an earlier layer's values.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from PIL import Image

from memprobe import config
from memprobe.errors import ModelError

DUMMY_BATCH = 2


@dataclass(frozen=True)
class Layer:
    name: str
    module: str
    call_index: int
    shape: tuple[int, ...]
    units: int
    relative_depth: float
    taken: str


@dataclass
class LayerList:
    """The layers of a model (in call order) and the calls that were skipped, with reasons."""

    layers: list[Layer]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    min_units: int = 24

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "name": layer.name,
                    "call_index": layer.call_index,
                    "shape": "×".join(map(str, layer.shape)),
                    "units": layer.units,
                    "relative_depth": layer.relative_depth,
                    "taken": layer.taken,
                }
                for layer in self.layers
            ]
        )

    def select(self, layers: None | str | list[str]) -> list[Layer]:
        """All layers (None), those matching a glob pattern (str), or the named ones (list), in call order."""
        catalogue = self.by_name()
        if layers is None:
            return list(self.layers)
        if isinstance(layers, str):
            chosen = [layer for layer in self.layers if fnmatch.fnmatchcase(layer.name, layers)]
            if not chosen:
                raise ModelError(f"no layer matches {layers!r}; `memprobe layers MODEL` lists the names")
            return chosen
        unknown = [name for name in layers if name not in catalogue]
        if unknown:
            name = unknown[0]
            skipped = dict(self.skipped)
            if name in skipped:
                raise ModelError(f"layer {name!r} was skipped: {skipped[name]}")
            close = difflib.get_close_matches(name, list(catalogue), n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ModelError(
                f"unknown layer {name!r}{hint}. `memprobe layers MODEL` lists the layer names"
                + (f" ({len(unknown)} unknown in all)" if len(unknown) > 1 else "")
            )
        wanted = set(layers)
        return [layer for layer in self.layers if layer.name in wanted]


def take_tensor(output) -> tuple[torch.Tensor | None, str]:
    """The tensor a module output contributes, and where it was found (``output``, ``[0]``, ``['out']``)."""
    if isinstance(output, torch.Tensor):
        return output, "output"
    if isinstance(output, (tuple, list)):
        for index, item in enumerate(output):
            tensor, where = take_tensor(item)
            if tensor is not None:
                return tensor, f"[{index}]" + ("" if where == "output" else where)
        return None, "no tensor in sequence"
    if isinstance(output, Mapping):
        keys = (["out"] if "out" in output else []) + [k for k in output if k != "out"]
        for key in keys:
            tensor, where = take_tensor(output[key])
            if tensor is not None:
                return tensor, f"[{key!r}]" + ("" if where == "output" else where)
        return None, "no tensor in mapping"
    return None, f"output is {type(output).__name__}"


def layer_name(path: str, call_index: int, calls: int) -> str:
    """The name of the ``call_index``-th (1-based) of a module's ``calls`` calls: its path, plus ``@k`` when
    it is called more than once."""
    return path if calls == 1 else f"{path}@{call_index}"


def network_of(model) -> torch.nn.Module:
    return getattr(model, "network", model)


def dummy_input(model, input_size: int | tuple[int, int] | None = None, noise: bool = False) -> torch.Tensor:
    """A batch of mid-gray images (``noise``: of seeded uniform noise), shaped by the model's own
    preprocessing when it has one."""
    preprocessing = getattr(model, "preprocessing", None)
    rng = np.random.default_rng(0)
    if input_size is None and preprocessing is not None:
        transform = preprocessing.transform()
        if noise:
            images = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
                      for _ in range(DUMMY_BATCH)]
            return torch.stack([transform(image) for image in images])
        sample = transform(Image.new("RGB", (256, 256), (128, 128, 128)))
        return sample.unsqueeze(0).repeat(DUMMY_BATCH, *([1] * sample.dim()))
    size = input_size or 224
    height, width = (size, size) if isinstance(size, int) else size
    if noise:
        return torch.from_numpy(rng.random((DUMMY_BATCH, 3, height, width), dtype=np.float32))
    return torch.full((DUMMY_BATCH, 3, height, width), 0.5)


def _values_fingerprint(tensor: torch.Tensor) -> str | None:
    """A digest of the output's values in sorted order (so the same for any rearrangement of them); None
    for a constant output, which says nothing about where its values came from."""
    values = tensor.detach().to(torch.float32).flatten()
    if values.numel() == 0 or bool(values.min() == values.max()):
        return None
    return hashlib.sha1(values.sort().values.cpu().numpy().tobytes()).hexdigest()


class CallCounter:
    """Forward hooks on every module that name each call ``path`` or ``path@k``."""

    def __init__(self, network: torch.nn.Module, on_call):
        self.paths = {module: path for path, module in network.named_modules() if path}
        self.counts: dict[torch.nn.Module, int] = {}
        self.on_call = on_call
        self.handles = [module.register_forward_hook(self._hook) for module in self.paths]

    def _hook(self, module, inputs, output):
        self.counts[module] = self.counts.get(module, 0) + 1
        self.on_call(module, self.paths[module], self.counts[module], output)

    def remove(self):
        for handle in self.handles:
            handle.remove()


def list_layers(model, min_units: int = 24, input_size: int | tuple[int, int] | None = None,
                distinct: bool = False) -> LayerList:
    """Every module call of one forward pass on a dummy input, named, shaped and filtered (see module doc).

    ``distinct``: also skip a call whose output holds exactly the values of an earlier layer's output, in
    any order: an identity, a dropout at eval, a reshape or transpose, a float (de)quantise, a block that
    returns its last in-place ReLU. Its scores would repeat that layer's, and in a correlation over layers
    it would count the same representation twice. Values are compared on seeded noise images rather than
    gray ones, so that an operator that leaves only some inputs unchanged (a ReLU) is not taken for one
    that changes none.
    """
    network = network_of(model)
    calls = []

    def record(module, path, k, output):
        tensor, taken = take_tensor(output)
        shape = tuple(tensor.shape) if tensor is not None else None
        fingerprint = _values_fingerprint(tensor) if distinct and tensor is not None else None
        calls.append((module, path, k, shape, taken, fingerprint))

    counter = CallCounter(network, record)
    try:
        with torch.inference_mode():
            network(dummy_input(model, input_size, noise=distinct).to(config.module_device(network)))
    except Exception as error:
        raise ModelError(
            f"a forward pass on a dummy input failed: {type(error).__name__}: {error}"
        ) from error
    finally:
        counter.remove()
    total = counter.counts
    layers, skipped = [], []
    first_with: dict[str, str] = {}  # values fingerprint → the first layer with those values
    last = max(len(calls) - 1, 1)
    for order, (module, path, k, shape, taken, fingerprint) in enumerate(calls):
        name = layer_name(path, k, total[module])
        if shape is None:
            skipped.append((name, taken))
        elif len(shape) == 0 or shape[0] != DUMMY_BATCH:
            skipped.append((name, f"output shape {shape} has no batch dimension"))
        elif (units := int(np.prod(shape[1:]))) < min_units:
            skipped.append((name, f"{units} units < {min_units}"))
        elif fingerprint in first_with:
            skipped.append((name, f"the values of {first_with[fingerprint]}"))
        else:
            if fingerprint is not None:
                first_with[fingerprint] = name
            layers.append(Layer(name, path, k, shape[1:], units, order / last, taken))
    return LayerList(layers, skipped, min_units)
