"""Recipes' schedules epoch by epoch, classifier replacement, the ResMem-Net and AMNet heads."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from memprobe.errors import ModelError
from memprobe.finetune.checkpoint import load_checkpoint
from memprobe.finetune.data import FeatureScores
from memprobe.finetune.heads import (
    AMNet,
    AMNetHead,
    ResMemNet,
    attention_penalty,
    find_blocks,
    find_classifier,
    penultimate_layer,
    replace_classifier,
)
from memprobe.finetune.recipes import AMNET, PAPER, RESMEMNET, Phase
from memprobe.finetune.trainer import train_fold


def lrs_per_epoch(recipe, epochs):
    optimizer = recipe.build_optimizer([nn.Parameter(torch.zeros(1))])
    scheduler = recipe.build_scheduler(optimizer)
    seen = []
    for _ in range(epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_paper_recipe_divides_the_lr_by_ten_every_ten_epochs():
    seen = lrs_per_epoch(PAPER, 100)
    assert seen == pytest.approx([1e-3 * 0.1 ** (epoch // 10) for epoch in range(100)], rel=1e-9)
    assert isinstance(PAPER.build_optimizer([nn.Parameter(torch.zeros(1))]), torch.optim.SGD)
    assert PAPER.build_optimizer([nn.Parameter(torch.zeros(1))]).defaults["nesterov"]
    assert (PAPER.batch_size, PAPER.max_epochs, PAPER.patience, PAPER.folds) == (32, 100, 10, 5)


def test_resmemnet_recipe_phases_match_the_paper_epoch_by_epoch():
    seen = lrs_per_epoch(RESMEMNET, 40)
    assert seen == pytest.approx([RESMEMNET.lr_at(e) for e in range(40)], rel=1e-9)
    assert seen[0] == pytest.approx(1e-2) and seen[9] == pytest.approx(1e-3)
    assert seen[10] == pytest.approx(1e-3) and seen[24] == pytest.approx(1e-4)
    assert seen[25] == pytest.approx(1e-4) and seen[39] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(seen, seen[1:], strict=False))
    assert [RESMEMNET.backbone_frozen_at(e) for e in range(40)] == [True] * 10 + [False] * 30
    optimizer = RESMEMNET.build_optimizer([nn.Parameter(torch.zeros(1))])
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["weight_decay"] == 1e-4
    assert (RESMEMNET.batch_size, RESMEMNET.max_epochs) == (24, 40)
    assert lrs_per_epoch(AMNET, 5) == pytest.approx([1e-3] * 5)


@pytest.mark.parametrize("build, path", [
    (lambda: torchvision.models.resnet18(), "fc"),
    (lambda: torchvision.models.mobilenet_v3_small(), "classifier.3"),
    (lambda: timm.create_model("resnet18", pretrained=False), "fc"),
])
def test_replace_classifier_gives_one_output_unit(build, path):
    network = build()
    assert find_classifier(network)[0] == path
    assert replace_classifier(network) == path
    assert network.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 1)


def test_replace_classifier_handles_cadene_last_linear_and_refuses_headless_networks():
    class Cadene(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.last_linear = nn.Linear(8, 1000)

        def forward(self, x):
            return self.last_linear(self.features(x))

    network = Cadene()
    assert replace_classifier(network) == "last_linear"
    assert network(torch.zeros(1, 3, 16, 16)).shape == (1, 1)
    assert penultimate_layer(network, torch.zeros(1, 3, 16, 16)) == "features.2"
    with pytest.raises(ModelError, match="no final linear classifier"):
        find_classifier(nn.Sequential(nn.Conv2d(3, 3, 1)))


def test_penultimate_layer_is_what_feeds_the_classifier():
    assert penultimate_layer(torchvision.models.resnet18(), torch.zeros(1, 3, 64, 64)) == "avgpool"
    mobilenet = torchvision.models.mobilenet_v3_small()
    assert penultimate_layer(mobilenet, torch.zeros(1, 3, 64, 64)) == "classifier.2"


def test_resmemnet_runs_one_lstm_step_per_residual_block():
    assert len(find_blocks(torchvision.models.resnet50())) == 16
    backbone = torchvision.models.resnet18()
    model = ResMemNet(backbone, input_size=64)
    assert model.blocks == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert model.head.block_channels == [64, 64, 128, 128, 256, 256, 512, 512]
    steps = []
    model.head.lstm.register_forward_hook(lambda _m, inputs, _o: steps.append(inputs[0].shape))
    assert model.eval()(torch.zeros(3, 3, 64, 64)).shape == (3,)
    assert steps == [torch.Size([3, 8, 128])]
    with pytest.raises(ModelError, match="pass the block module paths"):
        find_blocks(nn.Sequential(nn.Conv2d(3, 3, 1)))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.fc = nn.Linear(8, 1000)

    def forward(self, x):
        return self.fc(self.layer1(self.bn1(self.conv1(x))).mean(dim=(2, 3)))


def test_resmemnet_recipe_freezes_the_backbone_only_in_its_first_phase(tmp_path):
    torch.manual_seed(0)
    model = ResMemNet(TinyResNet(), input_size=16)
    assert model.blocks == ["layer1.0", "layer1.1"]
    images, targets = torch.rand(8, 3, 16, 16).numpy(), torch.rand(8).numpy()
    data = FeatureScores(images, [str(i) for i in range(8)], targets)
    recipe = RESMEMNET.replace(batch_size=4, max_epochs=2, phases=(Phase(1, 1e-3, 1e-3, True),
                                                                   Phase(1, 1e-3, 1e-3, False)))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    train_fold(model, data, data, data, recipe, tmp_path, max_epochs=1, progress=False)
    after_frozen = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(start[k], after_frozen[k]) for k in start if k.startswith("backbone."))  # BN too
    assert not torch.equal(start["head.output.weight"], after_frozen["head.output.weight"])
    train_fold(model, data, data, data, recipe, tmp_path, progress=False)
    after_unfrozen = load_checkpoint(tmp_path / "last.pt")["model"]  # the model now holds the best epoch
    assert not torch.equal(after_frozen["backbone.conv1.weight"], after_unfrozen["backbone.conv1.weight"])


def test_amnet_attends_over_layer3_locations_of_a_frozen_resnet50():
    model = AMNet(torchvision.models.resnet50(), layer="layer3", input_size=224).eval()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    with torch.no_grad():
        scores = model(torch.rand(2, 3, 224, 224))
    assert scores.shape == (2,)
    assert model.attention.shape == (2, 3, 196)  # 3 steps over 14 x 14 locations
    assert torch.allclose(model.attention.sum(dim=2), torch.ones(2, 3))


def test_amnet_score_is_the_sum_of_per_step_scores_and_the_penalty_has_its_stated_form():
    torch.manual_seed(0)
    head = AMNetHead(channels=16, hidden=8, attention=4, steps=3)
    per_step = []
    head.score.register_forward_hook(lambda _m, _i, output: per_step.append(output.squeeze(1)))
    total = head(torch.rand(5, 16, 4, 4))
    assert torch.allclose(total, sum(per_step))
    cumulative = head.attention.sum(dim=1)  # 5 x 16
    locations, steps = 16, 3
    expected = (locations - 2 * steps + (cumulative ** 2).sum(dim=1)).mean()
    assert torch.allclose(attention_penalty(head.attention), expected)


def test_amnet_heatmaps_use_its_tapped_layer():
    from memprobe.finetune.heatmap import default_target_layer, grad_cam

    torch.manual_seed(0)
    model = AMNet(torchvision.models.resnet18(), layer="layer3", input_size=64)
    assert default_target_layer(model) is model.backbone.layer3
    maps = grad_cam(model, torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 64, 64) and maps.max() > 0
