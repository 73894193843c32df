"""The README's first command as a newcomer runs it: ``make demo`` in a fresh clone, with no data folder
beside it, ``MEMPROBE_DATA`` unset and an empty home, so the demo fetches every data set it needs on first
use into the default data folder (~/.cache/memprobe/data).

    python scripts/demo_fresh_clone.py [--data DIR] [--out results/benchmarks/demo_fresh_clone.txt]

This machine has no internet, so a server on 127.0.0.1 stands in for the public sources: it serves the
real files of ``--data`` (default ``$MEMPROBE_DATA``) at the URLs memprobe asks for
(raw.githubusercontent.com's layout, ``<repository>/<commit>/<path>``, through
``MEMPROBE_FETCH_BASE_URL``). The clone is of the committed HEAD; the checkout runs in a virtual
environment that sees this machine's packages (``make demo`` installs the clone into it, not over the
developer's install). Writes the output's tail, what was fetched and the checks; exit 1 if one fails.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_SETS = ("lnsim", "cowley_v4", "rsa92")  # what `memprobe demo`'s benchmarks load


class LoggingHandler(http.server.SimpleHTTPRequestHandler):
    served: list[str] = []

    def log_message(self, format, *args):
        if args and str(args[1]) == "200":
            self.served.append(self.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MEMPROBE_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "demo_fresh_clone.txt")
    args = parser.parse_args()
    from memprobe.data.fetch import manifest, source_url
    from memprobe.data.registry import dataset_info, list_datasets

    work = Path(tempfile.mkdtemp(prefix="memprobe-fresh-"))
    served = work / "public"
    files = 0
    for name in list_datasets():
        info = dataset_info(name)
        if info.source is None or info.manifest_path() is None or info.fetch_blocker:
            continue
        for path in manifest(name):
            url = source_url("", info.source, path.removeprefix(f"{info.folder}/"))
            link = served / url.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((args.data / path).resolve())
            files += 1
    handler = functools.partial(LoggingHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    clone, home, venv = work / "memprobe", work / "home", work / "venv"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    home.mkdir()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("MEMPROBE_") and key != "VIRTUAL_ENV"}
    environment |= {"HOME": str(home), "PATH": f"{venv / 'bin'}:{environment['PATH']}",
                    "MEMPROBE_FETCH_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/",
                    "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip")}
    started = time.monotonic()
    demo = subprocess.run(["make", "demo", f"PYTHON={venv / 'bin' / 'python'}"], cwd=clone, env=environment,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    server.shutdown()

    data = home / ".cache" / "memprobe" / "data"
    fetched = {name: [p for p in (data / name).rglob("*") if p.is_file()] for name in DEMO_SETS}
    verify = subprocess.run([venv / "bin" / "memprobe", "data", "verify", *DEMO_SETS, "--root", data],
                            env=environment, capture_output=True, text=True)
    fetched_files = sum(map(len, fetched.values()))
    checks = {
        "the clone has no data folder beside it": not (clone.parent / "shared").exists(),
        "make demo exited 0": demo.returncode == 0,
        "every demo data set fetched into the default data folder": all(fetched.values()),
        "the fetched files verify against the shipped checksums": verify.returncode == 0,
        "the files came from the loopback server": len(LoggingHandler.served) == fetched_files,
    }
    lines = [f"$ git clone (HEAD {_head()}) && make demo   # no ../shared, MEMPROBE_DATA unset, empty HOME",
             f"loopback server: {files} files of {args.data} in the public sources' URL layout",
             f"wall time {seconds / 60:.1f} min (installs, fetches, demo) on {os.cpu_count()} cores",
             *(f"fetched {name}: {len(paths)} files" for name, paths in fetched.items()),
             f"served {len(LoggingHandler.served)} files", "", "demo output (tail):",
             *demo.stdout.strip().splitlines()[-25:], *demo.stderr.strip().splitlines()[-5:], "",
             "memprobe data verify:", *verify.stdout.strip().splitlines()[-5:], "",
             *(f"{'ok ' if passed else 'FAILED '} {name}" for name, passed in checks.items())]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(checks.values()) else 1


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
