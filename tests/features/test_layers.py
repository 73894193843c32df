"""Layer enumeration: naming by module path with @k, skip rules, tuple/dict outputs, unknown names."""

from __future__ import annotations

import pytest
import torch
import torchvision
from extract_fixtures import TupleAndDictNet

from memprobe.errors import ModelError
from memprobe.features import list_layers


def test_torchvision_resnet_names_repeated_relu_calls_and_counts_containers():
    layers = list_layers(torchvision.models.resnet18(), input_size=64)
    names = layers.names
    # Bottleneck/BasicBlock call their shared relu twice: one layer per call, @k in call order.
    assert [n for n in names if n.startswith("layer1.0.relu")] == ["layer1.0.relu@1", "layer1.0.relu@2"]
    assert "relu" in names and "relu@1" not in names  # the stem relu is called once: no suffix
    # Containers are layers too (a block's output is the residual sum), after their children.
    assert names.index("layer1.0") > names.index("layer1.0.relu@2")
    assert "layer1" in names and "" not in names  # root module is not a layer
    by_name = layers.by_name()
    assert by_name["layer1.0.relu@2"].call_index == 2
    assert by_name["conv1"].shape == (64, 32, 32) and by_name["conv1"].units == 64 * 32 * 32
    depths = [layer.relative_depth for layer in layers]
    assert depths == sorted(depths) and depths[0] == 0.0 and depths[-1] == 1.0
    assert names[-1] == "fc"




def test_tuple_dict_and_non_tensor_outputs_are_taken_or_skipped_with_reasons():
    layers = list_layers(TupleAndDictNet(), input_size=8)
    by_name = layers.by_name()
    assert by_name["split"].taken == "[1]"
    assert by_name["as_dict"].taken == "['out']"
    assert by_name["conv"].taken == "output"
    skipped = dict(layers.skipped)
    assert set(skipped) == {"label", "head"}
    assert "str" in skipped["label"] and "3 units < 24" in skipped["head"]
    assert "skipped" not in by_name


def test_min_units_threshold_changes_only_the_filter():
    everything = list_layers(TupleAndDictNet(), min_units=1, input_size=8)
    assert "head" in everything.names
    assert (
        everything.by_name()["conv"].relative_depth
        == list_layers(TupleAndDictNet(), input_size=8).by_name()["conv"].relative_depth
    )


def test_unknown_layer_names_close_matches_and_skipped_layers_explain_themselves():
    layers = list_layers(torchvision.models.resnet18(), input_size=64)
    with pytest.raises(ModelError, match=r"unknown layer 'layer1\.0\.relu'.*layer1\.0\.relu@1"):
        layers.select(["conv1", "layer1.0.relu"])
    with pytest.raises(ModelError, match="no layer matches"):
        layers.select("nothing*")
    assert [layer.name for layer in layers.select("layer4.?")] == ["layer4.0", "layer4.1"]
    with pytest.raises(ModelError, match="was skipped: 3 units < 24"):
        list_layers(TupleAndDictNet(), input_size=8).select(["head"])


def test_a_model_that_cannot_run_the_dummy_input_is_a_model_error():
    with pytest.raises(ModelError, match="dummy input failed"):
        list_layers(torch.nn.Linear(5, 5), input_size=8)


def test_layers_are_listed_on_the_device_the_network_is_on():
    """A network already moved to a device (by a previous extraction, by the user) gets its dummy input
    there. The meta device stands in for a GPU: it runs a forward pass with shapes only."""
    network = torchvision.models.resnet18(weights=None).to("meta")
    names = list_layers(network).frame()["name"].tolist()
    assert names[:2] == ["conv1", "bn1"] and "layer4.1" in names and names[-1] == "fc"


class Repeats(torch.nn.Module):
    """Layers that change values (conv, relu, fc) and layers that only repeat or move them."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.relu = torch.nn.ReLU(inplace=True)
        self.same = torch.nn.Identity()
        self.flat = torch.nn.Flatten()
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(4 * 30 * 30, 30)

    def forward(self, x):
        x = self.relu(self.conv(x))
        return self.fc(self.drop(self.flat(self.same(x))))


def test_distinct_skips_layers_that_repeat_an_earlier_layer_s_values():
    network = Repeats().eval()
    assert list_layers(network, input_size=32).names == ["conv", "relu", "same", "flat", "drop", "fc"]
    listing = list_layers(network, input_size=32, distinct=True)
    # the ReLU changes the conv's negative outputs on the noise images: it is a layer of its own
    assert listing.names == ["conv", "relu", "fc"]
    skipped = dict(listing.skipped)
    assert skipped["same"] == skipped["flat"] == skipped["drop"] == "the values of relu"
