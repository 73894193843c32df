"""``load_model("resmem")`` reproduces the resmem package's own predictions on real LNSIM images."""

from __future__ import annotations

import hashlib

import pytest
import resmem
import torch

from memprobe.data.registry import load_dataset
from memprobe.zoo import load_model
from memprobe.zoo.sources import RESMEM_WEIGHTS


@pytest.mark.slow  # two 530 MB ResMem loads and 32 forward passes: ~25 s on 2 idle cores
def test_resmem_predictions_equal_the_package_outputs_on_lnsim(data_root):
    stimuli = load_dataset("lnsim", root=data_root).stimuli.subset(n=16, seed=0)
    images = [stimuli.open(i) for i in stimuli.ids]

    ours = load_model("resmem")
    transform = ours.preprocessing.transform()
    package = resmem.ResMem(pretrained=True).eval()
    with torch.no_grad():
        predicted = ours.network(torch.stack([transform(image) for image in images])).squeeze(1)
        reference = package(torch.stack([resmem.transformer(image) for image in images])).squeeze(1)

    assert torch.equal(predicted, reference)
    assert 0.3 < predicted.mean().item() < 0.95 and predicted.std().item() > 0.01
    path = RESMEM_WEIGHTS.locate()
    assert ours.weights_id == hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_resmem_backbone_is_the_package_resnet152():
    backbone = load_model("resmem:resnet152").network
    package = resmem.ResMem(pretrained=True).features
    assert type(backbone).__name__ == "ResNet" and backbone.fc.out_features == 1000
    reference = package.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, reference[key]), key
