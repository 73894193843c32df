"""`memprobe finetune | predict | heatmap` end to end on a small made-up image folder (random weights)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from memprobe.cli import main
from memprobe.finetune.checkpoint import load_checkpoint
from memprobe.finetune.models import load_finetuned
from memprobe.finetune.predict import predict_images


@pytest.fixture()
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for i in range(20):
        level = rng.random()
        pixels = (rng.random((48, 64, 3)) * 255 * level).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"im{i:02d}.png")
        rows.append({"stimulus_id": f"im{i:02d}", "score": level})
    pd.DataFrame(rows).to_csv(folder / "scores.csv", index=False)
    return folder


@pytest.mark.slow
def test_finetune_then_predict_and_heatmap_from_the_checkpoint(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["finetune", "torchvision:mobilenet_v3_small", "--weights", "random",
                 "--data", f"folder:{image_folder}", "--folds", "2", "--max-epochs", "1", "--out", str(out),
                 "--device", "cpu"]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["fold"]) == ["0", "1", "mean", "overall"]
    predictions = pd.read_csv(out / "predictions.csv", dtype={"stimulus_id": str})
    assert sorted(predictions["stimulus_id"]) == [f"im{i:02d}" for i in range(20)]
    assert load_checkpoint(out / "fold_0" / "best.pt")["meta"]["recipe"] == "paper"

    # the rebuilt checkpoint scores a test image exactly as the trainer did
    test_row = predictions[predictions["fold"] == 0].iloc[0]
    image = image_folder / f"{test_row['stimulus_id']}.png"
    scores = tmp_path / "scores.csv"
    assert main(["predict", str(image), "--checkpoint", str(out / "fold_0" / "best.pt"),
                 "--out", str(scores), "--device", "cpu"]) == 0
    assert pd.read_csv(scores)["score"].iloc[0] == pytest.approx(test_row["prediction"], rel=1e-4, abs=1e-5)
    assert load_finetuned(out / "fold_0" / "best.pt").penultimate_layer == "classifier.2"

    assert main(["heatmap", str(image), "--checkpoint", str(out / "fold_0" / "best.pt"),
                 "--out", str(tmp_path / "maps")]) == 0
    assert (tmp_path / "maps" / f"{test_row['stimulus_id']}_gradcam.png").is_file()


def test_frozen_head_checkpoint_rebuilds_on_its_backbone(image_folder, tmp_path):
    out = tmp_path / "frozen"
    assert main(["finetune", "torchvision:resnet18", "--weights", "random",
                 "--data", f"folder:{image_folder}", "--head", "resmemnet", "--frozen", "--folds", "2",
                 "--max-epochs", "2", "--out", str(out), "--device", "cpu"]) == 0
    predictions = pd.read_csv(out / "predictions.csv", dtype={"stimulus_id": str})
    rebuilt = load_finetuned(out / "fold_1" / "best.pt")
    assert rebuilt.penultimate_layer == "head.final_hidden"
    test_row = predictions[predictions["fold"] == 1].iloc[0]
    image = image_folder / f"{test_row['stimulus_id']}.png"
    table = predict_images(rebuilt, [image], device="cpu", progress=False)
    assert table["score"].iloc[0] == pytest.approx(test_row["prediction"], rel=1e-4, abs=1e-5)


def test_predict_refuses_a_model_without_a_memorability_output(image_folder, capsys):
    assert main(["predict", str(image_folder / "im00.png"), "--model", "torchvision:resnet18"]) == 1
    assert "does not output memorability" in capsys.readouterr().err
