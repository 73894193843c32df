"""memprobe's ``pca:1000`` against Brain-Score's own LayerPCA on real ResNet-152 layers, V4 scores included.

    python perf/layerpca_vs_brainscore.py [--layers fc avgpool layer3.5 conv1] [--keep] [--reuse-layerpca]
        → results/benchmarks/layerpca_vs_brainscore.txt

Model ``resmem:resnet152``; reference images: the 1,000 of imagenet_sample (memprobe's default for pca, as
many as LayerPCA's ImageNet images); target images: the 400 of Cowley V4 session 210305. Per layer:

1. memprobe extracts the raw activations of both sets: what its hook sees, and what LayerPCA gets (hard
   links keep the reference activations after memprobe's fit deletes them from its store);
2. memprobe's ``pca:1000`` features of the targets: the fit from the stored reference activations, the
   projection in the hook; this process's memory is sampled from /proc meanwhile;
3. LayerPCA on the same arrays (perf/brainscore_layerpca_peer.py in .venv-brainscore), sampled likewise
   (``--reuse-layerpca``: its arrays and measurements from a kept work folder instead);
4. for layers of at most 250,000 units, a float64 SVD of the centred reference activations (scipy, as
   scikit-learn's full solver, signs by its svd_flip): the exact answer, to tell rounding from error;
5. V4 (raw Pearson r): memprobe's ``cowley_v4.V4-pls`` on memprobe's features vs Brain-Score's ``pls``
   metric (perf/brainscore_peer.py) on LayerPCA's; and Brain-Score's ``pls`` on memprobe's features,
   which isolates the PCA.

Errors are relative (‖a − b‖ / ‖b‖) over the 400 target images, per component after aligning its sign, or
over the whole feature matrix. Components 1–999 only: 1,000 centred images have rank 999, so the 1,000th
component is rounding in LayerPCA and zero in memprobe. Memory: peak RSS counts the pages of memory-mapped
files (memprobe's store, LayerPCA's inputs), which are page cache the kernel drops under pressure; the
anonymous part is what a process must hold. LayerPCA on ``conv1`` holds several 3.3 GB copies (its PCA's
centred copy, LAPACK's own, the SVD's V); the script waits until /proc/meminfo offers 16 GB to start it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import xarray as xr
from threadpoolctl import threadpool_limits

from memprobe import config
from memprobe.benchmarks import load_benchmark
from memprobe.data import load_dataset
from memprobe.features import ActivationStore, extract, list_layers, store_key
from memprobe.features.reducers import PCAReducer
from memprobe.naming import safe_name
from memprobe.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "benchmarks" / "layerpca_vs_brainscore.txt"
BRAINSCORE_PYTHON = REPO / ".venv-brainscore" / "bin" / "python"
SESSION = "210305"
N_COMPONENTS = 1000
RANK = N_COMPONENTS - 1  # of 1,000 centred reference images
EXACT_MAX_UNITS = 250_000  # a float64 SVD holds two n × p float64 matrices: 3.7 GB at 230,400 units
THREADS = int(os.environ.get("MEMPROBE_THREADS", "2"))
GB = 2**30


class PeakMemory:
    """Samples a process's resident memory (/proc/PID/status, every 50 ms) while the block runs: the peak
    of all of it (VmRSS, memory-mapped files included) and of its anonymous part (RssAnon)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.rss = self.anonymous = 0
        self._done = threading.Event()

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        self.rss = max(self.rss, int(fields["VmRSS"].split()[0]) * 1024)
        self.anonymous = max(self.anonymous, int(fields["RssAnon"].split()[0]) * 1024)

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self.anonymous_before = self.anonymous
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def describe(self, with_before: bool = True) -> str:
        before = f", {self.anonymous_before / GB:.2f} GB before" if with_before else ""
        return f"peak RSS {self.rss / GB:.2f} GB, anonymous {self.anonymous / GB:.2f} GB{before}"


class TimedPCA(PCAReducer):
    fit_seconds = 0.0

    def fit(self, reference_activations, folder):
        start = time.perf_counter()
        super().fit(reference_activations, folder)
        self.fit_seconds += time.perf_counter() - start


def wait_for_memory(needed_bytes: float) -> None:
    while True:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
        if available >= needed_bytes:
            return
        print(f"  waiting: {available / GB:.1f} GB free, LayerPCA needs {needed_bytes / GB:.0f}", flush=True)
        time.sleep(30)


def layerpca(reference: Path, target: Path, out: Path, reuse: bool) -> tuple[dict, str]:
    """Brain-Score's LayerPCA in its own environment: its arrays, and its seconds and memory (as text).
    ``out`` (.npz) and its .json beside it are reused when ``reuse`` and present."""
    measured = out.with_suffix(".json")
    reused = reuse and out.is_file() and measured.is_file()
    if not reused:
        command = [str(BRAINSCORE_PYTHON), str(REPO / "perf" / "brainscore_layerpca_peer.py"), str(reference),
                   str(target), str(out), str(N_COMPONENTS)]
        threads = {f"{library}_NUM_THREADS": str(THREADS) for library in ("OMP", "OPENBLAS", "MKL")}
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **threads})
        with PeakMemory(process.pid) as memory:
            _, stderr = process.communicate()
        if process.returncode != 0:
            sys.exit(f"LayerPCA failed:\n{stderr[-3000:]}")
        seconds = time.perf_counter() - start
        measured.write_text(json.dumps(f"{seconds:.0f} s (start, fit, transform); {memory.describe(False)}"))
    with np.load(out) as arrays:
        return dict(arrays), json.loads(measured.read_text()) + (" (an earlier run's)" if reused else "")


def exact_pca_features(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The float64 answer: the SVD of the centred reference (scipy's gesdd, as scikit-learn's full solver)
    with svd_flip's signs, applied to the target; as many components as the rank."""
    mean = reference.mean(axis=0, dtype=np.float64)
    centred = np.asfortranarray(reference, dtype=np.float64)
    centred -= mean
    with threadpool_limits(THREADS):
        _, _, components = scipy.linalg.svd(centred, full_matrices=False, overwrite_a=True,
                                            check_finite=False)
    del centred
    components = components[:RANK]
    rows = np.arange(RANK)
    components *= np.sign(components[rows, np.abs(components).argmax(axis=1)])[:, None]
    return (target - mean) @ components.T


def v4_scores(features: dict[str, np.ndarray], stimulus_ids: list[str], work: Path) -> dict[str, float]:
    """Raw V4 scores: memprobe's benchmark on memprobe's features, Brain-Score's pls on each set."""
    benchmark = load_benchmark("cowley_v4.V4-pls", sessions=[SESSION])
    responses = benchmark.recordings[0].responses
    response_ids = [str(i) for i in responses["stimulus_id"].values]
    order = [stimulus_ids.index(i) for i in response_ids]
    ours = xr.DataArray(features["memprobe"], dims=("presentation", "neuroid"),
                        coords={"stimulus_id": ("presentation", stimulus_ids)})
    scores = {"memprobe pls on memprobe pca": benchmark.score({f"cowley_v4.{SESSION}": ours}).raw}
    for label, values in features.items():
        path = work / "pls_input.npz"
        np.savez(path, features=values[order], responses=responses.values, stimulus_id=np.array(response_ids),
                 neuroid_id=np.array([str(i) for i in responses["neuroid_id"].values]))
        run = subprocess.run([str(BRAINSCORE_PYTHON), str(REPO / "perf" / "brainscore_peer.py"), str(path)],
                             capture_output=True, text=True, check=True)
        scores[f"Brain-Score pls on {label} pca"] = json.loads(run.stdout.strip().splitlines()[-1])["raw"]
    return scores


def errors_per_component(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.linalg.norm(features - reference, axis=0) / np.linalg.norm(reference, axis=0)


def relative_error(features: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(features - reference) / np.linalg.norm(reference))


def compare(ours: np.ndarray, theirs: dict, fit: dict, exact: np.ndarray | None) -> list[str]:
    """The equality lines of a projected layer (``fit``: memprobe's, as the store keeps it)."""
    projected, variance = theirs["projected"], theirs["explained_variance"]
    norms = np.linalg.norm(projected, axis=0)
    lines = [f"  component 1,000: LayerPCA's variance {variance[RANK] / variance[0]:.0e} of the first's, its "
             f"features' norm {norms[RANK] / norms[0]:.0e} of the first's; memprobe's features all "
             f"{np.abs(ours[:, RANK]).max():.0f}"]
    ours, projected = ours[:, :RANK], projected[:, :RANK]
    signs = np.sign(np.sum(ours * projected, axis=0))
    projected = signs * projected
    errors = errors_per_component(ours, projected)
    ranges = ", ".join(f"{start + 1}–{stop}: {errors[start:stop].max():.0e}"
                       for start, stop in ((0, 10), (10, 100), (100, 500), (500, RANK)))
    lines += [f"  components 1–999: relative error of the whole feature matrix "
              f"{relative_error(ours, projected):.1e}; per component median {np.median(errors):.0e}, "
              f"≤ 1e-4 on {(errors <= 1e-4).sum()}; max by components {ranges}"]
    ours_variance = np.asarray(fit["explained_variance"][:RANK], dtype=np.float64)
    worst = int(errors.argmax())
    gap = min(abs(ours_variance[worst] - ours_variance[neighbour]) for neighbour in (worst - 1, worst + 1)
              if 0 <= neighbour < RANK) / ours_variance[worst]
    lines.append(f"  the worst, component {worst + 1}: its variance and its neighbour's differ by {gap:.0e} "
                 "(relative); a float32 SVD mixes such near-equal components")
    flipped = np.flatnonzero(signs < 0)
    lines.append(f"  signs agree on {RANK - len(flipped)} of {RANK}" + "".join(
        f"; on component {j + 1} memprobe's two largest |entries| are {_top_two(fit['components_t'], j)}"
        for j in flipped))
    if exact is not None:
        exact = exact[:, :RANK]
        ours_exact, theirs_exact = errors_per_component(ours, exact), errors_per_component(projected, exact)
        lines.append(f"  vs float64 SVD: memprobe {relative_error(ours, exact):.0e} whole, max "
                     f"{ours_exact.max():.0e} per component; LayerPCA {relative_error(projected, exact):.0e} "
                     f"whole, median {np.median(theirs_exact):.0e}, max {theirs_exact.max():.0e} per "
                     "component")
    return lines


def _top_two(components_t: np.ndarray, component: int) -> str:
    column = np.array(components_t[:, component])
    first, second = column[np.argsort(np.abs(column))[-2:][::-1]]
    return (f"{first:+.6f} and {second:+.6f} (svd_flip makes the largest positive: a near-tie of opposite "
            "signs leaves the pick to rounding)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["fc", "avgpool", "layer3.5", "conv1"])
    parser.add_argument("--work", type=Path, default=config.cache_root() / "perf" / "layerpca_vs_brainscore")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (activations, results)")
    parser.add_argument("--reuse-layerpca", action="store_true", help="LayerPCA's results from a kept --work")
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    assert BRAINSCORE_PYTHON.is_file(), "run scripts/setup_test_env.sh to create .venv-brainscore"

    model = load_model("resmem:resnet152")
    reference = load_dataset("imagenet_sample").stimuli
    target = load_dataset("cowley_v4").session(SESSION).stimuli
    catalogue = list_layers(model)
    store = ActivationStore(args.work / "store")
    options = dict(store=store, batch_size=args.batch_size, catalogue=catalogue)
    raw = {}
    for name, stimuli in (("reference", reference), ("target", target)):
        activations = extract(model, stimuli, args.layers, "none", **options)
        for layer in args.layers:  # hard links: memprobe's fit deletes the stored reference activations
            raw[name, layer] = args.work / f"{safe_name(layer)}.{name}.npy"
            raw[name, layer].unlink(missing_ok=True)
            os.link(store.layer_path(activations.key, layer), raw[name, layer])
        if name == "reference":
            reference_key = activations.key

    paragraphs = __doc__.strip().split("\n\n")
    report = ["\n\n".join(paragraphs[:1] + paragraphs[2:]), "",
              f"CPU threads: {THREADS} (torch, BLAS) of {os.cpu_count()} cores, shared with other work; "
              f"memprobe fits in blocks of {PCAReducer(reference).block_bytes // 2**20} MiB.", ""]
    for layer in args.layers:
        print(f"{layer} ...", flush=True)
        units = catalogue.by_name()[layer].units
        reducer = TimedPCA(reference, n_components=N_COMPONENTS)
        shutil.rmtree(store.fit_path(reference_key, layer, reducer.fit_name), ignore_errors=True)
        store.delete(store_key(model, target, reducer), [layer])  # measure a fit, also on a rerun
        start = time.perf_counter()
        with PeakMemory(os.getpid()) as ours_memory:
            ours = np.array(extract(model, target, [layer], reducer, **options)[layer].values)
        project_seconds = time.perf_counter() - start - reducer.fit_seconds
        wait_for_memory(16 * GB if units * N_COMPONENTS * 4 > GB else 0)
        theirs, their_measures = layerpca(raw["reference", layer], raw["target", layer],
                                          args.work / f"{safe_name(layer)}.layerpca.npz", args.reuse_layerpca)
        fit = f"fit {reducer.fit_seconds:.1f} s" if units > N_COMPONENTS else "no fit (passed through)"
        report += [f"{layer}: {units:,} units → {ours.shape[1]} features",
                   f"  memprobe  {fit}, extraction with projection {project_seconds:.0f} s; "
                   f"{ours_memory.describe()}",
                   f"  LayerPCA  {their_measures}"]
        if units <= N_COMPONENTS:
            difference = np.abs(ours - theirs["projected"]).max()
            report.append(f"  passed through by both: max |difference| {difference}")
        else:
            exact = None
            if units <= EXACT_MAX_UNITS:
                exact = exact_pca_features(np.load(raw["reference", layer], mmap_mode="r"),
                                           np.load(raw["target", layer], mmap_mode="r"))
            report += compare(ours, theirs, store.load_fit(reference_key, layer, reducer.fit_name), exact)
        scores = v4_scores({"memprobe": ours, "LayerPCA": theirs["projected"]}, target.ids, args.work)
        report += [f"  V4 {label}: {value:.4f}" for label, value in scores.items()]
        difference = scores["memprobe pls on memprobe pca"] - scores["Brain-Score pls on LayerPCA pca"]
        report += [f"  V4 memprobe − Brain-Score: {difference:+.1e}", ""]
        print("\n".join(report[-14:]), flush=True)
    RESULTS.write_text("\n".join(report).rstrip() + "\n")
    if not args.keep:
        shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
