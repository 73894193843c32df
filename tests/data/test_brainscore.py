"""Brain-Score assemblies → memprobe's format, on assemblies built in brainio's layout with plain xarray."""

from __future__ import annotations

import importlib.util
import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from memprobe.data import load_dataset
from memprobe.data.brainscore import convert_assembly, load_brainscore
from memprobe.errors import DataError

STIMULI = [f"img{i}" for i in range(6)]
OBJECTS = ["car", "car", "dog", "dog", "face", "face"]
REPEATS = [3, 2, 3, 1, 3, 3]  # unequal, as in real recordings


def make_assembly(time_bins=((70, 170),), seed=0):
    """A NeuroidAssembly-like DataArray: shuffled trials, MultiIndexed dims, V4 and IT neuroids."""
    rng = np.random.default_rng(seed)
    trials = [(s, o, r) for s, o, n in zip(STIMULI, OBJECTS, REPEATS, strict=True) for r in range(n)]
    trials = [trials[i] for i in rng.permutation(len(trials))]
    values = rng.normal(size=(len(trials), 5, len(time_bins)))
    assembly = xr.DataArray(
        values,
        dims=("presentation", "neuroid", "time_bin"),
        coords={
            "stimulus_id": ("presentation", [t[0] for t in trials]),
            "object_name": ("presentation", [t[1] for t in trials]),
            "repetition": ("presentation", [t[2] for t in trials]),
            "neuroid_id": ("neuroid", [f"A-{i}" for i in range(5)]),
            "region": ("neuroid", ["V4", "V4", "IT", "IT", "IT"]),
            "time_bin_start": ("time_bin", [b[0] for b in time_bins]),
            "time_bin_end": ("time_bin", [b[1] for b in time_bins]),
        },
    )
    assembly = assembly.set_index(
        presentation=["stimulus_id", "object_name", "repetition"],
        neuroid=["neuroid_id", "region"],
        time_bin=["time_bin_start", "time_bin_end"],
    )
    return assembly, trials, values


def stimulus_set():
    return pd.DataFrame({"stimulus_id": STIMULI, "object_name": OBJECTS, "variation": [0, 3, 0, 3, 6, 6]})


def test_repeat_average_raw_repeats_and_coordinates():
    assembly, trials, values = make_assembly()
    paths = {s: f"/images/{s}.png" for s in STIMULI}
    data = convert_assembly(assembly, stimulus_set(), region="IT", stimulus_paths=paths, name="toy.IT")
    order = list(dict.fromkeys(t[0] for t in trials))  # first appearance
    assert list(data.responses["stimulus_id"].values) == order == data.stimuli.ids
    assert data.responses.dims == ("presentation", "neuroid")
    assert list(data.responses["neuroid_id"].values) == ["A-2", "A-3", "A-4"]
    assert set(data.responses["region"].values) == {"IT"}
    assert "repetition" not in data.responses.coords  # a per-trial coordinate is dropped
    for stimulus, obj, n in zip(STIMULI, OBJECTS, REPEATS, strict=True):
        mine = [i for i, t in enumerate(trials) if t[0] == stimulus]
        row = data.responses.sel(presentation=order.index(stimulus))
        np.testing.assert_allclose(row.values, values[mine, 2:, 0].mean(axis=0))
        assert str(row["object_name"].values) == obj
        raw = data.raw.isel(presentation=order.index(stimulus)).values
        assert np.isfinite(raw[:, :n]).all() and np.isnan(raw[:, n:]).all()
        # repetitions are placed by their repetition number
        by_rep = {trials[i][2]: values[i, 2:, 0] for i in mine}
        for rep, expected in by_rep.items():
            np.testing.assert_allclose(raw[:, rep], expected)
    assert data.raw.shape == (6, 3, 3)
    assert (
        data.stimuli.table.loc["img5", "variation"] == 6
        and data.stimuli.image_ref("img5") == "/images/img5.png"
    )


def test_time_window_averages_one_ms_bins_like_freeman_ziemba():
    bins = tuple((t, t + 1) for t in range(40, 210))
    assembly, trials, values = make_assembly(time_bins=bins)
    paths = dict.fromkeys(STIMULI, "x")
    data = convert_assembly(assembly, stimulus_set(), time_window=(50, 200), stimulus_paths=paths)
    inside = [i for i, (start, end) in enumerate(bins) if start >= 50 and end <= 200]
    assert len(inside) == 150
    order = list(data.raw["stimulus_id"].values)
    for i, (stimulus, _, repetition) in enumerate(trials):
        np.testing.assert_allclose(
            data.raw.isel(presentation=order.index(stimulus), repetition=repetition).values,
            values[i, :, inside].mean(axis=0),
        )
    with pytest.raises(DataError, match="170 time bins; pass time_window"):
        convert_assembly(assembly, stimulus_set(), stimulus_paths=paths)


def test_stimulus_paths_from_the_stimulus_set_itself():
    class BrainioStimulusSet(pd.DataFrame):
        _metadata = ["stimulus_paths"]

    assembly, _, _ = make_assembly()
    stimuli = BrainioStimulusSet(stimulus_set())
    stimuli.stimulus_paths = {s: f"/cache/{s}.jpg" for s in STIMULI}
    assembly.attrs["stimulus_set"] = stimuli
    data = convert_assembly(assembly)
    assert data.stimuli.image_ref("img0") == "/cache/img0.jpg"


def test_conversion_errors():
    assembly, _, _ = make_assembly()
    paths = dict.fromkeys(STIMULI, "x")
    with pytest.raises(DataError, match="no neuroids in region 'V1'"):
        convert_assembly(assembly, stimulus_set(), region="V1", stimulus_paths=paths)
    with pytest.raises(DataError, match="not in its stimulus set"):
        convert_assembly(assembly, stimulus_set().iloc[:3], stimulus_paths=paths)
    with pytest.raises(DataError, match="no image path"):
        convert_assembly(assembly, stimulus_set(), stimulus_paths={"img0": "x"})
    with pytest.raises(DataError, match="carries no stimulus_set"):
        convert_assembly(assembly)


@pytest.mark.skipif(
    importlib.util.find_spec("brainscore_vision") is not None, reason="brainscore_vision installed"
)
def test_without_brainscore_vision_the_error_says_what_to_do():
    with pytest.raises(DataError, match="pip install brainscore-vision.*assembly_file="):
        load_dataset("brainscore", identifier="MajajHong2015public.IT")
    with pytest.raises(DataError, match="unknown Brain-Score assembly"):
        load_brainscore("MajajHong2015public.V9")


def test_local_brainio_files(tmp_path):
    """The files brainscore_vision caches: assembly .nc, stimulus set .csv and .zip of images."""
    assembly, _, _ = make_assembly()
    assembly.reset_index(["presentation", "neuroid", "time_bin"]).to_netcdf(
        tmp_path / "assy_MajajHong2015_public.nc",
        engine="scipy",  # netCDF3: h5py is not installed here
    )
    table = stimulus_set().assign(filename=[f"{s}.png" for s in STIMULI])
    table.to_csv(tmp_path / "stimulus_hvm.csv", index=False)
    with zipfile.ZipFile(tmp_path / "stimulus_hvm.zip", "w") as archive:
        for i, stimulus in enumerate(STIMULI):
            path = tmp_path / f"{stimulus}.png"
            Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(path)
            archive.write(path, f"hvm/{stimulus}.png")
    data = load_brainscore(
        "MajajHong2015public.V4",
        assembly_file=tmp_path / "assy_MajajHong2015_public.nc",
        stimulus_csv=tmp_path / "stimulus_hvm.csv",
        stimulus_zip=tmp_path / "stimulus_hvm.zip",
    )
    assert data.responses.shape == (6, 2) and set(data.responses["region"].values) == {"V4"}
    assert data.responses.attrs["stratification_coord"] == "object_name"
    assert data.stimuli.open("img3").getpixel((0, 0)) == (120, 0, 0)
    assert data.stimuli.name == "MajajHong2015public.V4"
