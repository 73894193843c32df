"""A command that needs a package of an extra that is not installed ends with one line naming the
``pip install 'memprobe[extra]'`` to run, not a traceback. "Not installed" is a ``None`` entry in
``sys.modules``, which makes ``import`` raise ModuleNotFoundError as for a missing package."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from memprobe import cli
from memprobe.cli import OPTIONAL_PACKAGES, main
from memprobe.config import data_root
from memprobe.zoo import cli as zoo_cli

REPO = Path(__file__).resolve().parents[1]
IMAGE = str(data_root() / "lnsim" / "Image_data" / "0001.jpg")
# Distributions whose import name is not their normalised name.
IMPORT_NAMES = {"grad-cam": "pytorch_grad_cam"}


def test_the_table_lists_every_package_of_pyproject_extras():
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    declared = {}
    for extra, requirements in extras.items():
        for requirement in requirements:
            distribution = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            if distribution != "memprobe" and extra != "dev":  # `all` and `dev` gather the others
                declared[IMPORT_NAMES.get(distribution, distribution.lower().replace("-", "_"))] = extra
    assert OPTIONAL_PACKAGES == declared, "memprobe/cli.py OPTIONAL_PACKAGES must match pyproject's extras"


@pytest.fixture
def without(monkeypatch):
    """``without(package, *modules)``: make ``package`` uninstalled, and drop the memprobe ``modules`` that
    import it at import time so that they are imported again."""

    def uninstall(package: str, *modules: str) -> None:
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, package, None)
        for name in [n for n in sys.modules if n in modules or n.startswith(modules)]:
            monkeypatch.delitem(sys.modules, name)

    return uninstall


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--config", "analyses/paper.yaml"],
        ["submit", "sweep", "--config", "analyses/paper.yaml", "--dry-run"],
        ["status", "runs/paper"],
        ["collect", "runs/paper"],
    ],
    ids=lambda argv: argv[0],
)
def test_slurm_commands_without_submitit(argv, without, capsys):
    without("submitit", "memprobe.slurm")
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"memprobe: error: {argv[0]} needs submitit: pip install 'memprobe[slurm]'\n"
    )


@pytest.mark.parametrize(
    "package, argv, extra",
    [
        ("pretrainedmodels", ["layers", "pretrainedmodels:dpn68"], "pretrainedmodels"),
        ("efficientnet_pytorch", ["layers", "efficientnet:b0"], "efficientnet"),
        ("resmem", ["layers", "resmem"], "resmem"),
        ("resmem", ["predict", IMAGE, "--model", "resmem", "--out", "{tmp}/scores.csv"], "resmem"),
        ("resmem", ["sweep", "--model", "resmem:resnet152", "--benchmarks", "rsa92.IT-monkey-rsa",
                    "--out", "{tmp}"], "resmem"),
        ("pytorch_grad_cam", ["heatmap", IMAGE, "--model", "resmem", "--out", "{tmp}"], "heatmap"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_model_commands_without_their_extra(package, argv, extra, without, tmp_path, capsys):
    without(package)
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 1
    assert capsys.readouterr().err == (
        f"memprobe: error: {argv[0]} needs {package}: pip install 'memprobe[{extra}]'\n"
    )


def test_help_lists_the_commands_whose_extra_is_missing(without, capsys):
    without("submitit", "memprobe.slurm")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert re.search(r"plan +needs pip install 'memprobe\[slurm\]'", capsys.readouterr().out)
    assert cli.build_parser(["models"]).parse_args(["models"]).func is zoo_cli.run_models


def test_other_missing_modules_are_not_hidden(monkeypatch):
    def broken(pattern):
        raise ModuleNotFoundError("No module named 'not_an_extra'", name="not_an_extra")

    monkeypatch.setattr(zoo_cli, "list_models", broken)
    with pytest.raises(ModuleNotFoundError, match="not_an_extra"):
        main(["models"])
