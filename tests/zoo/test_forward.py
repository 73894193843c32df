"""Every paper64 model (and a handful of timm models and ResMem) builds with random weights and runs a
forward pass on one image at its own input size."""

from __future__ import annotations

import pytest
import torch

from memprobe.zoo import load_model, model_set

# The four costliest per image (> 20 G multiply-adds: PolyNet, PNASNet-5-Large, NASNet-A-Large, SENet154).
# Measured on 2 shared cores, the whole file takes ~2.5 min of CPU; the slowest case took ~21 s.
SLOWEST = {
    "pretrainedmodels:polynet",
    "pretrainedmodels:pnasnet5large",
    "pretrainedmodels:nasnetalarge",
    "pretrainedmodels:senet154",
}
EXTRA = [
    "timm:resnet18",
    "timm:efficientnet_b0",
    "timm:convnext_tiny",
    "timm:vit_small_patch16_224",
    "resmem",
]
CASES = [pytest.param(i, marks=pytest.mark.slow) if i in SLOWEST else i for i in model_set("paper64") + EXTRA]


pytestmark = pytest.mark.usefixtures("two_torch_threads")


@pytest.mark.parametrize("identifier", CASES)
def test_builds_and_runs_a_forward_pass(identifier):
    with torch.no_grad():
        model = load_model(identifier, weights="random")
        assert not model.network.training
        image = torch.rand(1, *model.preprocessing.input_size)
        output = model.network(image)
    expected = (1, 1) if identifier == "resmem" else (1, 1000)
    assert isinstance(output, torch.Tensor) and tuple(output.shape) == expected
    assert torch.isfinite(output).all()
