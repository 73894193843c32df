"""TensorFlow Lite operators as torch modules, in float32.

Each module takes and returns tensors in memprobe's layout: a 4-D tensor the file holds as NHWC is NCHW
here (``channels_last_in`` / ``channels_last_out`` say which), everything else as the file holds it.
``compute`` works in the file's own layout with TFLite's semantics, so the conversion is two views.
Axis 0 is the batch everywhere: the files have batch 1, these modules take any batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _relu_n1_to_1(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-1.0, 1.0)


# Fused activations (ActivationFunctionType) and the standalone operators that compute the same functions.
ACTIVATIONS = {"NONE": _identity, "RELU": F.relu, "RELU6": F.relu6, "RELU_N1_TO_1": _relu_n1_to_1,
               "TANH": torch.tanh}
POINTWISE = {"RELU": F.relu, "RELU6": F.relu6, "RELU_N1_TO_1": _relu_n1_to_1, "TANH": torch.tanh,
             "LOGISTIC": torch.sigmoid, "HARD_SWISH": F.hardswish,
             # float activations: (de)quantising leaves the real value as it is
             "QUANTIZE": _identity, "DEQUANTIZE": _identity}


class TFLiteOp(nn.Module):
    """One operator of the graph (see the module doc for the layouts)."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.channels_last_in: tuple[bool, ...] = ()
        self.channels_last_out: tuple[bool, ...] = ()

    def forward(self, *inputs: torch.Tensor):
        layouts = zip(inputs, self.channels_last_in, strict=True)
        outputs = self.compute(*(x.permute(0, 2, 3, 1) if last else x for x, last in layouts))
        if isinstance(outputs, tuple):
            return tuple(_present(y, last) for y, last in zip(outputs, self.channels_last_out, strict=True))
        return _present(outputs, self.channels_last_out[0])

    def compute(self, *inputs: torch.Tensor):
        raise NotImplementedError

    def extra_repr(self) -> str:
        return self.op


def _present(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return tensor.permute(0, 3, 1, 2) if channels_last else tensor


def same_padding(size: tuple[int, ...], kernel, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """TFLite's SAME padding as F.pad's (left, right, top, bottom): the odd pixel goes right/bottom."""
    pads = []
    for length, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        total = max((math.ceil(length / s) - 1) * s + (k - 1) * d + 1 - length, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


class Conv(TFLiteOp):
    """CONV_2D (``groups`` > 1 when the filter has fewer input channels than the input) and
    DEPTHWISE_CONV_2D (groups = input channels; output channel c·m + k is filter k of input channel c).
    ``weight`` is in torch's (out, in / groups, kh, kw) layout."""

    def __init__(self, op, weight, bias, stride, dilation, same: bool, groups: int, activation: str):
        super().__init__(op)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None
        self.stride, self.dilation, self.same, self.groups = stride, dilation, same, groups
        self.activation = ACTIVATIONS[activation]

    def compute(self, x):
        x = x.permute(0, 3, 1, 2)
        if self.same:
            x = F.pad(x, same_padding(x.shape[2:], self.weight.shape[2:], self.stride, self.dilation))
        y = F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return self.activation(y).permute(0, 2, 3, 1)

    def reset_parameters(self) -> None:
        _reset_like_torch(self.weight, self.bias)


class FullyConnected(TFLiteOp):
    def __init__(self, weight, bias, keep_num_dims: bool, activation: str):
        super().__init__("FULLY_CONNECTED")
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None
        self.keep_num_dims = keep_num_dims
        self.activation = ACTIVATIONS[activation]

    def compute(self, x):
        if not self.keep_num_dims:
            x = x.reshape(-1, self.weight.shape[1])
        return self.activation(F.linear(x, self.weight, self.bias))

    def reset_parameters(self) -> None:
        _reset_like_torch(self.weight, self.bias)


def _reset_like_torch(weight: nn.Parameter, bias: nn.Parameter | None) -> None:
    """nn.Conv2d's / nn.Linear's default initialisation."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(weight[0].numel())
        nn.init.uniform_(bias, -bound, bound)


class Pool(TFLiteOp):
    """AVERAGE_POOL_2D (SAME padding: the average is over the pixels inside the image) and MAX_POOL_2D."""

    def __init__(self, op, kernel, stride, same: bool, activation: str):
        super().__init__(op)
        self.kernel, self.stride, self.same = kernel, stride, same
        self.activation = ACTIVATIONS[activation]

    def compute(self, x):
        x = x.permute(0, 3, 1, 2)
        pad = same_padding(x.shape[2:], self.kernel, self.stride) if self.same else (0, 0, 0, 0)
        if self.op == "MAX_POOL_2D":
            y = F.max_pool2d(F.pad(x, pad, value=-math.inf), self.kernel, self.stride)
        else:
            y = F.avg_pool2d(F.pad(x, pad), self.kernel, self.stride)
            if any(pad):
                inside = F.pad(torch.ones_like(x[:1, :1]), pad)
                y = y / F.avg_pool2d(inside, self.kernel, self.stride)
        return self.activation(y).permute(0, 2, 3, 1)


_ARITHMETIC = {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul}


class Arithmetic(TFLiteOp):
    """ADD, SUB, MUL with broadcasting; one operand may be a constant (slot ``constant_slot``)."""

    def __init__(self, op, activation: str, constant: torch.Tensor | None = None, constant_slot: int = 1):
        super().__init__(op)
        self.register_buffer("constant", constant)
        self.constant_slot = constant_slot
        self.activation = ACTIVATIONS[activation]

    def compute(self, *inputs):
        if self.constant is not None:
            inputs = list(inputs)
            inputs.insert(self.constant_slot, self.constant)
        return self.activation(_ARITHMETIC[self.op](*inputs))

    def reset_parameters(self) -> None:
        """A per-channel constant is a learned scale or shift (batch norm the converter left unfused): make
        it the identity, as torch initialises BatchNorm. A scalar is fixed arithmetic (e.g. hard-sigmoid's
        1/6, an input rescaling): keep it."""
        if self.constant is not None and self.constant.numel() > 1:
            self.constant.fill_(1.0 if self.op == "MUL" else 0.0)


class Pointwise(TFLiteOp):
    def __init__(self, op):
        super().__init__(op)
        self.function = POINTWISE[op]

    def compute(self, x):
        return self.function(x)


class Pad(TFLiteOp):
    """PAD / PADV2; ``pairs`` are (before, after) per axis, ``value`` the (real) fill value."""

    def __init__(self, op, pairs: list[tuple[int, int]], value: float = 0.0):
        super().__init__(op)
        self.pad = tuple(p for pair in reversed(pairs) for p in pair)
        self.value = value

    def compute(self, x):
        return F.pad(x, self.pad, value=self.value)


class Transpose(TFLiteOp):
    def __init__(self, perm: tuple[int, ...]):
        super().__init__("TRANSPOSE")
        self.perm = perm

    def compute(self, x):
        return x.permute(self.perm)


class Reshape(TFLiteOp):
    """RESHAPE to the file's output shape, with the batch axis kept."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__("RESHAPE")
        self.shape = shape

    def compute(self, x):
        return x.reshape(x.shape[0], *self.shape)


class Concatenation(TFLiteOp):
    def __init__(self, axis: int, activation: str):
        super().__init__("CONCATENATION")
        self.axis = axis
        self.activation = ACTIVATIONS[activation]

    def compute(self, *inputs):
        return self.activation(torch.cat(inputs, dim=self.axis))


class Split(TFLiteOp):
    def __init__(self, axis: int, parts: int):
        super().__init__("SPLIT")
        self.axis, self.parts = axis, parts

    def compute(self, x):
        return tuple(x.chunk(self.parts, dim=self.axis))


class Mean(TFLiteOp):
    def __init__(self, axes: tuple[int, ...], keep_dims: bool):
        super().__init__("MEAN")
        self.axes, self.keep_dims = axes, keep_dims

    def compute(self, x):
        return x.mean(dim=self.axes, keepdim=self.keep_dims)


class Softmax(TFLiteOp):
    def __init__(self, beta: float):
        super().__init__("SOFTMAX")
        self.beta = beta

    def compute(self, x):
        return torch.softmax(self.beta * x, dim=-1)
