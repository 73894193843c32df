"""Read a TensorFlow Lite flatbuffer into plain Python: tensors (with dequantised constants) and nodes.

Uses the ``tflite`` package (the flatbuffer schema's generated reader; ``pip install memprobe[tflite]``).
Only the main subgraph is read. Every problem with the file is a ModelError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memprobe.errors import ModelError

_NUMPY_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
}


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph. ``data``: the stored values of a constant (None for activations);
    ``scale``/``zero_point``: quantisation parameters (None when not quantised), one per slice along
    ``quantized_dimension`` or a single pair."""

    index: int
    name: str
    shape: tuple[int, ...]
    type: str
    data: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def real_values(self) -> np.ndarray:
        """The constant as float32 real values: ``scale × (q − zero_point)`` per channel when quantised."""
        values = self.data.astype(np.float64)
        if self.scale is None:
            return values.astype(np.float32)
        scale, zero_point = self.scale, self.zero_point
        if scale.size > 1:
            axis_shape = [1] * values.ndim
            axis_shape[self.quantized_dimension] = scale.size
            scale = scale.reshape(axis_shape)
            zero_point = zero_point.reshape(axis_shape) if zero_point.size > 1 else zero_point
        return ((values - zero_point) * scale).astype(np.float32)


@dataclass(frozen=True)
class Node:
    """One operator call: its builtin name (``CUSTOM:<code>`` for custom ops), tensor indices (-1 for an
    omitted optional input) and its options table (None when the operator has none)."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Graph:
    path: Path
    tensors: list[Tensor]
    nodes: list[Node]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def describe(self, node: Node) -> str:
        """``node 12 (CONV_2D → 'name')`` for messages."""
        output = self.tensors[node.outputs[0]].name if node.outputs else "no output"
        return f"node {node.index} ({node.op} → {output!r})"


def read_graph(path: Path) -> Graph:
    """Parse ``path``; a ModelError when it is not a TFLite flatbuffer or is cut short."""
    try:
        import tflite  # noqa: F401
    except ImportError as error:
        raise ModelError(
            f"reading {path} needs the package 'tflite': `pip install memprobe[tflite]`"
        ) from error
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read TFLite file {path}: {error}") from error
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelError(
            f"{path} is not a TensorFlow Lite model (no 'TFL3' flatbuffer identifier in its first 8 bytes); "
            "give a .tflite file"
        )
    try:
        return _parse(path, content)
    except ModelError:
        raise
    except Exception as error:  # the generated reader fails with struct/index errors on a damaged file
        raise ModelError(
            f"{path} is truncated or corrupt ({len(content):,} bytes; reading it failed with "
            f"{type(error).__name__}: {error}); get a fresh copy of the file"
        ) from error


def _parse(path: Path, content: bytes) -> Graph:
    import tflite

    names = _enum_names(tflite.BuiltinOperator)
    type_names = _enum_names(tflite.TensorType)
    option_classes = {
        value: getattr(tflite, name, None) for value, name in _enum_names(tflite.BuiltinOptions).items()
    }
    model = tflite.Model.GetRootAsModel(content, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError(f"{path} holds no graph (no subgraphs); is it a complete TFLite model?")
    graph = model.Subgraphs(0)
    tensors = [
        _tensor(graph.Tensors(i), i, model, content, type_names, path) for i in range(graph.TensorsLength())
    ]
    opcodes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # old files carry the code in the int8 deprecated field; newer ones in the int32 field
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"BUILTIN_{builtin}")
        opcodes.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}" if name == "CUSTOM" else name)
    nodes = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        nodes.append(Node(i, opcodes[op.OpcodeIndex()], _indices(op.InputsAsNumpy()),
                          _indices(op.OutputsAsNumpy()), _options(op, option_classes)))
    return Graph(path, tensors, nodes, _indices(graph.InputsAsNumpy()), _indices(graph.OutputsAsNumpy()))


def _tensor(entry, index: int, model, content: bytes, type_names: dict, path: Path) -> Tensor:
    name = (entry.Name() or b"").decode(errors="replace")
    shape = tuple(int(d) for d in entry.ShapeAsNumpy()) if entry.ShapeLength() else ()
    type_name = type_names.get(entry.Type(), str(entry.Type()))
    quantization = entry.Quantization()
    scale = zero_point = None
    dimension = 0
    if quantization is not None and quantization.ScaleLength():
        scale = quantization.ScaleAsNumpy().astype(np.float64)
        zero_point = (quantization.ZeroPointAsNumpy().astype(np.float64) if quantization.ZeroPointLength()
                      else np.zeros(1))
        dimension = quantization.QuantizedDimension()
    raw = _buffer_bytes(model.Buffers(entry.Buffer()), content)
    data = None
    if raw is not None:
        if type_name not in _NUMPY_TYPES:
            raise ModelError(f"{path}: constant tensor {index} ({name!r}) has type {type_name}, which "
                             "memprobe cannot read")
        dtype = np.dtype(_NUMPY_TYPES[type_name])
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dtype.itemsize:
            raise ModelError(f"{path} is truncated or corrupt: constant tensor {index} ({name!r}, shape "
                             f"{shape}, {type_name}) holds {len(raw)} bytes, not {count * dtype.itemsize}")
        data = np.frombuffer(raw, dtype).reshape(shape)
    return Tensor(index, name, shape, type_name, data, scale, zero_point, dimension)


def _buffer_bytes(buffer, content: bytes) -> bytes | None:
    """The bytes of a constant: inside the flatbuffer, or (files over 2 GB) at an offset after it."""
    if buffer is None:
        return None
    if buffer.Offset() > 1:
        end = buffer.Offset() + buffer.Size()
        if end > len(content):
            raise ValueError(f"a buffer ends at byte {end:,}, past the end of the file")
        return content[buffer.Offset():end]
    if buffer.DataLength() == 0:
        return None
    return buffer.DataAsNumpy().tobytes()


def _options(op, option_classes: dict):
    table = op.BuiltinOptions()
    options_class = option_classes.get(op.BuiltinOptionsType())
    if table is None or options_class is None:
        return None
    options = options_class()
    options.Init(table.Bytes, table.Pos)
    return options


def _enum_names(enum) -> dict[int, str]:
    return {value: key for key, value in vars(enum).items() if not key.startswith("_")}


def _indices(values) -> tuple[int, ...]:
    # the generated reader returns 0 (not an empty array) for an absent vector
    return tuple(int(v) for v in values) if isinstance(values, np.ndarray) else ()
