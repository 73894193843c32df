"""``memprobe models``: one row per model with source, top-1, preprocessing and local weights."""

from __future__ import annotations

import torch

from memprobe.cli import main
from memprobe.zoo import get_spec


def _rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines()[1:-1]}


def test_models_lists_pattern_with_local_weights_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = get_spec("cornet:Z").weights.expected_path()
    expected.parent.mkdir(parents=True)
    torch.save({}, expected)
    assert main(["models", "cornet:*"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["cornet:Z", "cornet:R", "cornet:RT", "cornet:S"]
    assert rows["cornet:Z"][-1] == "yes" and rows["cornet:S"][-1] == "no"
    assert rows["cornet:Z"][1] == "cornet"


def test_models_of_a_set_show_published_top1(capsys):
    assert main(["models", "--set", "paper64", "*resnet50*"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == {
        "torchvision:resnet50",
        "pretrainedmodels:se_resnet50",
        "torchvision:wide_resnet50_2",
    }
    assert rows["torchvision:resnet50"][2] == "76.13"
    assert rows["pretrainedmodels:se_resnet50"][2] == "77.64"


def test_resmem_weights_are_present_and_top1_is_none(capsys):
    assert main(["models", "resmem*"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["resmem"][2] == "-" and rows["resmem"][-1] == "yes"


def test_unknown_set_is_a_clean_error(capsys):
    assert main(["models", "--set", "paper65"]) == 1
    assert "unknown model set 'paper65'" in capsys.readouterr().err
