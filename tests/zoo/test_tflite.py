"""``tflite:`` networks: the six real TFLite files in $MEMPROBE_DATA/models against the TensorFlow Lite
interpreter, layer listing and hooking, random weights, and bad files.

The full 1,000-image top-1 comparison is perf/tflite_top1.py (results/benchmarks/tflite_top1.csv); here
four images per network."""

from __future__ import annotations

import re
import shutil
import struct
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from tflite_interpreter import interpreter_logits

from memprobe.cli import main
from memprobe.data import load_dataset
from memprobe.errors import ModelError
from memprobe.features import list_layers
from memprobe.finetune.heads import replace_classifier
from memprobe.zoo import get_spec, load_model
from memprobe.zoo import tflite as tflite_source
from memprobe.zoo.tflite import TFLITE_NAMES, tflite_spec
from memprobe.zoo.tflite_ops import Pool, same_padding

MOBILENET_V1 = "coral_test_data/mobilenet_v1_0.75_192_quant.tflite"


pytestmark = pytest.mark.usefixtures("two_torch_threads")


@cache
def _model(name: str):
    return load_model(f"tflite:{name}")


@cache
def _images(name: str, step: int = 250) -> torch.Tensor:
    """imagenet_sample images of classes 0, step, 2·step, ..., preprocessed for ``name``."""
    stimuli = load_dataset("imagenet_sample").stimuli
    transform = _model(name).preprocessing.transform()
    return torch.stack([transform(stimuli.open(i)) for i in stimuli.ids[::step]])


def _logits(name: str, step: int = 250) -> np.ndarray:
    with torch.no_grad():
        return _model(name).network(_images(name, step)).numpy()


# ---------------------------------------------------------------- against the interpreter


@pytest.mark.litert
@pytest.mark.parametrize("name", list(TFLITE_NAMES))
def test_logits_match_the_interpreter_running_the_same_graph_in_float(name):
    ours = _logits(name)
    theirs = interpreter_logits(_model(name).network, _images(name), as_float=True)
    assert ours.shape == theirs.shape == (4, 1000)
    # measured: at most 2.5e-5 on logits of magnitude 10–30
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


@pytest.mark.litert
@pytest.mark.parametrize("name", ["mobilenet_v2_1.0_224", "mobilenet_v1_0.75_192"])
def test_predictions_match_the_shipped_integer_model(name):
    """The Coral MobileNets were trained quantisation-aware: int8 activations change the logits little."""
    ours = _logits(name)
    theirs = interpreter_logits(_model(name).network, _images(name), as_float=False)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    assert np.abs(ours - theirs).max() < 1.5  # measured 0.61 (v2) and 0.71 (v1)


def test_real_weights_classify_real_images():
    labels = load_dataset("imagenet_sample").stimuli.table["label"].to_numpy()[::50]
    correct = {name: int((_logits(name, 50).argmax(1) == labels).sum()) for name in TFLITE_NAMES}
    assert min(correct.values()) >= 12, correct  # of 20; chance 0.1 %


# ---------------------------------------------------------------- layers and hooks


def test_layers_are_every_operator_with_nchw_maps():
    listing = list_layers(_model("mobilenet_v2_1.0_224"))
    shapes = listing.by_name()
    assert listing.names[0] == "MobilenetV2_Conv_Relu6"
    assert shapes["MobilenetV2_Conv_Relu6"].shape == (32, 112, 112)  # the file holds 1×112×112×32
    assert shapes["MobilenetV2_Logits_AvgPool"].shape == (1280, 1, 1)
    assert len(listing) + len(listing.skipped) == 65  # 66 operators, the final SOFTMAX left out
    for name in listing.names:
        assert re.fullmatch(r"\w+", name), name


def test_converted_graphs_show_nchw_on_both_sides_of_their_transposes():
    """ShuffleNet (ONNX → TFLite) transposes NCHW ↔ NHWC around every convolution and shuffles channels
    through 5-D reshapes: every 4-D layer is still channels × height × width."""
    shapes = {layer.name: layer.shape for layer in list_layers(_model("shufflenet_g8"))}
    assert shapes["tfl_quantize"] == (3, 224, 224)
    assert shapes["transpose_1"] == (3, 226, 226)  # the file: 1×226×226×3
    assert shapes["features_init_block_activ_Relu"] == (24, 112, 112)
    assert shapes["features_stage1_unit1_c_shuffle_Reshape1"] == (8, 12, 56, 56)  # 5-D: as the file has it
    assert shapes["features_stage1_unit1_c_shuffle_Reshape_11"] == (96, 56, 56)
    assert all(shape[0] >= 3 for shape in shapes.values() if len(shape) == 3)


def test_small_layers_are_skipped():
    listing = list_layers(_model("mobilenet_v3_small"))
    reasons = dict(listing.skipped)
    squeeze = "predict_MobilenetV3_expanded_conv_squeeze_excite_Conv_Relu"
    assert reasons[squeeze] == "8 units < 24"  # a squeeze-excite bottleneck, 8×1×1
    assert squeeze not in listing.names and len(listing) > 80


def test_hooks_see_the_operator_outputs_the_network_computes():
    model = _model("mobilenet_v1_0.75_192")
    seen = {}
    module = model.network.MobilenetV1_Logits_Conv2d_1c_1x1_BiasAdd
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("logits", o))
    try:
        logits = torch.from_numpy(_logits("mobilenet_v1_0.75_192"))
    finally:
        handle.remove()
    assert seen["logits"].shape == (4, 1001, 1, 1)
    torch.testing.assert_close(seen["logits"].flatten(1)[:, 1:], logits)  # background class dropped


def test_layers_command_lists_a_registered_model(capsys):
    assert main(["layers", "tflite:hardnet39ds"]) == 0
    output = capsys.readouterr().out
    assert re.search(r"^\s*convolution2\s+1\s+24×112×112\s+301056\s", output, re.MULTILINE)
    assert "tflite:hardnet39ds:" in output


def test_layers_command_lists_a_file_path(data_root, tmp_path, capsys):
    path = tmp_path / "my net.tflite"
    shutil.copy(data_root / "models" / MOBILENET_V1, path)
    assert main(["layers", f"tflite:{path}", "--weights", "pretrained"]) == 0
    output = capsys.readouterr().out
    assert re.search(r"^\s*MobilenetV1_MobilenetV1_Conv2d_0_Relu6\s+1\s+24×96×96\s", output, re.MULTILINE)
    assert f"tflite:{path}: 30 layers" in output


# ---------------------------------------------------------------- specs


def test_registered_specs_name_their_file_preprocessing_and_published_top1(data_root):
    spec = get_spec("tflite:mobilenet_v2_1.0_224")
    assert spec.weights.locate() == data_root / "models" / TFLITE_NAMES["mobilenet_v2_1.0_224"]
    assert spec.top1 == 70.8 and "hosted_models" in spec.top1_source
    assert spec.preprocessing.describe() == "256→224 bilinear RGB [0,1] mean=(0.5,0.5,0.5),std=(0.5,0.5,0.5)"
    assert get_spec("tflite:regnetx_200mf").preprocessing.color_space == "BGR"
    assert get_spec("tflite:mobilenet_v3_small").top1 is None
    with pytest.raises(KeyError):
        tflite_spec("mobilenet_v9")


def test_a_file_path_gets_its_preprocessing_from_the_input_tensor(data_root):
    models = data_root / "models"
    v1 = tflite_spec(str(models / MOBILENET_V1)).preprocessing  # uint8 input standing for [-1, 1]
    assert (v1.crop, v1.resize, v1.mean) == ((192, 192), 219, (0.5, 0.5, 0.5))
    shufflenet = tflite_spec(str(models / TFLITE_NAMES["shufflenet_g8"])).preprocessing  # uint8 for [0, 1]
    assert shufflenet.mean is None and shufflenet.crop == (224, 224)
    hardnet = tflite_spec(str(models / TFLITE_NAMES["hardnet39ds"])).preprocessing  # float input
    assert hardnet.mean == (0.485, 0.456, 0.406)


def test_random_weights_are_seeded_and_keep_the_fixed_arithmetic():
    first = load_model("tflite:mobilenet_v3_small", weights="random", seed=0).network
    again = load_model("tflite:mobilenet_v3_small", weights="random", seed=0).network
    other = load_model("tflite:mobilenet_v3_small", weights="random", seed=1).network
    trained = _model("mobilenet_v3_small").network
    conv = "predict_MobilenetV3_Conv_BatchNorm_FusedBatchNormV3"
    torch.testing.assert_close(first.get_submodule(conv).weight, again.get_submodule(conv).weight)
    assert not torch.equal(first.get_submodule(conv).weight, other.get_submodule(conv).weight)
    assert not torch.equal(first.get_submodule(conv).weight, trained.get_submodule(conv).weight)
    assert first.predict_hub_input_Mul.constant.item() == 2.0  # [0, 1] → [-1, 1] stays
    hardnet = load_model("tflite:hardnet39ds", weights="random").network
    assert torch.equal(hardnet.BatchNormalization_1_mul_1.constant, torch.ones(1, 24, 1, 1))


def test_same_padding_puts_the_odd_pixel_right_and_bottom():
    assert same_padding((224, 224), (3, 3), (2, 2)) == (0, 1, 0, 1)
    assert same_padding((7, 5), (3, 3), (1, 1)) == (1, 1, 1, 1)
    pool = Pool("AVERAGE_POOL_2D", kernel=(3, 3), stride=(2, 2), same=True, activation="NONE")
    pool.channels_last_in = pool.channels_last_out = (True,)
    torch.testing.assert_close(pool(torch.ones(1, 2, 4, 4)), torch.ones(1, 2, 2, 2))  # pads not counted


# ---------------------------------------------------------------- bad files


def test_truncated_file_is_a_model_error_naming_it(data_root, tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes((data_root / "models" / MOBILENET_V1).read_bytes()[:1_000_000])
    with pytest.raises(ModelError, match=rf"{re.escape(str(path))} is truncated or corrupt"):
        load_model(f"tflite:{path}")


def test_non_tflite_file_is_a_model_error_naming_it(data_root, tmp_path):
    path = tmp_path / "labels.tflite"
    shutil.copy(data_root / "models" / "coral_test_data" / "imagenet_labels.txt", path)
    with pytest.raises(ModelError, match=rf"{re.escape(str(path))} is not a TensorFlow Lite model"):
        load_model(f"tflite:{path}")


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_model(f"tflite:{tmp_path / 'absent.tflite'}")


def test_unsupported_operator_names_the_node_and_the_file(data_root, tmp_path):
    path = tmp_path / "l2pool.tflite"
    _replace_operator(data_root / "models" / MOBILENET_V1, "AVERAGE_POOL_2D", "L2_POOL_2D", path)
    with pytest.raises(ModelError) as error:
        load_model(f"tflite:{path}")
    message = str(error.value)
    assert str(path) in message and "operator L2_POOL_2D is not supported" in message
    assert "node 27 (L2_POOL_2D → 'MobilenetV1/Logits/AvgPool_1a/AvgPool')" in message


def test_operator_missing_from_the_table_is_reported_the_same_way(data_root, monkeypatch):
    monkeypatch.delitem(tflite_source._BUILDERS, "HARD_SWISH")
    with pytest.raises(ModelError, match=r"node 4 \(HARD_SWISH → 'predict/MobilenetV3/Conv/hard_swish"):
        load_model("tflite:mobilenet_v3_small")


def _replace_operator(source: Path, old: str, new: str, target: Path) -> None:
    """A copy of ``source`` whose operator-code table says ``new`` where it said ``old`` (a few bytes)."""
    import tflite

    content = bytearray(source.read_bytes())
    model = tflite.Model.GetRootAsModel(content, 0)
    old_code, new_code = getattr(tflite.BuiltinOperator, old), getattr(tflite.BuiltinOperator, new)
    for i in range(model.OperatorCodesLength()):
        table = model.OperatorCodes(i)._tab
        # fields deprecated_builtin_code (int8, vtable slot 4) and builtin_code (int32, slot 10)
        for slot, layout in ((4, "<b"), (10, "<i")):
            offset = table.Offset(slot)
            if offset and struct.unpack_from(layout, content, table.Pos + offset)[0] == old_code:
                struct.pack_into(layout, content, table.Pos + offset, new_code)
    target.write_bytes(bytes(content))


@pytest.mark.parametrize(("name", "features"), [("mobilenet_v2_1.0_224", 1280), ("regnetx_200mf", 368)])
def test_a_memorability_head_takes_the_classifier_s_input_and_rebuilds_from_its_weights(name, features):
    network = load_model(f"tflite:{name}").network
    replace_classifier(network)  # what fine-tuning does; 1,001 logits (background first) or 1,000 alike
    head = network.get_classifier()
    assert isinstance(head, torch.nn.Linear) and (head.in_features, head.out_features) == (features, 1)
    images = _images(name, step=500)
    prediction = network(images)
    prediction.sum().backward()
    assert prediction.shape == (len(images), 1)
    assert all(p.grad is not None for p in network.parameters())  # every layer is trained
    rebuilt = load_model(f"tflite:{name}", weights="random").network  # as a checkpoint is reloaded
    replace_classifier(rebuilt)
    rebuilt.load_state_dict(network.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), prediction.detach())
