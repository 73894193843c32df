"""The command line: every subcommand is reachable, and naming one loads only what it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memprobe.cli import COMMAND_MODULES, build_parser


def test_every_registered_command_is_in_the_full_parser():
    parser = build_parser([])
    choices = parser._subparsers._group_actions[0].choices
    assert set(choices) == {c for commands in COMMAND_MODULES.values() for c in commands}


def test_a_data_command_does_not_import_torch():
    code = "import sys; from memprobe.cli import build_parser; build_parser(['data', 'list']); " \
           "print('torch' in sys.modules)"  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("command", [["demo"], ["sweep", "--model", "x"], ["probe", "x"]])
def test_runs_write_outside_the_committed_results_the_notebooks_read(command):
    out = Path(build_parser().parse_args(command).out)
    assert out.parts[0] == "runs", out
