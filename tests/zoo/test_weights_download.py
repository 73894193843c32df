"""Pretrained weights download on first use, verified and atomically, from a server on 127.0.0.1; offline
(or unreachable) they are the clear ModelError; ``memprobe models fetch --mirror`` fills the caches."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from functools import partial

import huggingface_hub.constants
import pytest
import torch
import torchvision
from loopback import serve
from safetensors.torch import save_file

from memprobe.cli import main
from memprobe.errors import ModelError
from memprobe.zoo import cli as zoo_cli
from memprobe.zoo import get_spec, load_model, registry
from memprobe.zoo.weights import HubCheckpoint, load_state_dict

IDENTIFIER = "torchvision:resnet18"


@pytest.fixture(scope="module")
def checkpoint() -> tuple[str, bytes, dict]:
    """A random resnet18's state dict under the name torch hub would give it: resnet18-<sha256[:8]>.pth."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    return f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth", data, state


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("MEMPROBE_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def server(tmp_path, checkpoint):
    name, data, _ = checkpoint
    (tmp_path / "served" / "models").mkdir(parents=True)
    (tmp_path / "served" / "models" / name).write_bytes(data)
    with serve(tmp_path / "served") as running:
        yield running


def _build_resnet18(location: HubCheckpoint, pretrained: bool) -> torch.nn.Module:
    network = torchvision.models.resnet18()
    if pretrained:
        network.load_state_dict(load_state_dict(location.locate()))
    return network


def _serve_resnet18_from(url: str, monkeypatch) -> HubCheckpoint:
    """Make torchvision:resnet18's weights the file at ``url`` (checked against the hash in its name)."""
    location = HubCheckpoint(url, check_hash=True)
    spec = dataclasses.replace(
        get_spec(IDENTIFIER), weights=location, builder=partial(_build_resnet18, location)
    )
    real_get_spec = registry.get_spec
    patched = lambda identifier: spec if identifier == IDENTIFIER else real_get_spec(identifier)  # noqa: E731
    monkeypatch.setattr(registry, "get_spec", patched)
    monkeypatch.setattr(zoo_cli, "get_spec", patched)
    return location


@pytest.fixture
def loopback_resnet18(server, checkpoint, monkeypatch) -> HubCheckpoint:
    return _serve_resnet18_from(f"{server.url}/models/{checkpoint[0]}", monkeypatch)


def _assert_weights(network, state):
    own = network.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_first_use_downloads_verifies_and_loads(online, torch_home, loopback_resnet18, server, checkpoint):
    name, data, state = checkpoint
    loaded = load_model(IDENTIFIER)
    path = torch_home / "hub" / "checkpoints" / name
    assert path.read_bytes() == data and not path.with_name(name + ".part").exists()
    _assert_weights(loaded.network, state)
    assert loaded.weights_id == hashlib.sha256(data).hexdigest()[:12]
    assert [(e["path"], e["range"]) for e in server.log] == [(f"/models/{name}", None)]

    load_model(IDENTIFIER)  # the cached file is used as it is
    assert len(server.log) == 1


def test_file_that_fails_its_hash_is_refused_and_removed(online, torch_home, loopback_resnet18, server):
    server.behaviour.corrupt = True
    with pytest.raises(ModelError) as refused:
        load_model(IDENTIFIER)
    message = str(refused.value)
    assert "could not be fetched" in message and "checksum mismatch" in message
    assert loopback_resnet18.url in message and "was deleted" in message
    assert not list(loopback_resnet18.expected_path().parent.iterdir())  # neither the file nor a .part

    server.behaviour.corrupt = False
    assert load_model(IDENTIFIER).weights_id


@pytest.mark.parametrize("ranges", [True, False], ids=["server-resumes", "server-ignores-range"])
def test_dropped_connection_leaves_no_final_file_and_the_next_call_completes(
    online, torch_home, loopback_resnet18, server, checkpoint, ranges
):
    name, data, state = checkpoint
    server.behaviour.ranges = ranges
    server.behaviour.cut_after = 1_000_000  # every attempt of the first call breaks off
    with pytest.raises(ModelError, match="interrupted.*rerunning the same command resumes"):
        load_model(IDENTIFIER)
    path = loopback_resnet18.expected_path()
    part = path.with_name(name + ".part")
    assert not path.exists()
    # three attempts (two retries) within the call: resumed from where each broke off, or started over
    assert part.stat().st_size == (3_000_000 if ranges else 1_000_000)
    assert part.read_bytes() == data[: part.stat().st_size]

    server.behaviour.cut_after = None
    have = part.stat().st_size
    _assert_weights(load_model(IDENTIFIER).network, state)
    last = server.log[-1]
    assert last["range"] == f"bytes={have}-"
    assert (last["status"], last["sent"]) == ((206, len(data) - have) if ranges else (200, len(data)))
    assert path.read_bytes() == data and not part.exists()


def test_offline_or_unreachable_is_the_clear_error(
    online, torch_home, loopback_resnet18, server, monkeypatch, capsys
):
    path, url = loopback_resnet18.expected_path(), loopback_resnet18.url
    layers = ["layers", IDENTIFIER, "--weights", "pretrained"]
    assert main(["--offline", *layers]) == 1
    for variable in ("MEMPROBE_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(variable, "1")
        assert main(layers) == 1
        monkeypatch.setenv(variable, "0")
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3
    prefix = f"memprobe: error: pretrained weights for {IDENTIFIER}"
    for line in errors:
        assert line.startswith(f"{prefix} are not on this machine and downloads are off:")
        assert str(path) in line and url in line and "curl -L -o" in line
        assert f"memprobe models fetch {IDENTIFIER}" in line
    assert server.log == []

    # a machine without internet: the connection is refused
    refused = _serve_resnet18_from(f"http://127.0.0.1:1/models/{path.name}", monkeypatch)
    assert main(layers) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"{prefix} could not be fetched: cannot reach")
    assert refused.url in error and str(path) in error and "Traceback" not in error
    assert not path.parent.exists() or not list(path.parent.iterdir())


def _cornet_z_checkpoint() -> tuple[bytes, dict]:
    """CORnet-Z's official file format: ``{'state_dict': {'module.<key>': ...}}``."""
    state = load_model("cornet:Z", weights="random", seed=4).network.state_dict()
    buffer = io.BytesIO()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, buffer)
    return buffer.getvalue(), state


def test_models_fetch_from_a_mirror_folder_or_url(tmp_path, torch_home, monkeypatch, capsys):
    # conftest keeps MEMPROBE_OFFLINE=1: a mirror still works, as on a compute node without internet
    mirror = tmp_path / "mirror"
    data, state = _cornet_z_checkpoint()
    target = mirror / "s3.amazonaws.com" / "cornet-models" / "cornet_z-5c427c9c.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    expected = get_spec("cornet:Z").weights.expected_path()

    assert main(["models", "fetch", "cornet:Z", "--mirror", str(mirror)]) == 0
    assert f"cornet:Z  fetched  {expected}" in capsys.readouterr().out
    _assert_weights(load_model("cornet:Z").network, state)
    assert main(["models", "fetch", "cornet:Z", "--mirror", str(mirror)]) == 0
    assert f"cornet:Z  present  {expected}" in capsys.readouterr().out

    expected.unlink()
    with serve(mirror) as server:
        assert main(["models", "fetch", "cornet:Z", "--mirror", server.url + "/"]) == 0
        assert [e["path"] for e in server.log] == ["/s3.amazonaws.com/cornet-models/cornet_z-5c427c9c.pth"]
    assert expected.read_bytes() == data

    # torchvision's file names carry the start of their sha256: a file that does not match is refused
    fake = mirror / "download.pytorch.org" / "models" / "resnet18-f37072fd.pth"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(data)
    capsys.readouterr()
    assert main(["models", "fetch", "cornet:Z", IDENTIFIER, "--mirror", str(mirror)]) == 1
    out = capsys.readouterr().out
    assert f"{IDENTIFIER}  FAILED  pretrained weights for {IDENTIFIER} could not be fetched" in out
    assert "checksum mismatch" in out and "1 of 2 models have their pretrained weights" in out
    assert not (torch_home / "hub" / "checkpoints" / fake.name).exists()


def test_models_fetch_puts_hugging_face_files_where_timm_finds_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    identifier = "timm:resnet18.a1_in1k"
    state = load_model(identifier, weights="random", seed=2).network.state_dict()
    mirrored = tmp_path / "mirror" / "huggingface.co" / "timm" / "resnet18.a1_in1k" / "resolve" / "main"
    mirrored.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(mirrored / "model.safetensors"))

    assert main(["models", "fetch", identifier, "--mirror", str(tmp_path / "mirror")]) == 0
    cached = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "main" / "model.safetensors"
    assert f"{identifier}  fetched  {cached}" in capsys.readouterr().out
    _assert_weights(load_model(identifier).network, state)


def test_timm_weights_come_through_hf_hub_download_and_are_checked(online, tmp_path, monkeypatch):
    identifier = "timm:resnet18.a1_in1k"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    state = load_model(identifier, weights="random", seed=3).network.state_dict()
    served = tmp_path / "hub" / "timm" / "resnet18.a1_in1k" / "resolve" / "main"
    served.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(served / "model.safetensors"))
    with serve(tmp_path / "hub") as hub:
        hub.behaviour.hugging_face = True
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)

        hub.behaviour.corrupt = True  # right size, wrong content: huggingface_hub alone would keep it
        with pytest.raises(ModelError, match="sha256 is not the Hub's .*the file was deleted"):
            load_model(identifier)
        hub.behaviour.corrupt = False
        _assert_weights(load_model(identifier).network, state)
    assert get_spec(identifier).weights.locate().read_bytes() == (served / "model.safetensors").read_bytes()


def test_models_fetch_offline_without_mirror_says_how(torch_home, capsys):
    assert main(["models", "fetch", "cornet:S"]) == 1
    out = capsys.readouterr().out
    assert "cornet:S  FAILED  pretrained weights for cornet:S are not on this machine and downloads are off" \
        in out
    assert "https://s3.amazonaws.com/cornet-models/cornet_s-1d3f7974.pth" in out


def test_models_lists_where_each_file_is_expected(torch_home, capsys):
    assert main(["models", "cornet:Z"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[-2:] == ["file", "weights"]
    assert row.split()[-2:] == [str(get_spec("cornet:Z").weights.expected_path()), "no"]
