"""The TensorFlow Lite interpreter on given inputs: the peer that memprobe's ``tflite:`` models are checked
against.

Runs inside the LiteRT side environment (``.venv-litert``, made by scripts/setup_test_env.sh; memprobe never
imports the interpreter), so data come in and go out as files:

    .venv-litert/bin/python perf/tflite_peer.py MODEL.tflite INPUT.npy OUTPUT.npy [--float] [--tensor INDEX]

INPUT.npy: float32 images × the file's own input shape without its batch axis (NHWC or NCHW, whichever the
file declares), holding the *real* values the file's input stands for (e.g. x/127.5 − 1 for the Coral
MobileNets). The interpreter runs one image at a time (the files have batch 1).

Two ways to run:
- as shipped (default): integer activations. Where the input tensor is uint8/int8, each real value is
  quantised with the input's own scale and zero point, q = clip(round(x / scale + zero_point)), as any
  TFLite caller has to; values outside the input's range saturate.
- ``--float``: the same graph with float activations, the way memprobe runs it. The flatbuffer is
  rewritten here before loading: every quantised constant (int8/uint8 weights, int32 biases) becomes its
  float32 value scale × (q − zero_point), per channel along ``quantized_dimension``; every quantised
  tensor becomes float32 without quantisation parameters; QUANTIZE and DEQUANTIZE ops are removed (their
  consumers read the op's input). The interpreter's own float kernels then do all the arithmetic.

OUTPUT.npy: float32, images × the output tensor's shape without batch: the graph's output, or with
``--tensor`` the tensor of that index in the file (read with ``experimental_preserve_all_tensors``; in
``--float`` mode a removed QUANTIZE/DEQUANTIZE's output is read at that op's input), dequantised with its
scale and zero point when it is quantised.
"""

from __future__ import annotations

import argparse

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

QUANTISED_TYPES = {schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8,
                   schema.TensorType.INT16: np.int16, schema.TensorType.INT32: np.int32}
PASS_THROUGH_OPS = {schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE}


def _dequantise(values: np.ndarray, quantization, shape) -> np.ndarray:
    scale = np.asarray(quantization.scale, np.float64)
    zero_point = np.asarray(quantization.zeroPoint, np.float64)
    values = values.reshape(shape).astype(np.float64)
    if scale.size > 1:
        axis_shape = [1] * values.ndim
        axis_shape[quantization.quantizedDimension] = scale.size
        scale, zero_point = scale.reshape(axis_shape), zero_point.reshape(axis_shape)
    return ((values - zero_point) * scale).astype(np.float32)


def float_model(content: bytes) -> tuple[bytes, dict[int, int]]:
    """The flatbuffer with float activations and dequantised constants (see the module doc), and which
    tensor now stands for each output of a removed QUANTIZE/DEQUANTIZE."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    opcodes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    stored = [None if buffer.data is None else np.asarray(buffer.data, np.uint8) for buffer in model.buffers]
    converted_buffers = set()
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            quantization = tensor.quantization
            if tensor.type not in QUANTISED_TYPES or quantization is None or quantization.scale is None:
                continue
            raw = stored[tensor.buffer]
            if raw is not None and len(raw):
                values = _dequantise(raw.view(QUANTISED_TYPES[tensor.type]), quantization, tensor.shape)
                buffer = model.buffers[tensor.buffer]
                if tensor.buffer in converted_buffers:
                    # the converter shares one buffer between equal integer constants, whatever their scales
                    buffer = schema.BufferT()
                    model.buffers.append(buffer)
                    tensor.buffer = len(model.buffers) - 1
                buffer.data = values.view(np.uint8).ravel()
                converted_buffers.add(tensor.buffer)
            tensor.type = schema.TensorType.FLOAT32
            tensor.quantization = None
        replaced = {}
        kept = []
        for op in graph.operators:
            if opcodes[op.opcodeIndex] in PASS_THROUGH_OPS:
                source = op.inputs[0]
                replaced[op.outputs[0]] = replaced.get(source, source)
            else:
                kept.append(op)
        for op in kept:
            op.inputs = [replaced.get(index, index) for index in op.inputs]
        graph.operators = kept
        graph.outputs = [replaced.get(index, index) for index in graph.outputs]
    builder = flatbuffers.Builder(len(content) * 2)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), replaced


def _quantise(image: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(image / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def run(model_path: str, images: np.ndarray, as_float: bool, tensor: int | None) -> np.ndarray:
    content = open(model_path, "rb").read()
    if as_float:
        content, replaced = float_model(content)
        tensor = replaced.get(tensor, tensor)
    # The builtin kernels without the XNNPACK delegate, which fails to prepare MobileNetV3's int8 graph.
    interpreter = Interpreter(model_content=content,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                              experimental_preserve_all_tensors=tensor is not None)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    if tensor is None:
        target = interpreter.get_output_details()[0]
    else:
        target = next(detail for detail in interpreter.get_tensor_details() if detail["index"] == tensor)
    outputs = []
    for image in images:
        value = image[None].astype(np.float32)
        if source["dtype"] != np.float32:
            value = _quantise(value, source)
        interpreter.set_tensor(source["index"], value)
        interpreter.invoke()
        result = interpreter.get_tensor(target["index"]).astype(np.float64)
        scale, zero_point = target["quantization"]
        if scale:
            result = (result - zero_point) * scale
        outputs.append(result[0].astype(np.float32))
    return np.stack(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--float", action="store_true", help="float activations (dequantised constants)")
    parser.add_argument("--tensor", type=int, help="return this tensor (index in the file), not the output")
    args = parser.parse_args()
    np.save(args.outputs, run(args.model, np.load(args.inputs), args.float, args.tensor))


if __name__ == "__main__":
    main()
