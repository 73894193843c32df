"""``model_set("offline")``: every real ImageNet network on these machines loads its pretrained weights
without a download and gives ImageNet's 1,000 classes; ``memprobe models --set offline`` lists them."""

from __future__ import annotations

import pytest
import torch

from memprobe.cli import main
from memprobe.features.layers import dummy_input
from memprobe.zoo import get_spec, load_model, model_set
from memprobe.zoo.weights import file_digest

OFFLINE = [
    "tflite:mobilenet_v2_1.0_224",
    "tflite:mobilenet_v1_0.75_192",
    "tflite:mobilenet_v3_small",
    "tflite:shufflenet_g8",
    "tflite:regnetx_200mf",
    "tflite:hardnet39ds",
    "efficientnet_lite:b0",
    "efficientnet_lite:b1",
    "efficientnet_lite:b2",
    "resmem:resnet152",
]


def test_the_set_holds_the_ten_real_networks():
    assert model_set("offline") == OFFLINE


@pytest.mark.parametrize("identifier", OFFLINE)
def test_loads_pretrained_offline_with_1000_imagenet_outputs(identifier, data_root):
    model = load_model(identifier, download=False)
    assert model.weights_id == file_digest(get_spec(identifier).weights.locate())
    with torch.inference_mode():
        logits = model.network(dummy_input(model))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()


def test_models_command_lists_the_set_with_weights_present(data_root, capsys):
    assert main(["models", "--set", "offline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert list(rows) == OFFLINE
    assert all(row[-1] == "yes" for row in rows.values())
    assert rows["efficientnet_lite:b2"][1:3] == ["efficientnet_lite", "77.60"]
    assert rows["resmem:resnet152"][2] == "-"
