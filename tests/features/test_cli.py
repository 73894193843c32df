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


def test_distinct_listing_is_the_one_a_sweep_of_the_pretrained_model_scores(capsys):
    """Which outputs repeat another's values depends on the weights (MobileNetV3-Small's last pooling repeats
    its input's values with random weights, not with the pretrained ones): `--distinct` lists what a sweep
    of the pretrained network scores."""
    from memprobe.features import list_layers
    from memprobe.zoo import load_model

    assert main(["layers", "tflite:mobilenet_v3_small", "--distinct"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]]
    swept = list_layers(load_model("tflite:mobilenet_v3_small", weights="pretrained"), distinct=True)
    assert listed == swept.names
    random = list_layers(load_model("tflite:mobilenet_v3_small", weights="random"), distinct=True)
    assert swept.names != random.names
