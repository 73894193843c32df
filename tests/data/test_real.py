"""The loaders on the real data in MEMPROBE_DATA: counts, alignment and the published properties."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from memprobe.data import list_datasets, load_dataset
from memprobe.data.lamem import KINDS, SPLIT_NUMBERS

V4_SHAPES = {  # session: (neurons, images), from the data README
    "190923": (33, 1200),
    "190925": (36, 1200),
    "190927": (31, 1200),
    "190928": (24, 1200),
    "210224": (67, 800),
    "210225": (55, 1200),
    "210305": (70, 400),
    "210325": (50, 640),
}


def test_registry_names_every_data_set():
    assert set(list_datasets()) >= {"lnsim", "lamem", "cowley_v4", "rsa92", "imagenet_sample", "folder"}


@pytest.fixture(scope="module")
def lnsim(data_root):
    return load_dataset("lnsim", root=data_root)


def test_lnsim_counts_and_scores(lnsim):
    assert len(lnsim.stimuli) == 2632 == len(lnsim.scores)
    assert lnsim.stimuli.ids[0] == "0001" and lnsim.stimuli.ids[-1] == "2632"
    assert list(lnsim.scores.index) == lnsim.stimuli.ids
    assert lnsim.half_scores.dims == ("split", "half", "stimulus_id")
    assert lnsim.half_scores.shape == (25, 2, 2632)
    assert 0.14 < lnsim.scores.min() < 0.15 and 0.94 < lnsim.scores.max() < 0.95
    # the score is the mean of both halves over the 25 splits
    first = lnsim.half_scores.sel(stimulus_id="0001").values.mean()
    assert lnsim.scores["0001"] == pytest.approx(first)
    assert lnsim.stimuli.open("2632").size == Image.open(lnsim.stimuli.image_ref("2632")).size


def test_lnsim_human_split_half_consistency(lnsim):
    assert lnsim.split_half_consistency() == pytest.approx(0.78, abs=0.005)


def test_lamem_official_split_sizes(data_root):
    lamem = load_dataset("lamem", root=data_root)
    assert set(lamem.splits) == {(kind, k) for kind in KINDS for k in SPLIT_NUMBERS}
    for k in SPLIT_NUMBERS:
        sizes = [len(lamem.split(kind, k)) for kind in KINDS]
        assert sizes == [45_000, 3_741, 10_000]
        ids = [set(lamem.split(kind, k).index) for kind in KINDS]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # a split's parts are disjoint
        assert len(ids[0] | ids[1] | ids[2]) == 58_741
    assert len(lamem.scores) == 58_741
    assert lamem.scores.between(0.2, 1.0).all()
    assert lamem.stimuli is None  # the data folder has no lamem/images


@pytest.fixture(scope="module")
def v4(data_root):
    return load_dataset("cowley_v4", root=data_root)


def test_v4_sessions_and_shapes(v4):
    assert v4.sessions == sorted(V4_SHAPES)
    for session, (neurons, images) in V4_SHAPES.items():
        data = v4.session(session)
        assert data.responses.dims == ("presentation", "neuroid")
        assert data.responses.shape == (images, neurons) and len(data.stimuli) == images
        assert data.stimuli.name == f"cowley_v4.{session}"
        assert list(data.responses["stimulus_id"].values) == data.stimuli.ids
        assert set(data.responses["region"].values) == {"V4"} and set(data.responses["session"].values) == {
            session
        }
        assert data.responses["neuroid_id"].to_index().is_unique


def test_v4_zip_stored_out_of_order_still_maps_image0001_to_column_0(v4, data_root):
    archive = data_root / "cowley_v4" / "images" / "images_190925.zip"
    with zipfile.ZipFile(archive) as handle:
        names = handle.namelist()
        in_zip_order = Image.open(handle.open(names[0])).convert("RGB")
        image0001 = Image.open(handle.open("image0001.jpg")).convert("RGB")
    assert names[0] != "image0001.jpg"  # this is the shuffled zip
    session = v4.session("190925")
    first = session.responses.isel(presentation=0)
    assert str(first["stimulus_id"].values) == "190925/image0001"
    opened = np.asarray(session.stimuli.open(str(first["stimulus_id"].values)))
    assert np.array_equal(opened, np.asarray(image0001))
    assert not np.array_equal(opened, np.asarray(in_zip_order))
    assert session.stimuli.image_ref("190925/image1200").endswith("!image1200.jpg")
    raw_column0 = np.load(data_root / "cowley_v4" / "responses_repeat_averaged" / "responses_190925.npy")[
        :, 0
    ]
    assert np.array_equal(first.values, raw_column0)


def test_v4_images_in_a_sub_folder(v4):
    session = v4.session("190923")
    assert session.stimuli.image_ref("190923/image0007").endswith("!images_190923/image0007.jpg")
    assert session.stimuli.open("190923/image0007").size == (112, 112)


def test_v4_raw_repeats_average_to_the_published_means(v4):
    session = v4.session("210325")
    assert session.raw.dims == ("presentation", "neuroid", "repetition")
    assert session.raw.shape == (640, 50, 10)
    assert np.isnan(session.raw.values).any()  # the NaN padding is kept
    np.testing.assert_allclose(np.nanmean(session.raw.values, axis=2), session.responses.values)
    assert all(v4.session(s).raw is None for s in V4_SHAPES if s != "210325")


def test_rsa92_images_categories_and_rdms(data_root, tmp_path):
    data = load_dataset("rsa92", root=data_root, image_dir=tmp_path)
    assert len(data.stimuli) == 92
    assert data.stimuli.table["category"].value_counts().to_dict() == {
        "natural inanimate": 23,
        "artificial inanimate": 21,
        "human bodypart": 12,
        "human face": 12,
        "nonhuman bodypart": 12,
        "nonhuman face": 12,
    }
    assert data.stimuli.table["in_animate"].sum() == 48 and data.stimuli.table["in_face"].sum() == 24
    assert data.stimuli.open("obj01").size == (175, 175)
    assert {"monkey_IT", "human_IT"} <= set(data.rdms) and len(data.rdms) == 10
    for name, rdm in data.rdms.items():
        values = rdm.values
        assert values.shape == (92, 92), name
        assert np.allclose(values, values.T), name
        assert np.all(np.diag(values) == 0), name
        assert list(rdm["stimulus_id"].values) == data.stimuli.ids
    # the fig. 1 vector unpacks in MATLAB's squareform order: it equals the model file's full monkey-IT matrix
    models = scipy.io.loadmat(
        data_root / "rsa92" / "92_modelRDMs.mat", squeeze_me=True, struct_as_record=False
    )
    monkey = next(m for m in np.atleast_1d(models["Models"]) if m.name == "monkeyIT")
    np.testing.assert_allclose(data.rdms["monkey_IT"].values, monkey.RDM)


def test_rsa92_pngs_are_written_once_and_repaired(data_root, tmp_path):
    load_dataset("rsa92", root=data_root, image_dir=tmp_path)
    first = tmp_path / "obj01.png"
    stamp = first.stat().st_mtime_ns
    (tmp_path / "obj02.png").write_bytes(b"half-written")
    again = load_dataset("rsa92", root=data_root, image_dir=tmp_path)
    assert first.stat().st_mtime_ns == stamp  # unchanged files are not rewritten
    assert again.stimuli.open("obj02").size == (175, 175)  # a damaged file is rewritten
    assert not list(tmp_path.glob("*.tmp"))


def test_imagenet_sample_labels(data_root):
    stimuli = load_dataset("imagenet_sample", root=data_root).stimuli
    assert len(stimuli) == 1000
    assert list(stimuli.table["label"]) == list(range(1000))
    assert stimuli.table.loc["n01440764", "class_name"] == "tench"
    assert stimuli.table.loc["n15075141", "label"] == 999
    assert stimuli.open("n01440764").mode == "RGB"
