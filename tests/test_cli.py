"""The command line: every subcommand is reachable, and naming one loads only what it needs."""

from __future__ import annotations

import os
import signal
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


def test_output_cut_short_by_its_reader_ends_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `memprobe data list | head` once head has exited
    result = subprocess.run([sys.executable, "-m", "memprobe.cli", "data", "list"], stdout=write_end,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert result.returncode == 128 + signal.SIGPIPE
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
