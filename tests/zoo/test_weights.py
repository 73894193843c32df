"""Weights come from local caches only; random weights are explicit and seeded; errors say what to do."""

from __future__ import annotations

import hashlib

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from memprobe.errors import ModelError
from memprobe.zoo import get_spec, load_model


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def _assert_same_weights(network, state):
    own = network.state_dict()
    assert set(state) <= set(own)
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def _sha12(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.mark.parametrize(
    "identifier, wrap",
    [
        ("torchvision:resnet18", "plain"),
        ("cornet:Z", "dataparallel"),  # the official CORnet files: {'state_dict': {'module.V1...': ...}}
        ("pretrainedmodels:dpn68", "plain"),
        ("efficientnet:b0", "plain"),
    ],
)
def test_pretrained_loads_the_file_in_the_torch_hub_cache(torch_home, identifier, wrap):
    spec = get_spec(identifier)
    expected = spec.weights.expected_path()
    assert expected.parent == torch_home / "hub" / "checkpoints"
    with pytest.raises(ModelError) as missing:
        load_model(identifier)
    message = str(missing.value)
    assert str(expected) in message and spec.weights.url in message and "curl -L -o" in message

    state = load_model(identifier, weights="random", seed=3).network.state_dict()
    expected.parent.mkdir(parents=True)
    saved = {"state_dict": {f"module.{k}": v for k, v in state.items()}} if wrap == "dataparallel" else state
    torch.save(saved, expected)
    loaded = load_model(identifier)
    _assert_same_weights(loaded.network, state)
    assert loaded.weights_id == _sha12(expected)
    assert not loaded.network.training


def test_timm_pretrained_loads_from_the_hugging_face_cache(tmp_path, torch_home, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    identifier = "timm:resnet18.a1_in1k"
    with pytest.raises(
        ModelError, match=r"huggingface-cli download timm/resnet18\.a1_in1k model\.safetensors"
    ):
        load_model(identifier)
    state = load_model(identifier, weights="random", seed=5).network.state_dict()
    repo = tmp_path / "hf" / "models--timm--resnet18.a1_in1k"
    snapshot = repo / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    loaded = load_model(identifier)
    _assert_same_weights(loaded.network, state)
    assert loaded.weights_id == _sha12(snapshot / "model.safetensors")


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = load_model("cornet:S", weights="random", seed=1)
    b = load_model("cornet:S", weights="random", seed=1)
    c = load_model("cornet:S", weights="random", seed=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert a.weights_id == "random-seed1" and c.weights_id == "random-seed2"
    state_b = b.network.state_dict()
    for key, value in a.network.state_dict().items():
        assert torch.equal(value, state_b[key]), key
    conv = "V1.conv1.weight"
    assert not torch.equal(a.network.state_dict()[conv], c.network.state_dict()[conv])


def test_weights_from_a_file_path(tmp_path):
    state = load_model("torchvision:squeezenet1_1", weights="random", seed=7).network.state_dict()
    path = tmp_path / "finetuned.pt"
    torch.save(state, path)
    loaded = load_model("torchvision:squeezenet1_1", weights=path)
    _assert_same_weights(loaded.network, state)
    assert loaded.weights_id == _sha12(path)

    with pytest.raises(ModelError, match="no such file"):
        load_model("torchvision:squeezenet1_1", weights=tmp_path / "absent.pt")
    with pytest.raises(ModelError, match=r"finetuned\.pt does not fit torchvision:alexnet"):
        load_model("torchvision:alexnet", weights=path)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights file"):
        load_model("torchvision:squeezenet1_1", weights=tmp_path / "garbage.pt")
