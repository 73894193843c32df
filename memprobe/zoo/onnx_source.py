"""``onnx:<path to .onnx>``: an ONNX classification network as a torch module, converted by ``onnx2torch``
(``pip install memprobe[onnx]``).

Layers: every ONNX node becomes one module, named after the node: its name with each run of characters
other than letters, digits and ``_`` turned into one ``_`` (``/layer1/layer1.0/conv1/Conv`` →
``layer1_layer1_0_conv1_Conv``), its operator type when it has no name, ``_2``, ``_3``… appended to
repeats. The names are flat: in memprobe's layer names ``.`` only separates nesting levels.

Input: one NCHW float batch of RGB images. Preprocessing: ImageNet's (mean/std, [0, 1] pixels, short side
resized to crop/0.875 with bilinear interpolation, then center-cropped) at the height × width the graph's
input declares, 224 × 224 where it leaves them open. A file that wants other input (BGR, 0–255, other
statistics) gives wrong features with it: normalise inside the exported graph.

``weights="random"``: every convolution, linear and normalisation layer re-initialised by PyTorch's
defaults (under the caller's seed); other constants of the graph (shapes, fixed scales) stay. The file
is still needed: it defines the architecture.

onnx2torch converts most standard operators up to opset 17 (not, e.g., ReduceMean-18). From torch ≥ 2.9
export with ``torch.onnx.export(model, args, path, dynamo=False, opset_version=17)``.
"""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

from torch import nn

from memprobe.errors import ModelError
from memprobe.zoo.preprocessing import Preprocessing
from memprobe.zoo.spec import ModelSpec
from memprobe.zoo.weights import LocalFile

DEFAULT_SIZE = 224
_CROP_FRACTION = 0.875  # ImageNet's usual 224 of 256
_CONTAINER = "initializers"  # the child module onnx2torch keeps the graph's constants in


def onnx_spec(name: str) -> ModelSpec:
    """The spec of the ONNX file at path ``name`` (see the module doc)."""
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelError(f"onnx:{name}: no such file {path}. Give the path of an .onnx file.")
    height, width = input_size(read_model(path), path)
    resize = math.floor(min(height, width) / _CROP_FRACTION)
    return ModelSpec(
        identifier=f"onnx:{name}",
        source="onnx",
        builder=partial(build_network, path),
        preprocessing=Preprocessing(resize=resize, crop=(height, width)),
        top1_source="unknown (a user's file)",
        weights=LocalFile(path),
    )


def read_model(path: Path):
    """The file's ``onnx.ModelProto``; a ModelError naming the file when it is not an ONNX graph."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as error:
        raise ModelError(
            f"{path} is not a readable ONNX file ({type(error).__name__}: {error}); it may be truncated: "
            "export or download it again"
        ) from error
    if not model.graph.node:
        raise ModelError(f"{path} holds no ONNX graph (no nodes); export or download it again")
    return model


def input_size(model, path: Path) -> tuple[int, int]:
    """(height, width) of the graph's image input; DEFAULT_SIZE for each one left open."""
    constants = {initializer.name for initializer in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise ModelError(f"{path}: the graph has {len(inputs)} inputs; memprobe feeds one batch of images")
    dims = inputs[0].type.tensor_type.shape.dim
    static = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]
    if len(static) != 4 or static[1] not in (3, None):
        shape = "×".join("?" if size is None else str(size) for size in static)
        raise ModelError(
            f"{path}: the input {inputs[0].name!r} has shape {shape}; memprobe feeds N×3×H×W RGB batches"
        )
    return static[2] or DEFAULT_SIZE, static[3] or DEFAULT_SIZE


def build_network(path: Path, pretrained: bool = True) -> nn.Module:
    """The converted network of the file at ``path``; re-initialised unless ``pretrained`` (module doc)."""
    import onnx2torch

    model = read_model(path)
    _constants_to_initializers(model)
    original_names = _rename_nodes(model)
    _check_operators(model, path, original_names)
    try:
        network = onnx2torch.convert(model)
    except Exception as error:
        node = _failing_node(error)
        where = f" at node {original_names.get(node, node)!r}" if node else ""
        raise ModelError(
            f"onnx2torch cannot convert {path}{where}: {type(error).__name__}: {error}. Export the model "
            "again with constant folding (or fold it with onnx-simplifier), or at another opset"
        ) from error
    if not pretrained:
        for module in network.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return network


def _constants_to_initializers(model) -> None:
    """Turn Constant nodes, and Identity nodes of constants, into initializers, in place: onnx2torch reads
    convolution and linear weights only from initializers (onnx2torch issues #156, #243). torch's exporter
    writes an Identity per repeat of an identical weight; other exporters write weights as Constants."""
    from onnx import TensorProto

    graph = model.graph
    constants = {initializer.name: initializer for initializer in graph.initializer}
    outputs = {value.name for value in graph.output}
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            tensor = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in constants:
            tensor = constants[node.input[0]]
        else:
            tensor = None
        if tensor is None or node.output[0] in outputs:
            kept.append(node)
            continue
        initializer = TensorProto()
        initializer.CopyFrom(tensor)
        initializer.name = node.output[0]
        graph.initializer.append(initializer)
        constants[initializer.name] = initializer
    del graph.node[:]
    graph.node.extend(kept)


def _rename_nodes(model) -> dict[str, str]:
    """Give every node its layer name (module doc), in place; returns layer name → the node's own name."""
    taken = {_CONTAINER}
    original = {}
    for node in model.graph.node:
        base = re.sub(r"[^0-9A-Za-z_]+", "_", node.name).strip("_") or node.op_type
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        original[name] = node.name or f"(unnamed {node.op_type})"
        node.name = name
    return original


def _check_operators(model, path: Path, original_names: dict[str, str]) -> None:
    """A ModelError naming every node whose operator onnx2torch has no converter for."""
    opsets = {opset.domain: opset.version for opset in model.opset_import}
    missing = [
        f"node {original_names[node.name]!r} ({node.domain + '.' if node.domain else ''}{node.op_type}, "
        f"opset {opsets.get(node.domain)})"
        for node in model.graph.node
        if not _has_converter(node, opsets.get(node.domain))
    ]
    if missing:
        shown = "; ".join(missing[:5]) + (f"; and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelError(
            f"{path}: onnx2torch has no converter for the operator of {len(missing)} node(s): {shown}. "
            "Export the model at an opset onnx2torch covers (most operators up to 17) or without them."
        )


def _has_converter(node, opset: int | None) -> bool:
    from onnx2torch.node_converters import get_converter

    if opset is None:  # the file imports no opset for the node's domain
        return False
    try:
        get_converter(domain=node.domain, operation_type=node.op_type, version=opset)
    except NotImplementedError:
        return False
    return True


def _failing_node(error: Exception) -> str | None:
    """The node onnx2torch.convert was converting when ``error`` was raised (its loop variable)."""
    import onnx2torch.converter

    traceback = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code is onnx2torch.converter.convert.__code__ and "onnx_node" in frame.f_locals:
            return frame.f_locals["onnx_node"].unique_name
        traceback = traceback.tb_next
    return None
