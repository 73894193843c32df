"""Bad input gets a clear DataError naming the file, line and image: LaMem splits and user folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memprobe.data import load_dataset
from memprobe.data.lamem import KINDS, SPLIT_NUMBERS, load_lamem
from memprobe.errors import DataError

NAMES = [f"{i:08d}.jpg" for i in range(1, 7)]


def write_image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def make_lamem(root: Path, images: bool = True) -> Path:
    """A tiny LaMem: 6 images; split k uses images rotated by k into train (4) / val (1) / test (1)."""
    splits = root / "lamem" / "splits"
    splits.mkdir(parents=True)
    for k in SPLIT_NUMBERS:
        order = NAMES[k:] + NAMES[:k]
        parts = {"train": order[:4], "val": order[4:5], "test": order[5:]}
        for kind in KINDS:
            lines = [f"{name} {0.5 + 0.01 * (i + k):.6f}" for i, name in enumerate(parts[kind])]
            (splits / f"{kind}_{k}.txt").write_text("\n".join(lines) + "\n")
    if images:
        for i, name in enumerate(NAMES):
            write_image(root / "lamem" / "images" / name, 40 * i)
    return root


def test_lamem_with_an_images_folder(tmp_path):
    lamem = load_lamem(make_lamem(tmp_path))
    assert [len(lamem.split(kind, 1)) for kind in KINDS] == [4, 1, 1]
    assert sorted(lamem.stimuli.ids) == [n[:-4] for n in NAMES]
    assert lamem.stimuli.open("00000003").getpixel((0, 0)) == (80, 80, 80)
    # each split file carries its own score; `scores` is the mean over the files that list the image
    listed = [lamem.split(kind, k).get("00000001") for kind in KINDS for k in SPLIT_NUMBERS]
    assert lamem.scores["00000001"] == pytest.approx(np.mean([s for s in listed if s is not None]))


def test_lamem_missing_image_names_split_file_line_and_image(tmp_path):
    root = make_lamem(tmp_path)
    (root / "lamem" / "images" / "00000004.jpg").unlink()
    with pytest.raises(DataError) as info:
        load_lamem(root)
    message = str(info.value)
    assert "00000004.jpg" in message and "train_1.txt, line 3" in message and "not in" in message


@pytest.mark.parametrize("bad_score", ["nan", "1.5", "-0.1"])
def test_lamem_score_nan_or_out_of_range_names_file_and_line(tmp_path, bad_score):
    root = make_lamem(tmp_path, images=False)
    split = root / "lamem" / "splits" / "val_2.txt"
    split.write_text(f"00000002.jpg {bad_score}\n")
    with pytest.raises(DataError, match=rf"val_2.txt, line 1: score {bad_score} of image 00000002.jpg"):
        load_lamem(root)


def test_lamem_malformed_line_and_missing_split_file(tmp_path):
    root = make_lamem(tmp_path, images=False)
    (root / "lamem" / "splits" / "test_3.txt").write_text("00000001.jpg 0.5\n00000002.jpg\n")
    with pytest.raises(DataError, match=r"test_3.txt, line 2: expected '<image name> <score>'"):
        load_lamem(root)
    (root / "lamem" / "splits" / "test_3.txt").unlink()
    with pytest.raises(DataError, match="missing split file .*test_3.txt"):
        load_lamem(root)


def test_lamem_image_listed_twice_in_one_split_file(tmp_path):
    root = make_lamem(tmp_path, images=False)
    (root / "lamem" / "splits" / "train_4.txt").write_text(
        "00000001.jpg 0.5\n00000002.jpg 0.5\n00000001.jpg 0.6\n"
    )
    with pytest.raises(DataError, match=r"train_4.txt lists image 00000001.jpg twice, on lines \[1, 3\]"):
        load_lamem(root)


def test_missing_data_set_says_how_to_fetch(tmp_path):
    with pytest.raises(DataError, match="memprobe data fetch lnsim"):
        load_dataset("lnsim", root=tmp_path)
    with pytest.raises(DataError, match="unknown data set 'nope'"):
        load_dataset("nope")


def make_folder(root: Path, csv: str | None) -> Path:
    write_image(root / "a.jpg", 10)
    write_image(root / "b.png", 20)
    write_image(root / "sub" / "c.jpg", 30)
    if csv is not None:
        (root / "scores.csv").write_text(csv)
    return root


def test_folder_with_csv_of_scores(tmp_path):
    folder = make_folder(tmp_path, "image,score,photographer\na.jpg,0.25,ann\nsub/c,0.75,bob\n")
    data = load_dataset("folder", root=folder)
    assert data.stimuli.ids == ["a", "sub/c"]  # only what the CSV lists, in its order
    assert list(data.scores) == [0.25, 0.75]
    assert data.stimuli.table.loc["sub/c", "photographer"] == "bob"
    assert data.stimuli.open("sub/c").getpixel((0, 0)) == (30, 30, 30)


def test_folder_with_stimulus_id_and_custom_score_column(tmp_path):
    folder = make_folder(tmp_path, None)
    (tmp_path / "ratings.csv").write_text("stimulus_id,hit_rate\nb,7.5\n")
    data = load_dataset(
        "folder", root=folder, csv=tmp_path / "ratings.csv", score_column="hit_rate", score_range=None
    )
    assert data.scores["b"] == 7.5 and data.stimuli.image_ref("b").endswith("b.png")


def test_folder_without_csv_lists_every_image(tmp_path):
    data = load_dataset("folder", root=make_folder(tmp_path, None))
    assert data.scores is None and data.stimuli.ids == ["a", "b", "sub/c"]


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no images"):
        load_dataset("folder", root=empty)

    cases = {
        "image,rating\na.jpg,0.5\n": r"no score column 'score' \(columns: \['image', 'rating'\]\)",
        "image,score\na.jpg,0.5\nb.png,0.6\na,0.7\n": r"line 4: image 'a' is listed again \(first on line 2",
        "image,score\na.jpg,0.5\nb.png,\n": r"line 3: score of 'b.png' is empty",
        "image,score\na.jpg,nan\n": r"line 2: score of 'a.jpg' is nan",
        "image,score\na.jpg,1.2\n": r"line 2: score 1.2 of 'a.jpg' is outside \[0.0, 1.0\]",
        "image,score\na.jpg,0.5\nd.jpg,0.6\n": r"line 3: image 'd.jpg' is not in",
        "name,score\na.jpg,0.5\n": r"none of the id columns",
        "image,score\n": r"has no rows",
    }
    for i, (csv, message) in enumerate(cases.items()):
        folder = make_folder(tmp_path / f"case{i}", csv)
        with pytest.raises(DataError, match=message) as info:
            load_dataset("folder", root=folder)
        assert "scores.csv" in str(info.value)


def test_folder_ids_must_be_unique_across_extensions(tmp_path):
    write_image(tmp_path / "x.jpg")
    write_image(tmp_path / "x.png")
    with pytest.raises(DataError, match="both get the id 'x'"):
        load_dataset("folder", root=tmp_path)
