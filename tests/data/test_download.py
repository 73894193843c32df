"""A data set missing from the data folder is fetched on first use (``load_dataset``), verified, into
``~/.cache/memprobe/data`` when ``MEMPROBE_DATA`` is unset; offline it is the clear DataError.

The source is a made-up three-image LNSIM, laid out as its GitHub repository and served on 127.0.0.1."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.io
from loopback import serve
from PIL import Image

from memprobe import config
from memprobe.cli import main
from memprobe.data import load_dataset, registry
from memprobe.errors import DataError

# Hit rates: half × split × image.
HALVES = np.array([[[0.2, 0.5, 0.9], [0.4, 0.5, 0.7]], [[0.3, 0.6, 0.8], [0.1, 0.4, 0.6]]])


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home folder and no $MEMPROBE_DATA: the data folder is the default one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMPROBE_DATA")
    return tmp_path / "home"


@pytest.fixture
def source(tmp_path, monkeypatch):
    """Serves the made-up LNSIM at its source's URLs (``<repository>/<commit>/<path>``); the package's
    manifest is replaced by one for these files."""
    info = registry.dataset_info("lnsim")
    repository = tmp_path / "served" / info.source.repository / info.source.commit
    files = {}
    for index in range(3):
        image = repository / "Image_data" / f"{index + 1:04d}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (80 * index, 40, 200)).save(image)
        files[f"lnsim/Image_data/{image.name}"] = image
    for half in (1, 2):
        mat = repository / "Random_splits" / f"subject_hrs{half}.mat"
        mat.parent.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(mat, {f"subject_hrs{half}": HALVES[half - 1]})
        files[f"lnsim/Random_splits/{mat.name}"] = mat
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "lnsim.sha256").write_text(
        "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {path}\n" for path, p in files.items())
    )
    monkeypatch.setattr(registry, "MANIFEST_DIR", manifests)
    with serve(tmp_path / "served") as server:
        monkeypatch.setenv("MEMPROBE_FETCH_BASE_URL", server.url + "/")
        yield server


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("MEMPROBE_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_without_memprobe_data_the_data_folder_is_the_default_one(home, data_root):
    assert config.data_root() == home / ".cache" / "memprobe" / "data"
    config.data_root().mkdir(parents=True)
    (config.data_root() / "lnsim").symlink_to(data_root / "lnsim")
    assert len(load_dataset("lnsim").stimuli) == 2632  # offline (conftest): found there, nothing fetched


def test_a_missing_data_set_is_fetched_on_first_use_verified_and_loaded(home, source, online):
    lnsim = load_dataset("lnsim")
    folder = home / ".cache" / "memprobe" / "data" / "lnsim"
    assert list(lnsim.stimuli.table.index) == ["0001", "0002", "0003"]
    assert lnsim.stimuli.table["image"].iloc[0] == str(folder / "Image_data" / "0001.jpg")
    np.testing.assert_allclose(lnsim.scores.values, HALVES.mean(axis=(0, 1)))
    assert len(source.log) == 5 and not list(folder.rglob("*.part"))
    assert "lnsim/Random_splits/subject_hrs1.mat" in (folder.parent / "SHA256SUMS").read_text()

    load_dataset("lnsim")  # complete: nothing is fetched
    assert len(source.log) == 5
    (folder / "Image_data" / "0002.jpg").unlink()
    load_dataset("lnsim")  # only the missing file is fetched
    assert [e["path"].rsplit("/", 1)[-1] for e in source.log[5:]] == ["0002.jpg"]


def test_a_corrupted_download_is_refused_and_removed(home, source, online):
    source.behaviour.corrupt = True
    with pytest.raises(DataError, match="checksum mismatch .*was deleted"):
        load_dataset("lnsim")
    folder = home / ".cache" / "memprobe" / "data" / "lnsim"
    assert not [p for p in folder.rglob("*") if p.is_file()]


def test_offline_a_missing_data_set_is_the_clear_error(home, source, monkeypatch, capsys):
    default = home / ".cache" / "memprobe" / "data"
    hint = rf"not in the data folder {default} .*memprobe data fetch lnsim --root {default}"
    with pytest.raises(DataError, match=hint):  # MEMPROBE_OFFLINE=1 (conftest)
        load_dataset("lnsim")
    monkeypatch.setenv("MEMPROBE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=hint):
        load_dataset("lnsim")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert main(["--offline", "data", "check-images", "lnsim"]) == 1
    assert capsys.readouterr().err.startswith("memprobe: error: data set 'lnsim' is not in the data folder")
    assert source.log == []


def test_an_unreachable_source_says_how_to_get_the_data(home, source, online, monkeypatch):
    monkeypatch.setenv("MEMPROBE_FETCH_BASE_URL", "http://127.0.0.1:1/")  # connection refused
    refused = r"cannot reach http://127\.0\.0\.1:1/.*memprobe data fetch lnsim --mirror DIR"
    with pytest.raises(DataError, match=refused):
        load_dataset("lnsim")
