"""Hooked streaming extraction: values, in-place ReLU safety, bad images, non-tensor outputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from extract_fixtures import CountingNet, TupleAndDictNet, image_set, tiny_model

from memprobe.errors import DataError, ModelError
from memprobe.features import extract
from memprobe.features.reducers import LayerReduction, SketchReducer
from memprobe.features.store import ActivationStore


def _inputs(model, stimuli):
    transform = model.preprocessing.transform()
    return torch.stack([transform(stimuli.open(sid)) for sid in stimuli.ids])


def test_kept_conv_output_is_not_overwritten_by_the_following_inplace_relu(tmp_path):
    model = tiny_model()
    stimuli = image_set(tmp_path / "images", 6)
    features = extract(
        model,
        stimuli,
        ["conv", "relu@1"],
        "none",
        ActivationStore(tmp_path / "s"),
        batch_size=4,
        num_workers=0,
        progress=False,
    )
    with torch.no_grad():
        expected = model.network.conv(_inputs(model, stimuli)).flatten(1).numpy()
    conv = features["conv"].values
    assert (expected < 0).any()  # the property only means something when the ReLU would change values
    np.testing.assert_allclose(conv, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features["relu@1"].values, np.maximum(expected, 0), rtol=1e-5, atol=1e-6)
    assert list(features["conv"].stimulus_id.values) == stimuli.ids
    assert features["conv"].dims == ("presentation", "neuroid")


def test_only_requested_layers_run_and_forward_stops_after_the_last_one(tmp_path):
    network = CountingNet()
    model = tiny_model(network)
    stimuli = image_set(tmp_path / "images", 5)
    calls = []
    network.fc.register_forward_hook(lambda *args: calls.append("fc"))
    features = extract(
        model,
        stimuli,
        "relu@1",
        "pool",
        ActivationStore(tmp_path / "s"),
        batch_size=2,
        num_workers=0,
        progress=False,
    )
    assert list(features) == ["relu@1"] and features["relu@1"].shape == (5, 4)
    assert calls == ["fc"]  # only the layer-listing dummy pass reached fc; the batches stopped early


def test_model_with_tuple_dict_and_non_tensor_outputs_extracts(tmp_path):
    model = tiny_model(TupleAndDictNet(), id="test:tuple-dict")
    stimuli = image_set(tmp_path / "images", 3)
    features = extract(
        model,
        stimuli,
        None,
        "pool",
        ActivationStore(tmp_path / "s"),
        batch_size=2,
        num_workers=0,
        progress=False,
    )
    assert set(features) == {"conv", "split", "as_dict"}
    np.testing.assert_allclose(features["split"].values, 2 * features["conv"].values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features["as_dict"].values, features["split"].values + 1, rtol=1e-5, atol=1e-5)


def test_unknown_layer_is_a_model_error_naming_close_matches(tmp_path):
    with pytest.raises(ModelError, match=r"unknown layer 'relu'.*relu@1"):
        extract(
            tiny_model(),
            image_set(tmp_path / "images", 2),
            ["relu"],
            "none",
            ActivationStore(tmp_path / "s"),
            progress=False,
        )


def _corrupt(stimuli, stimulus_id):
    with open(stimuli.image_ref(stimulus_id), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n this is not an image")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_bad_image_mid_run_names_the_image_and_keeps_finished_batches(tmp_path, num_workers):
    network = CountingNet()
    model = tiny_model(network)
    stimuli = image_set(tmp_path / "images", 10)
    _corrupt(stimuli, "s005")
    store = ActivationStore(tmp_path / "s")
    with pytest.raises(DataError, match=r"image 's005' \(.*img005\.png\)"):
        extract(
            model, stimuli, ["conv2"], "pool", store, batch_size=4, num_workers=num_workers, progress=False
        )
    network.forward_calls = 0
    features = extract(
        model,
        stimuli,
        ["conv2"],
        "pool",
        store,
        batch_size=4,
        num_workers=num_workers,
        skip_bad_images=True,
        progress=False,
    )
    assert network.forward_calls == 1 + 2  # the dummy pass, then only batches 1 and 2: batch 0 was kept
    conv2 = features["conv2"]
    assert "s005" not in conv2.stimulus_id.values and conv2.shape == (9, 4)
    assert conv2.attrs["dropped_stimuli"] == ["s005"] and "s005" in features.bad_stimuli
    assert np.isfinite(conv2.values).all()
    clean = extract(
        model,
        stimuli.subset(ids=[s for s in stimuli.ids if s != "s005"]),
        ["conv2"],
        "pool",
        store,
        batch_size=4,
        num_workers=0,
        progress=False,
    )
    np.testing.assert_allclose(conv2.values, clean["conv2"].values, rtol=1e-5, atol=1e-6)


class BlockNet(torch.nn.Module):
    """A block returning its last ReLU's output as is, and one that doubles it in place afterwards."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True))
        self.doubled = Doubled()

    def forward(self, x):
        return self.doubled(self.block(x))


class Doubled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x)).mul_(2)


class CountingSketch(SketchReducer):
    def __init__(self, dim):
        super().__init__(dim)
        self.reduced = []

    def for_layer(self, layer, shape, device):
        reduction = super().for_layer(layer, shape, device)

        def counted(batch):
            self.reduced.append(layer)
            return reduction(batch)

        return LayerReduction(counted, reduction.dim, reduction.same_as)


def test_a_tensor_two_layers_output_is_reduced_once_unless_changed_in_place_between(tmp_path):
    model = tiny_model(BlockNet())
    stimuli = image_set(tmp_path / "images", 5)
    reducer = CountingSketch(64)
    options = {"batch_size": 5, "num_workers": 0, "progress": False}
    features = extract(model, stimuli, None, reducer, ActivationStore(tmp_path / "s"), **options)
    assert reducer.reduced.count("block.1") == 1 and "block" not in reducer.reduced  # rows reused
    assert reducer.reduced.count("doubled.relu") == 1 and reducer.reduced.count("doubled") == 1
    np.testing.assert_array_equal(features["block"].values, features["block.1"].values)
    np.testing.assert_allclose(features["doubled"].values, 2 * features["doubled.relu"].values, rtol=1e-5)
    raw = extract(model, stimuli, None, "none", ActivationStore(tmp_path / "raw"), **options)
    with torch.no_grad():
        block = model.network.block(_inputs(model, stimuli))
        doubled = model.network.doubled(block.clone())
    np.testing.assert_allclose(raw["block"].values, block.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(raw["doubled"].values, doubled.flatten(1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_extraction_gives_the_cpu_features_and_leaves_the_model_where_it_was(tmp_path):
    """Pinned-memory batches, hooks and the reducers' sparse products on the GPU, in full float32 (no
    TF32, PyTorch's default for convolutions): the same numbers as on the CPU."""
    from memprobe.zoo import load_model

    model = load_model("torchvision:resnet18", weights="random", seed=0)
    stimuli = image_set(tmp_path / "images", 10)
    layers = ["layer1", "layer3.1", "fc"]
    for reducer in ("sketch:512", "srp:512", "pool", "none"):
        cpu, cuda = (extract(model, stimuli, layers, reducer, ActivationStore(tmp_path / f"{reducer}-{d}"),
                             batch_size=4, device=d, num_workers=0, progress=False) for d in ("cpu", "cuda"))
        for layer in layers:
            expected = cpu[layer].values
            np.testing.assert_allclose(cuda[layer].values, expected, rtol=1e-4,
                                       atol=1e-4 * np.abs(expected).max(), err_msg=f"{reducer} {layer}")
        assert next(model.network.parameters()).device.type == "cpu"
    assert torch.backends.cudnn.allow_tf32  # the setting is restored after extraction


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_feature_maps_stay_with_the_process_for_the_next_batch():
    # In a child process: the setting is process-wide.
    code = """
import numpy as np
from memprobe.features.extract import keep_freed_memory

def resident_after_freeing():
    block = np.ones(16 * 2**20)  # 128 MB, as big as a batch's feature map
    del block
    return int(open("/proc/self/statm").read().split()[1]) * 4096

before = resident_after_freeing()
print(keep_freed_memory(), resident_after_freeing() - before)
"""
    took, kept = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split()
    assert took == "True"
    assert int(kept) > 100 * 2**20
