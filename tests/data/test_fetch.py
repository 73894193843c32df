"""`memprobe data fetch / verify / list` against a real HTTP server on 127.0.0.1 and local mirrors.

The server serves rsa92's files in its public source's layout (``<repository>/<commit>/<path>``), with
Range support, and can drop the connection mid-file or corrupt a file to test resume and checksums.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest

from memprobe.cli import main
from memprobe.data import fetch as fetching
from memprobe.data.registry import dataset_info
from memprobe.errors import DataError

BIG = "Kriegeskorte_Neuron2008_supplementalData.mat"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        file = server.root / self.path.lstrip("/").replace("%20", " ")
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        if file.name in server.corrupt:
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        if file.name in server.lfs:
            data = b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n"
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if file.name in server.drop_after:  # promise the whole body, send part of it, hang up
            self.wfile.write(body[: server.drop_after.pop(file.name)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path, data_root):
    """Serves rsa92's real files laid out as raw.githubusercontent.com serves its source."""
    info = dataset_info("rsa92")
    served = tmp_path / "served"
    folder = served / info.source.repository / info.source.commit / info.source.prefix
    folder.mkdir(parents=True)
    for path in (data_root / "rsa92").iterdir():
        shutil.copyfile(path, folder / path.name)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.root, httpd.requests, httpd.corrupt, httpd.drop_after, httpd.lfs = served, [], set(), {}, set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_downloads_verifies_and_records_checksums(server, tmp_path):
    root = tmp_path / "data"
    report = fetching.fetch("rsa92", root=root, base_url=server.url, progress=False)
    expected = fetching.manifest("rsa92")
    assert sorted(report.fetched) == sorted(expected)
    for path, digest in expected.items():
        assert sha256(root / path) == digest
    assert not list(root.rglob("*.part"))
    assert fetching.verify(root, progress=False).ok  # SHA256SUMS was written for what was fetched
    assert fetching.parse_checksums((root / "SHA256SUMS").read_text(), "sums") == expected
    # a second run finds everything in place and downloads nothing
    n_requests = len(server.requests)
    again = fetching.fetch("rsa92", root=root, base_url=server.url, progress=False)
    assert again.fetched == [] and sorted(again.already_present) == sorted(expected)
    assert len(server.requests) == n_requests


def test_interrupted_download_keeps_part_file_and_rerun_resumes(server, tmp_path):
    root = tmp_path / "data"
    server.drop_after[BIG] = 1_000_000
    with pytest.raises(fetching.FetchError, match="interrupted.*rerunning the same command resumes"):
        fetching.fetch("rsa92", root=root, base_url=server.url, retries=0, progress=False)
    final = root / "rsa92" / BIG
    part = final.with_name(BIG + ".part")
    assert not final.exists()
    assert part.stat().st_size == 1_000_000

    fetching.fetch("rsa92", root=root, base_url=server.url, retries=0, progress=False)
    big_requests = [r for r in server.requests if r[0].endswith(BIG)]
    assert big_requests[-1][1] == "bytes=1000000-"  # resumed, not restarted
    assert sha256(final) == fetching.manifest("rsa92")[f"rsa92/{BIG}"]
    assert not part.exists()


def test_interruption_is_retried_within_one_run(server, tmp_path):
    server.drop_after[BIG] = 500_000
    fetching.fetch("rsa92", root=tmp_path / "data", base_url=server.url, retries=1, progress=False)
    assert fetching.verify(tmp_path / "data", progress=False).ok
    assert [r[1] for r in server.requests if r[0].endswith(BIG)] == [None, "bytes=500000-"]


def test_corrupted_file_is_an_error_and_never_kept(server, tmp_path):
    root = tmp_path / "data"
    server.corrupt.add(BIG)
    with pytest.raises(fetching.FetchError, match=rf"{BIG}: checksum mismatch .*was deleted"):
        fetching.fetch("rsa92", root=root, base_url=server.url, progress=False)
    assert not (root / "rsa92" / BIG).exists()
    assert not (root / "rsa92" / (BIG + ".part")).exists()


def test_git_lfs_pointer_is_recognised(server, tmp_path):
    server.lfs.add(BIG)
    with pytest.raises(fetching.FetchError, match="Git LFS pointer.*media.githubusercontent.com"):
        fetching.fetch("rsa92", root=tmp_path, base_url=server.url, progress=False)
    assert not (tmp_path / "rsa92" / BIG).exists()


def test_unreachable_source_says_offline(tmp_path, capsys):
    # port 1 on the loopback interface refuses connections, like a machine without internet
    with pytest.raises(fetching.FetchError, match="cannot reach .*offline.*--mirror"):
        fetching.fetch("lamem", root=tmp_path, base_url="http://127.0.0.1:1/", progress=False)
    assert main(["data", "fetch", "lamem", "--root", str(tmp_path), "--base-url", "http://127.0.0.1:1/"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.txt"))


def test_default_source_urls_point_at_pinned_commits():
    url = fetching.source_url(
        fetching.DEFAULT_BASE_URL, dataset_info("cowley_v4").source, "images/images_190923.zip"
    )
    assert url == (
        "https://raw.githubusercontent.com/cowleygroup/V4_compact_models/"
        "f4552ad9d34a466ebc66658f72a08a8e5038f1cf/data_V4_responses/images/images_190923.zip"
    )
    with pytest.raises(DataError, match="re-encoded.*--mirror"):
        fetching.fetch("imagenet_sample", root="/nonexistent", progress=False)


def test_fetch_from_mirror(data_root, tmp_path):
    root = tmp_path / "data"
    assert main(["data", "fetch", "cowley_v4", "--root", str(root), "--mirror", str(data_root)]) == 0
    assert fetching.verify(root, ["cowley_v4"], progress=False).ok

    mirror = tmp_path / "mirror"
    shutil.copytree(data_root / "rsa92", mirror / "rsa92")
    (mirror / "rsa92" / BIG).write_bytes(b"not the real file")
    with pytest.raises(fetching.FetchError, match="checksum mismatch"):
        fetching.fetch("rsa92", root=root, mirror=mirror, progress=False)
    assert not (root / "rsa92" / BIG).exists() and not list(root.rglob("*.part"))


def test_verify_reports_missing_and_mismatched_files(data_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(data_root / "lamem", root / "lamem")
    shutil.copyfile(data_root / "SHA256SUMS", root / "SHA256SUMS")
    assert main(["data", "verify", "lamem", "--root", str(root)]) == 0
    (root / "lamem" / "splits" / "val_3.txt").write_text("00000001.jpg 0.5\n")
    (root / "lamem" / "splits" / "test_5.txt").unlink()
    assert main(["data", "verify", "lamem", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH  lamem/splits/val_3.txt" in out and "MISSING   lamem/splits/test_5.txt" in out
    assert "13 files OK, 1 missing, 1 with a wrong checksum" in out


def test_verify_the_real_data_folder(data_root, capsys):
    listed = len((data_root / "SHA256SUMS").read_text().splitlines())  # one line per file
    assert main(["data", "verify", "--root", str(data_root)]) == 0
    assert f"{listed} files OK, 0 missing, 0 with a wrong checksum" in capsys.readouterr().out


def test_list_shows_presence_size_and_source(data_root, tmp_path, capsys):
    assert main(["data", "list", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    lnsim = next(line for line in out.splitlines() if line.startswith("lnsim "))
    assert " yes " in lnsim and "MB" in lnsim and "JiaxinLu-home/Natural-Scene-Memorability-Dataset" in lnsim
    (tmp_path / "rsa92").mkdir()
    shutil.copyfile(data_root / "rsa92" / BIG, tmp_path / "rsa92" / BIG)
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^rsa92 +1/3 files", out, re.M) and re.search(r"^lnsim +0/2634 files", out, re.M)


def test_verify_falls_back_to_the_shipped_manifest(data_root, tmp_path, capsys):
    root = tmp_path / "data"
    fetching.fetch("rsa92", root=root, mirror=data_root, progress=False)  # SHA256SUMS now lists rsa92 only
    assert main(["data", "verify", "lamem", "--root", str(root)]) == 1
    assert "0 files OK, 15 missing" in capsys.readouterr().out
    with pytest.raises(DataError, match="no checksums are known for 'folder'"):
        fetching.verify(root, ["folder"], progress=False)
