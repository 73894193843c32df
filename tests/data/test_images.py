"""Image decoding: every mode real collections hold comes out as 8-bit RGB; bad files name themselves."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from memprobe.data import ImageDecodeError, StimulusSet, check_images, open_image
from memprobe.data.images import zip_ref
from memprobe.errors import DataError


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def gradient(size=(48, 32)) -> np.ndarray:
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None].repeat(w, 1)
    return np.stack([x, y, 255 - x], axis=2)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = gradient()[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = pixels(open_image(tmp_path / "g.png"))
    assert out.shape == (32, 48, 3)
    assert (out == gray[..., None]).all()


def test_one_bit_image(tmp_path):
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "b.png")
    out = pixels(open_image(tmp_path / "b.png"))
    assert (out[np.eye(8, dtype=bool)] == 255).all() and (out[~np.eye(8, dtype=bool)] == 0).all()


def test_palette_without_transparency_keeps_colours(tmp_path):
    rgb = Image.fromarray(gradient())
    palette = rgb.quantize(colors=16)
    palette.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert (pixels(open_image(tmp_path / "p.png")) == pixels(palette.convert("RGB"))).all()


def test_palette_with_transparent_index_is_composited_on_white(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)  # index 0 black (transparent), 1 red
    image.putpixel((1, 1), 1)
    image.save(tmp_path / "pt.png", transparency=0)
    out = pixels(open_image(tmp_path / "pt.png"))
    assert (out[0, 0] == 255).all()  # transparent black shows as white, not black
    assert tuple(out[1, 1]) == (200, 10, 10)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 100  # red channel everywhere
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = pixels(open_image(tmp_path / "a.png"))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 2]) == (100, 0, 0)
    half = out[0, 1]
    assert abs(half[0] - (100 * 128 + 255 * 127) / 255) <= 1 and abs(half[1] - 127) <= 1


def test_grayscale_with_alpha(tmp_path):
    la = np.stack([np.full((2, 2), 30, np.uint8), np.array([[0, 255], [255, 255]], np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = pixels(open_image(tmp_path / "la.png"))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (30, 30, 30)


def test_cmyk_jpeg_and_tiff(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "c.tif")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    assert (pixels(open_image(tmp_path / "c.tif")) == [255, 0, 0]).all()
    assert np.abs(pixels(open_image(tmp_path / "c.jpg")) - [255, 0, 0]).max() <= 8


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 40000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "i16.png")
    assert Image.open(tmp_path / "i16.png").mode.startswith("I;16")
    out = pixels(open_image(tmp_path / "i16.png"))
    assert list(out[0, :, 0]) == [0, 100, 255, round(40000 / 257)]
    assert (out[..., 0] == out[..., 2]).all()


def test_32_bit_integer_and_float_images(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), mode="I").save(tmp_path / "i32.tif")
    assert list(pixels(open_image(tmp_path / "i32.tif"))[0, :, 0]) == [0, 100, 255]
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F").save(tmp_path / "f.tif")
    assert list(pixels(open_image(tmp_path / "f.tif"))[0, :, 0]) == [0, 128, 255]


def test_progressive_jpeg(tmp_path):
    source = gradient((64, 64))
    Image.fromarray(source).save(tmp_path / "prog.jpg", progressive=True, quality=95)
    with Image.open(tmp_path / "prog.jpg") as raw:
        assert raw.info.get("progressive") or raw.info.get("progression")
    assert np.abs(pixels(open_image(tmp_path / "prog.jpg")) - source).mean() < 3


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(gradient((40, 20)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert open_image(tmp_path / "rot.jpg").size == (20, 40)


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg_names_the_file(tmp_path, progressive):
    buffer = io.BytesIO()
    Image.fromarray(gradient((128, 128))).save(buffer, format="JPEG", progressive=progressive)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageDecodeError) as info:
        open_image(path)
    assert str(path) in str(info.value) and isinstance(info.value, DataError)
    assert info.value.ref == str(path)


def test_not_an_image_and_missing_file(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ImageDecodeError, match="notes.jpg"):
        open_image(tmp_path / "notes.jpg")
    with pytest.raises(ImageDecodeError, match="does not exist"):
        open_image(tmp_path / "absent.png")


def test_zip_references(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(gradient()).save(buffer, format="PNG")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("sub/a.png", buffer.getvalue())
    assert (pixels(open_image(zip_ref(archive, "sub/a.png"))) == gradient()).all()
    with pytest.raises(ImageDecodeError, match="no member 'sub/b.png'"):
        open_image(zip_ref(archive, "sub/b.png"))
    with pytest.raises(ImageDecodeError, match="does not exist"):
        open_image(zip_ref(tmp_path / "other.zip", "a.png"))


def test_drop_unreadable_reports_and_skips_bad_files(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "good1.png")
    Image.fromarray(gradient()).save(tmp_path / "good2.jpg")
    (tmp_path / "bad.jpg").write_bytes((tmp_path / "good2.jpg").read_bytes()[:200])
    refs = {"good1": "good1.png", "bad": "bad.jpg", "good2": "good2.jpg", "gone": "gone.png"}
    table = pd.DataFrame(
        {"image": [str(tmp_path / r) for r in refs.values()]}, index=pd.Index(list(refs), name="stimulus_id")
    )
    stimuli = StimulusSet("mixed", table)
    kept, report = stimuli.drop_unreadable(progress=False)
    assert kept.ids == ["good1", "good2"]
    assert kept.name != stimuli.name  # cache keys must not mix the two
    assert list(report.index) == ["bad", "gone"]
    assert report.loc["bad", "image"].endswith("bad.jpg") and "does not exist" in report.loc["gone", "error"]
    assert check_images(kept.table["image"], progress=False).empty
    same, empty = kept.drop_unreadable(progress=False)
    assert same is kept and empty.empty


def test_check_images_command_names_the_damaged_image(data_root, tmp_path, capsys):
    from memprobe.cli import main

    source = data_root / "cowley_v4"
    target = tmp_path / "cowley_v4"
    (target / "responses_repeat_averaged").mkdir(parents=True)
    (target / "images").mkdir()
    name = "responses_210305.npy"
    (target / "responses_repeat_averaged" / name).write_bytes(
        (source / "responses_repeat_averaged" / name).read_bytes()
    )
    with zipfile.ZipFile(source / "images" / "images_210305.zip") as original:
        with zipfile.ZipFile(target / "images" / "images_210305.zip", "w") as damaged:
            for member in original.namelist():
                data = original.read(member)
                damaged.writestr(member, data[: len(data) // 3] if member == "image0123.jpg" else data)
    assert main(["data", "check-images", "cowley_v4", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "UNREADABLE  cowley_v4.210305  210305/image0123" in out and "!image0123.jpg" in out
    assert "cowley_v4: 399 of 400 images decode" in out
