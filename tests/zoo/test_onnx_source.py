"""``onnx:<path>``: a torch export converted back by onnx2torch gives the torch model's layer outputs under
memprobe's layer names; broken files and operators onnx2torch lacks are ModelErrors naming file and node."""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
import torchvision
from extract_fixtures import FakeLoadedModel, image_set
from onnx import TensorProto, helper

from memprobe.cli import main
from memprobe.errors import ModelError
from memprobe.features import ActivationStore, extract, list_layers
from memprobe.finetune.heads import penultimate_layer, replace_classifier
from memprobe.zoo import get_spec, load_model
from memprobe.zoo.preprocessing import IMAGENET_MEAN, IMAGENET_STD

SIZE = 64

# torch layer (memprobe's name) → the ONNX layer with the same output. The exporter folds every BatchNorm
# into the convolution before it; a BasicBlock's output is its second ReLU (ONNX: relu_1).
CORRESPONDING = {
    "bn1": "conv1_Conv",
    "relu": "relu_Relu",
    "maxpool": "maxpool_MaxPool",
    "layer1.0.bn2": "layer1_layer1_0_conv2_Conv",
    "layer2.0.downsample": "layer2_layer2_0_downsample_downsample_0_Conv",
    "layer3.1": "layer3_layer3_1_relu_1_Relu",
    "layer4.1.relu@2": "layer4_layer4_1_relu_1_Relu",
    "avgpool": "avgpool_GlobalAveragePool",
    "fc": "fc_Gemm",
}


def _resnet18(random_batch_norm: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    network = torchvision.models.resnet18().eval()
    if random_batch_norm:  # a fresh BatchNorm is the identity: a wrongly folded one would go unnoticed
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.5, 0.5)
    return network


def _export(network: torch.nn.Module, path: str) -> str:
    # The TorchScript exporter at opset 17: torch's default (dynamo) exporter writes opset ≥ 18, whose
    # ReduceMean onnx2torch cannot convert.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's deprecation
        torch.onnx.export(network, (torch.randn(2, 3, SIZE, SIZE),), path, dynamo=False, opset_version=17)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    network = _resnet18(random_batch_norm=True)
    return network, _export(network, str(tmp_path_factory.mktemp("onnx") / "resnet18.onnx"))


def test_every_node_is_a_layer_with_a_flat_valid_unique_name(exported):
    _, path = exported
    model = load_model(f"onnx:{path}")
    names = list_layers(model).names
    assert len(names) == len(onnx.load(path).graph.node) == len(set(names))
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in names), names
    assert set(CORRESPONDING.values()) <= set(names)
    assert "layer1_layer1_0_Add" in names


def test_layers_give_the_torch_models_outputs_through_extraction(exported, tmp_path):
    network, path = exported
    converted = load_model(f"onnx:{path}")
    original = FakeLoadedModel(network, id="torch:resnet18", preprocessing=converted.preprocessing)
    stimuli = image_set(tmp_path / "images", 6)
    options = dict(reducer="none", store=ActivationStore(tmp_path / "store"), num_workers=0, progress=False)
    ours = extract(converted, stimuli, list(CORRESPONDING.values()) + ["layer1_layer1_0_Add"], **options)
    theirs = extract(original, stimuli, list(CORRESPONDING) + ["layer1.0.bn2"], **options)
    for torch_name, onnx_name in CORRESPONDING.items():
        expected = theirs[torch_name].values
        assert ours[onnx_name].shape == expected.shape, onnx_name
        np.testing.assert_allclose(ours[onnx_name].values, expected, atol=1e-4, rtol=1e-4, err_msg=onnx_name)
    # The residual Add has no torch module: it is the block's last BatchNorm plus the block's input.
    added = theirs["layer1.0.bn2"].values + theirs["maxpool"].values
    np.testing.assert_allclose(ours["layer1_layer1_0_Add"].values, added, atol=1e-4, rtol=1e-4)


def test_weights_shared_through_identity_nodes_convert(tmp_path):
    # Fresh BatchNorms fold into identical (zero) biases, which torch's exporter writes once and repeats
    # through Identity nodes; onnx2torch alone fails on those (its issue #156).
    network = _resnet18(random_batch_norm=False)
    path = _export(network, str(tmp_path / "shared.onnx"))
    assert any(node.op_type == "Identity" for node in onnx.load(path).graph.node)
    images = torch.randn(2, 3, SIZE, SIZE)
    converted = load_model(f"onnx:{path}").network
    with torch.no_grad():
        torch.testing.assert_close(converted(images), network(images), atol=1e-4, rtol=1e-4)


def test_fine_tuning_finds_the_converted_classifier(exported):
    _, path = exported
    network = load_model(f"onnx:{path}").network
    assert replace_classifier(network) == "fc_Gemm"
    images = torch.randn(2, 3, SIZE, SIZE)
    assert network.eval()(images).shape == (2, 1)
    assert penultimate_layer(network, images) == "Flatten"


def test_random_weights_keep_the_layers_and_change_the_outputs(exported):
    _, path = exported
    pretrained, random = load_model(f"onnx:{path}"), load_model(f"onnx:{path}", weights="random", seed=1)
    assert list_layers(random).names == list_layers(pretrained).names
    assert random.weights_id == "random-seed1" and len(pretrained.weights_id) == 12
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert not torch.allclose(random.network(images), pretrained.network(images), atol=1e-2)


def test_preprocessing_is_imagenets_at_the_graph_input_size(exported, tmp_path):
    _, path = exported
    fixed = get_spec(f"onnx:{path}").preprocessing
    assert (fixed.crop, fixed.resize) == ((SIZE, SIZE), 73)  # 73 = floor(64 / 0.875)
    assert (fixed.mean, fixed.std, fixed.color_space) == (IMAGENET_MEAN, IMAGENET_STD, "RGB")
    open_size = _graph_file(tmp_path / "open.onnx", "Relu", ["N", 3, "H", "W"])
    assert get_spec(f"onnx:{open_size}").preprocessing.crop == (224, 224)
    channels_last = _graph_file(tmp_path / "nhwc.onnx", "Relu", [1, 32, 32, 3])
    with pytest.raises(ModelError, match=r"nhwc\.onnx.*1×32×32×3.*N×3×H×W"):
        get_spec(f"onnx:{channels_last}")


def test_operator_without_converter_names_file_node_and_operator(tmp_path):
    path = _graph_file(tmp_path / "hardmax.onnx", "Hardmax", [1, 3, 8, 8], node_name="head/scores.hardmax")
    with pytest.raises(ModelError) as error:
        load_model(f"onnx:{path}")
    message = str(error.value)
    assert str(path) in message and "'head/scores.hardmax'" in message and "Hardmax, opset 17" in message
    assert "stem" not in message  # the Relu before it converts


def test_a_node_the_converter_fails_on_is_named(tmp_path):
    # onnx2torch takes convolution weights only from constants; this one's are computed (Abs of a constant).
    weight = helper.make_tensor("weight", TensorProto.FLOAT, [4, 3, 1, 1], [0.5] * 12)
    nodes = [
        helper.make_node("Abs", ["weight"], ["computed"], name="weights.abs"),
        helper.make_node("Conv", ["image", "computed"], ["features"], name="stem/conv.0"),
    ]
    graph = helper.make_graph(
        nodes,
        "computed_weight",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=[weight],
    )
    path = tmp_path / "computed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=rf"cannot convert {re.escape(str(path))} at node 'stem/conv\.0'"):
        load_model(f"onnx:{path}")


def test_truncated_or_foreign_file_names_the_file(exported, tmp_path):
    _, path = exported
    content = open(path, "rb").read()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(ModelError, match=rf"{re.escape(str(truncated))} is not a readable ONNX file"):
        load_model(f"onnx:{truncated}")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=rf"{re.escape(str(empty))} holds no ONNX graph"):
        load_model(f"onnx:{empty}")
    with pytest.raises(ModelError, match="no such file"):
        get_spec(f"onnx:{tmp_path / 'missing.onnx'}")


def test_without_onnx2torch_the_command_names_the_extra(exported, monkeypatch, capsys):
    _, path = exported
    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # as if not installed
    assert main(["layers", f"onnx:{path}"]) == 1
    assert "needs onnx2torch: pip install 'memprobe[onnx]'" in capsys.readouterr().err


def _graph_file(path, operator: str, input_shape: list, node_name: str = "scores") -> str:
    """image → Relu ('stem') → ``operator`` (``node_name``) → output, at opset 17."""
    nodes = [
        helper.make_node("Relu", ["image"], ["features"], name="stem"),
        helper.make_node(operator, ["features"], ["scores"], name=node_name),
    ]
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, input_shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)
