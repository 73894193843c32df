"""``memprobe layers MODEL``."""

from __future__ import annotations

from memprobe.cli import main


def test_layers_command_prints_names_shapes_units_and_skipped_count(capsys):
    assert main(["layers", "torchvision:squeezenet1_1", "--min-units", "100000", "--show-skipped"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "call_index", "shape", "units", "relative_depth", "taken"]
    conv = next(line.split() for line in lines if line.split()[:1] == ["features.0"])
    assert conv[2:4] == ["64×111×111", str(64 * 111 * 111)]
    summary = next(line for line in lines if line.startswith("torchvision:squeezenet1_1:"))
    n_layers, n_skipped = (int(summary.split()[i]) for i in (1, 3))
    assert n_layers == len(lines) - 1 - 1 - n_skipped  # header, summary line, one line per skipped call
    assert n_skipped > 0 and "skipped classifier.3: 1000 units < 100000" in out


def test_layers_command_unknown_model_suggests_names(capsys):
    assert main(["layers", "torchvision:resnet5"]) == 1
    assert "unknown model 'torchvision:resnet5'" in capsys.readouterr().err
