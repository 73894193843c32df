"""A file server on 127.0.0.1 for download tests: it serves a folder (URL path = path under the folder),
logs every request, and can ignore HTTP Range, hang up after a number of bytes or corrupt what it sends.
With ``hugging_face`` it also answers as the Hugging Face Hub does (HEAD with the commit and the sha256 of
the file as its etag), so that ``huggingface_hub.hf_hub_download`` takes it for the Hub. It runs in a thread
on an ephemeral port and stops when the ``serve`` block ends."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Behaviour:
    ranges: bool = True  # answer a Range request with 206 and the rest (False: 200 and everything)
    cut_after: int | None = None  # promise the whole body, send this many bytes, hang up
    corrupt: bool = False  # flip the last byte of every file
    hugging_face: bool = False
    log: list[dict] = field(default_factory=list)  # path, range, status, sent (bytes)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _hub_headers(self, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("ETag", f'"{digest}"')
        self.send_header("X-Linked-Etag", f'"{digest}"')
        self.send_header("X-Linked-Size", str(len(data)))

    def do_HEAD(self):
        file = self.server.root / urllib.parse.unquote(self.path.lstrip("/"))
        if not file.is_file():
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        data = file.read_bytes()
        self.send_response(200)
        self._hub_headers(data)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self):
        behaviour: Behaviour = self.server.behaviour
        entry = {"path": self.path, "range": self.headers.get("Range"), "status": 404, "sent": 0}
        behaviour.log.append(entry)
        file = self.server.root / urllib.parse.unquote(self.path.lstrip("/"))
        if not file.is_file():
            self.send_error(404)
            return
        original = data = file.read_bytes()
        if behaviour.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", entry["range"] or "")
        if behaviour.ranges and match:
            start = int(match.group(1))
            if start >= len(data):
                entry["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            entry["status"] = 206
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            entry["status"] = 200
            self.send_response(200)
        if behaviour.hugging_face:
            self._hub_headers(original)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour.cut_after is not None:
            body = body[: behaviour.cut_after]
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()
        entry["sent"] = len(body)


@dataclass
class Server:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    behaviour: Behaviour

    @property
    def log(self) -> list[dict]:
        return self.behaviour.log


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.root = root
    httpd.behaviour = Behaviour()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.behaviour)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
