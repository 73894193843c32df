"""TensorFlow Lite classification networks as torch modules: the ``tflite:`` model source.

``tflite:<name>`` is one of the networks in ``$MEMPROBE_DATA/models`` (``TFLITE_NAMES``); ``tflite:<path>``
any ``.tflite`` classification file. The file is read with the ``tflite`` package and rebuilt as a
``TFLiteNetwork``: one child module per operator, named after the operator's output tensor, so memprobe
hooks every operator like any torch layer.

Arithmetic: int8/uint8 weights and int32 biases are dequantised (per tensor or per channel along
``quantized_dimension``) and everything is computed in float32. Activations stay float: QUANTIZE and
DEQUANTIZE are the identity, and no activation is rounded or clipped to its quantisation range (the
ONNX-converted ATU files were calibrated on unnormalised input and only work that way). Constants that
the graph applies to its input (MobileNetV3's MUL by 2 and SUB of 1, mapping [0, 1] to [−1, 1]) are
ordinary operators and keep their float meaning.

Layout: ``forward`` takes the NCHW float batch that memprobe's Preprocessing makes, whatever the file's
input layout; every 4-D map an operator returns is NCHW (maps the file holds as NHWC are shown as NCHW
views), so layer shapes and reducers mean what they mean for torch models.

Output: logits. When the graph ends in SOFTMAX that operator is left out and the network returns its
input (pre-softmax logits); with 1,001 classes the first (background) is dropped, so the output is the
1000-way ImageNet order.

``weights="random"``: the same graph with torch's default initialisation of every convolution and fully
connected layer (nn.Conv2d / nn.Linear rules, under the caller's seed); per-channel constants of ADD, SUB
and MUL (batch norm the converter left unfused) become the identity, as torch initialises BatchNorm;
scalar constants (fixed arithmetic such as hard-sigmoid's 1/6 or the input rescaling) stay. The file is
still needed: it defines the architecture.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from memprobe import config
from memprobe.errors import ModelError
from memprobe.zoo import tflite_ops as ops
from memprobe.zoo.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from memprobe.zoo.spec import ModelSpec
from memprobe.zoo.tflite_reader import Graph, Node, read_graph
from memprobe.zoo.weights import LocalFile

_TF_INCEPTION = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # x/127.5 − 1 on 0–255 pixels
_ATU = "ATU Model Zoo README.rst (weilly0912/ATU_Model_Zoo), quantised model"
_HOSTED = "TensorFlow Lite hosted models table (tensorflow/lite/g3doc/guide/hosted_models.md)"


def _center_crop(size: int, **normalisation) -> Preprocessing:
    """Resize the short side to size/0.875, center crop ``size`` (TF-slim's and torchvision's evaluation)."""
    return Preprocessing(resize=math.floor(size / 0.875), crop=(size, size), **normalisation)


@dataclass(frozen=True)
class _Entry:
    path: str  # relative to $MEMPROBE_DATA/models
    preprocessing: Preprocessing
    top1: float | None
    top1_source: str


_ENTRIES = {
    "mobilenet_v2_1.0_224": _Entry(
        "coral_test_data/mobilenet_v2_1.0_224_quant.tflite", _center_crop(224, **_TF_INCEPTION),
        70.8, f"{_HOSTED}: Mobilenet_V2_1.0_224_quant",
    ),
    "mobilenet_v1_0.75_192": _Entry(
        "coral_test_data/mobilenet_v1_0.75_192_quant.tflite", _center_crop(192, **_TF_INCEPTION),
        66.1, f"{_HOSTED}: Mobilenet_V1_0.75_192_quant",
    ),
    "mobilenet_v3_small": _Entry(
        "atu_model_zoo/Classification/mobilenet_v3_edgetpu/Mobilenet_v3_small_quant.tflite",
        _center_crop(224, mean=None, std=None), None, "none published (the ATU Model Zoo lists None)",
    ),
    "shufflenet_g8": _Entry(
        "atu_model_zoo/Classification/shufflenet/shufflenet_quant.tflite", _center_crop(224),
        65.44, f"{_ATU} (float: 66.30)",
    ),
    "regnetx_200mf": _Entry(
        # pycls feeds BGR images normalised with the ImageNet numbers in BGR order
        "atu_model_zoo/Classification/regnetx200mf/regnetx200mf_quant.tflite",
        _center_crop(224, mean=IMAGENET_MEAN[::-1], std=IMAGENET_STD[::-1], color_space="BGR"),
        69.52, f"{_ATU} (float: 70.38)",
    ),
    "hardnet39ds": _Entry(
        "atu_model_zoo/Classification/hardnet39ds/hardnet39ds_quant.tflite", _center_crop(224),
        72.92, f"{_ATU} (float: 73.43)",
    ),
}

TFLITE_NAMES = {name: entry.path for name, entry in _ENTRIES.items()}


def _models_root() -> Path:
    return config.data_root(required=False) / "models"


def tflite_spec(name: str, preprocessing: Preprocessing | None = None) -> ModelSpec:
    """The spec of a registered short name (KeyError when unknown) or of a ``.tflite`` path.

    ``preprocessing`` overrides the registered one. For a path without it, it is read off the file's input
    tensor: its height × width is the crop (short side resized to crop/0.875 first); a quantised input says
    what real range it stands for: about [−1, 1] → mean = std = 0.5, [0, 1] → no normalisation, [0, 255] →
    0–255 input; a float input gets torchvision's ImageNet mean/std (a guess: pass the file's own
    preprocessing when you know it).
    """
    if name in _ENTRIES:
        entry = _ENTRIES[name]
        path = _models_root() / entry.path
        return ModelSpec(
            identifier=f"tflite:{name}",
            source="tflite",
            builder=partial(build_network, path),
            preprocessing=preprocessing or entry.preprocessing,
            top1=entry.top1,
            top1_source=entry.top1_source,
            weights=LocalFile(path),
        )
    if not (name.endswith(".tflite") or "/" in name):
        raise KeyError(name)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelError(f"tflite:{name}: no such file {path}. Give a registered name "
                         f"({', '.join(_ENTRIES)}) or the path of a .tflite file.")
    return ModelSpec(
        identifier=f"tflite:{name}",
        source="tflite",
        builder=partial(build_network, path),
        preprocessing=preprocessing or infer_preprocessing(read_graph(path)),
        top1_source="unknown (a user's file)",
        weights=LocalFile(path),
    )


def infer_preprocessing(graph: Graph) -> Preprocessing:
    """See ``tflite_spec``."""
    tensor = graph.tensors[graph.inputs[0]]
    _, height, width = _image_layout(graph)
    resize = math.floor(min(height, width) / 0.875)
    if tensor.scale is None:
        return Preprocessing(resize=resize, crop=(height, width))
    low, high = (float(tensor.scale[0] * (q - tensor.zero_point[0])) for q in _integer_range(tensor.type))
    if low < -0.5:
        return Preprocessing(resize=resize, crop=(height, width), **_TF_INCEPTION)
    if high > 2:
        return Preprocessing(resize=resize, crop=(height, width), mean=None, std=None, input_range=(0, 255))
    return Preprocessing(resize=resize, crop=(height, width), mean=None, std=None)


def _integer_range(type_name: str) -> tuple[int, int]:
    return {"UINT8": (0, 255), "INT8": (-128, 127), "INT16": (-32768, 32767)}[type_name]


def build_network(path: Path, pretrained: bool = True) -> TFLiteNetwork:
    """The network of the file at ``path``; with ``pretrained=False`` re-initialised (see the module doc)."""
    network = TFLiteNetwork(read_graph(path))
    if not pretrained:
        network.reset_parameters()
    return network


class TFLiteNetwork(nn.Module):
    """A TFLite graph as a torch module: NCHW float images in, logits out (see the module doc).

    ``source``: the file; ``input_channels_last``: whether the file's input is NHWC; ``output_tensor``: the
    index of the file's tensor this network returns (the softmax's input when the graph ends in SOFTMAX);
    ``num_classes``: its last dimension; ``drops_background``: whether class 0 of 1,001 is dropped.
    """

    def __init__(self, graph: Graph):
        super().__init__()
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ModelError(f"{graph.path} has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                             "memprobe reads classification files with one image input and one output")
        self.source = str(graph.path)
        nodes = list(graph.nodes)
        self._input, self.output_tensor = graph.inputs[0], graph.outputs[0]
        if nodes and nodes[-1].op == "SOFTMAX" and nodes[-1].outputs == (self.output_tensor,):
            self.output_tensor = nodes.pop().inputs[0]
        self.input_channels_last, _, _ = _image_layout(graph)
        self.num_classes = graph.tensors[self.output_tensor].shape[-1]
        self.drops_background = self.num_classes == 1001
        self.head: nn.Linear | None = None
        self._units = {index: math.prod(tensor.shape[1:]) for index, tensor in enumerate(graph.tensors)}
        self._steps = [(_activations(graph, node), node.outputs) for node in nodes]
        self._release = _last_uses(self._steps, self.output_tensor)
        channels_last = _channels_last(graph, nodes)
        self._names = []
        taken = set(dir(self))
        for node in nodes:
            module = _build(graph, node)
            module.channels_last_in = tuple(channels_last[i] for i in _activations(graph, node))
            module.channels_last_out = tuple(channels_last[i] for i in node.outputs)
            name = _unique(_readable(graph.tensors[node.outputs[0]].name, node.index), taken)
            self.add_module(name, module)
            self._names.append(name)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        values = {self._input: images}
        for name, (inputs, outputs), release in zip(self._names, self._steps, self._release, strict=True):
            result = self._modules[name](*(values[i] for i in inputs))
            values.update(zip(outputs, result, strict=True) if len(outputs) > 1 else ((outputs[0], result),))
            for index in release:
                del values[index]
        logits = values[self.output_tensor].flatten(1)
        if self.head is not None:
            return self.head(logits)
        return logits[:, 1:] if self.drops_background else logits

    def get_classifier(self) -> nn.Module:
        """The operator that computes the class scores (CONV_2D or FULLY_CONNECTED), or the new head."""
        if self.head is not None:
            return self.head
        return self._modules[self._names[self._classifier_step()]]

    def reset_classifier(self, outputs: int) -> None:
        """A fresh ``outputs``-unit linear head on the classifier's input features (flattened) in place of
        the classifier and the operators after it (timm's API, which fine-tuning uses)."""
        step = self._classifier_step()
        features = self._steps[step][0][0]
        for name in self._names[step:]:
            delattr(self, name)
        self._names, self._steps = self._names[:step], self._steps[:step]
        self.output_tensor, self.drops_background = features, False
        self._release = _last_uses(self._steps, features)
        self.head = nn.Linear(self._units[features], outputs)
        self.num_classes = outputs

    def _classifier_step(self) -> int:
        weighted = [step for step, name in enumerate(self._names)
                    if self._modules[name].op in ("CONV_2D", "FULLY_CONNECTED")]
        if not weighted:
            raise ModelError(f"{self.source}: no CONV_2D or FULLY_CONNECTED operator computes the class "
                             "scores")
        return weighted[-1]

    def reset_parameters(self) -> None:
        for module in self.children():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def _image_layout(graph: Graph) -> tuple[bool, int, int]:
    """(channels last?, height, width) of the input; a ModelError unless it is one RGB image."""
    shape = graph.tensors[graph.inputs[0]].shape
    if len(shape) == 4 and shape[0] in (1, -1):
        if shape[3] == 3 and shape[1] != 3:
            return True, shape[1], shape[2]
        if shape[1] == 3:
            return False, shape[2], shape[3]
    raise ModelError(f"{graph.path}: the input tensor has shape {shape}; memprobe needs one RGB image "
                     "(1×H×W×3 or 1×3×H×W)")


def _activations(graph: Graph, node: Node) -> tuple[int, ...]:
    """The node's inputs that are computed (not constants, not omitted)."""
    return tuple(i for i in node.inputs if i >= 0 and not graph.tensors[i].is_constant)


def _last_uses(steps, output: int) -> list[tuple[int, ...]]:
    """For each step, the tensors no later step reads (dropped then, to keep memory flat)."""
    last = {}
    for position, (inputs, _) in enumerate(steps):
        for index in inputs:
            last[index] = position
    release = [[] for _ in steps]
    for index, position in last.items():
        if index != output:
            release[position].append(index)
    return [tuple(indices) for indices in release]


# ---------------------------------------------------------------- layouts

_NHWC_KERNELS = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"}


def _channels_last(graph: Graph, nodes: list[Node]) -> dict[int, bool]:
    """Which 4-D tensors are NHWC maps (shown as NCHW). Tracks the channel axis of every tensor: the
    spatial kernels output NHWC; TRANSPOSE moves the axis; other operators keep their input's; a
    RESHAPE/TRANSPOSE chain that returns to the shape it left (ShuffleNet's channel shuffle) gets that
    tensor's axis back."""
    input_last, _, _ = _image_layout(graph)
    axis = {graph.inputs[0]: 3 if input_last else 1}
    left_from: dict[int, int] = {}  # tensor inside a reshape/transpose chain → the tensor the chain left
    for node in nodes:
        inputs = _activations(graph, node)
        first = inputs[0] if inputs else None
        for output in node.outputs:
            rank = len(graph.tensors[output].shape)
            if node.op in _NHWC_KERNELS:
                axis[output] = 3
            elif node.op == "TRANSPOSE" and axis.get(first) is not None:
                axis[output] = _transpose_perm(graph, node).index(axis[first])
            elif node.op in ("RESHAPE", "TRANSPOSE") and first is not None:
                origin = left_from.get(first, first)
                if graph.tensors[output].shape == graph.tensors[origin].shape:
                    axis[output] = axis.get(origin)
                else:
                    left_from[output] = origin
            else:
                known = [i for i in inputs if axis.get(i) is not None]
                if known and rank == len(graph.tensors[known[0]].shape):
                    axis[output] = axis[known[0]]
    return {index: len(graph.tensors[index].shape) == 4 and axis.get(index) == 3
            for index in range(len(graph.tensors))}


def _transpose_perm(graph: Graph, node: Node) -> tuple[int, ...]:
    return tuple(int(p) for p in _constant(graph, node, 1, "permutation").data)


# ---------------------------------------------------------------- names

_CONVERTER_PREFIXES = ("onnx_tf_prefix_",)  # onnx-tf prepends this to every ONNX node name


def _readable(tensor_name: str, node_index: int) -> str:
    """The first of a fused tensor's ';'-joined names, converter prefixes off, non-word runs → '_'."""
    name = tensor_name.split(";")[0]
    for prefix in _CONVERTER_PREFIXES:
        name = name.removeprefix(prefix)
    name = re.sub(r"\W+", "_", name).strip("_")
    return name or f"node{node_index}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------- operators


def _build(graph: Graph, node: Node) -> ops.TFLiteOp:
    builder = _BUILDERS.get(node.op)
    if builder is None:
        raise ModelError(
            f"{graph.path}: {graph.describe(node)}: operator {node.op} is not supported by memprobe's TFLite "
            f"reader (supported: {', '.join(sorted(_BUILDERS))}); convert the model without it or extend "
            "memprobe/zoo/tflite.py"
        )
    return builder(graph, node)


def _constant(graph: Graph, node: Node, slot: int, what: str):
    tensor = graph.tensors[node.inputs[slot]] if slot < len(node.inputs) and node.inputs[slot] >= 0 else None
    if tensor is None or not tensor.is_constant:
        raise ModelError(f"{graph.path}: {graph.describe(node)} needs a constant {what} (input {slot}); "
                         "memprobe only reads graphs whose weights and shapes are constants")
    return tensor


def _float_constant(graph: Graph, node: Node, slot: int, what: str) -> torch.Tensor:
    return torch.from_numpy(_constant(graph, node, slot, what).real_values().copy())


def _optional_bias(graph: Graph, node: Node) -> torch.Tensor | None:
    return _float_constant(graph, node, 2, "bias") if len(node.inputs) > 2 and node.inputs[2] >= 0 else None


def _activation(graph: Graph, node: Node, options) -> str:
    name = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}.get(
        options.FusedActivationFunction() if options is not None else 0
    )
    if name is None:
        raise ModelError(f"{graph.path}: {graph.describe(node)} has a fused activation memprobe does not "
                         "support (SIGN_BIT)")
    return name


def _axis(graph: Graph, node: Node, axis: int, rank: int) -> int:
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        raise ModelError(f"{graph.path}: {graph.describe(node)} works along the batch axis; memprobe runs "
                         "TFLite graphs on batches and cannot")
    return axis


def _conv(graph: Graph, node: Node) -> ops.Conv:
    options = node.options
    weight = _float_constant(graph, node, 1, "filter")
    input_channels = graph.tensors[node.inputs[0]].shape[3]
    if node.op == "DEPTHWISE_CONV_2D":  # (1, kh, kw, in·multiplier) → (in·multiplier, 1, kh, kw)
        torch_weight, groups = weight[0].permute(2, 0, 1).unsqueeze(1), input_channels
    else:  # (out, kh, kw, in / groups) → (out, in / groups, kh, kw)
        torch_weight, groups = weight.permute(0, 3, 1, 2), input_channels // weight.shape[3]
    return ops.Conv(
        node.op, torch_weight.contiguous(), _optional_bias(graph, node),
        stride=(options.StrideH(), options.StrideW()),
        dilation=(options.DilationHFactor(), options.DilationWFactor()),
        same=options.Padding() == 0, groups=groups, activation=_activation(graph, node, options),
    )


def _pool(graph: Graph, node: Node) -> ops.Pool:
    options = node.options
    return ops.Pool(node.op, kernel=(options.FilterHeight(), options.FilterWidth()),
                    stride=(options.StrideH(), options.StrideW()), same=options.Padding() == 0,
                    activation=_activation(graph, node, options))


def _fully_connected(graph: Graph, node: Node) -> ops.FullyConnected:
    options = node.options
    return ops.FullyConnected(_float_constant(graph, node, 1, "weights"), _optional_bias(graph, node),
                              keep_num_dims=bool(options and options.KeepNumDims()),
                              activation=_activation(graph, node, options))


def _arithmetic(graph: Graph, node: Node) -> ops.Arithmetic:
    constants = [slot for slot, i in enumerate(node.inputs) if graph.tensors[i].is_constant]
    if len(constants) > 1:
        raise ModelError(f"{graph.path}: {graph.describe(node)} has only constant inputs; memprobe expects "
                         "the converter to have folded it")
    activation = _activation(graph, node, node.options)
    if not constants:
        return ops.Arithmetic(node.op, activation)
    slot = constants[0]
    return ops.Arithmetic(node.op, activation, _float_constant(graph, node, slot, "operand"), slot)


def _pad(graph: Graph, node: Node) -> ops.Pad:
    pairs = [tuple(int(p) for p in pair) for pair in _constant(graph, node, 1, "paddings").data]
    if pairs[0] != (0, 0):
        raise ModelError(f"{graph.path}: {graph.describe(node)} pads the batch axis; memprobe cannot")
    value = 0.0
    if node.op == "PADV2" and len(node.inputs) > 2:
        value = float(_constant(graph, node, 2, "padding value").real_values().reshape(-1)[0])
    return ops.Pad(node.op, pairs, value)


def _transpose(graph: Graph, node: Node) -> ops.Transpose:
    perm = _transpose_perm(graph, node)
    if perm[0] != 0:
        raise ModelError(f"{graph.path}: {graph.describe(node)} moves the batch axis; memprobe cannot")
    return ops.Transpose(perm)


def _reshape(graph: Graph, node: Node) -> ops.Reshape:
    shape = graph.tensors[node.outputs[0]].shape
    if not shape or shape[0] not in (1, -1):
        raise ModelError(f"{graph.path}: {graph.describe(node)} reshapes the batch axis (to {shape}); "
                         "memprobe cannot")
    return ops.Reshape(shape[1:])


def _concatenation(graph: Graph, node: Node) -> ops.Concatenation:
    if any(graph.tensors[i].is_constant for i in node.inputs):
        raise ModelError(f"{graph.path}: {graph.describe(node)} concatenates a constant; memprobe cannot")
    rank = len(graph.tensors[node.outputs[0]].shape)
    return ops.Concatenation(_axis(graph, node, node.options.Axis(), rank),
                             _activation(graph, node, node.options))


def _split(graph: Graph, node: Node) -> ops.Split:
    axis_tensor = _constant(graph, node, 0, "axis")
    rank = len(graph.tensors[node.inputs[1]].shape)
    return ops.Split(_axis(graph, node, int(axis_tensor.data.reshape(-1)[0]), rank), node.options.NumSplits())


def _mean(graph: Graph, node: Node) -> ops.Mean:
    rank = len(graph.tensors[node.inputs[0]].shape)
    axes = tuple(_axis(graph, node, int(a), rank) for a in _constant(graph, node, 1, "axes").data.reshape(-1))
    return ops.Mean(axes, keep_dims=bool(node.options and node.options.KeepDims()))


def _softmax(graph: Graph, node: Node) -> ops.Softmax:
    return ops.Softmax(node.options.Beta() if node.options is not None else 1.0)


def _pointwise(graph: Graph, node: Node) -> ops.Pointwise:
    return ops.Pointwise(node.op)


_BUILDERS = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool,
    "FULLY_CONNECTED": _fully_connected, "ADD": _arithmetic, "SUB": _arithmetic, "MUL": _arithmetic,
    "PAD": _pad, "PADV2": _pad, "TRANSPOSE": _transpose, "RESHAPE": _reshape,
    "CONCATENATION": _concatenation, "SPLIT": _split, "MEAN": _mean, "SOFTMAX": _softmax,
    **{op: _pointwise for op in ops.POINTWISE},
}
