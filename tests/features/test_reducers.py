"""Reducers: shapes, determinism, the sparse projections' distributions, reference-set PCA."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from extract_fixtures import CountingNet, image_set, tiny_model
from sklearn.decomposition import PCA
from sklearn.feature_extraction import FeatureHasher
from sklearn.random_projection import SparseRandomProjection

from memprobe.errors import MemprobeError
from memprobe.features import extract, pca, store_key
from memprobe.features.reducers import (
    NoReducer,
    PCAReducer,
    SketchReducer,
    SRPReducer,
    count_sketch_matrix,
    get_reducer,
    sparse_random_matrix,
)
from memprobe.features.store import ActivationStore


def test_pool_and_none_shapes_and_copies():
    batch = torch.randn(3, 5, 4, 2)
    pooled = get_reducer("pool").for_layer("x", (5, 4, 2), "cpu")
    assert pooled.dim == 5 and torch.allclose(pooled(batch), batch.mean((2, 3)))
    vector = get_reducer("pool").for_layer("fc", (7,), "cpu")
    assert vector.dim == 7 and vector(torch.ones(2, 7)).shape == (2, 7)
    flat = get_reducer("none").for_layer("x", (5, 4, 2), "cpu")
    out = flat(batch)
    batch.zero_()  # an in-place op after the hook must not reach what the reducer returned
    assert flat.dim == 40 and out.abs().sum() > 0
    with pytest.raises(MemprobeError, match="unknown reducer 'max'"):
        get_reducer("max")


def test_srp_matrix_is_deterministic_per_seed_width_and_dim_and_never_dense():
    a, b = sparse_random_matrix(10_000, 64, seed=0), sparse_random_matrix(10_000, 64, seed=0)
    assert a.layout == torch.sparse_csr and a.shape == (64, 10_000)
    assert torch.equal(a.to_dense(), b.to_dense())
    assert not torch.equal(a.to_dense(), sparse_random_matrix(10_000, 64, seed=1).to_dense())
    reducer = SRPReducer(dim=64)
    out = reducer.for_layer("x", (4, 50, 50), "cpu")(torch.randn(3, 4, 50, 50))
    assert out.shape == (3, 64) and out.dtype == torch.float32
    small = reducer.for_layer("fc", (40,), "cpu")  # p ≤ D: unreduced
    x = torch.randn(2, 40)
    assert small.dim == 40 and torch.equal(small(x), x)
    assert SRPReducer(64, seed=3).key() == "srp(dim=64,seed=3)"


def test_srp_has_sklearns_sparse_random_projection_distribution():
    p, dim = 40_000, 256
    ours = sparse_random_matrix(p, dim, seed=0).to_dense().numpy()
    theirs = SparseRandomProjection(dim, density="auto", random_state=0).fit(np.zeros((2, p))).components_
    theirs = theirs.toarray()
    # Same support: values ±sqrt(sqrt(p)/dim), density 1/sqrt(p) (here 1/200).
    value = math.sqrt(200 / dim)
    for matrix in (ours, theirs):
        np.testing.assert_allclose(np.unique(matrix), [-value, 0.0, value], rtol=1e-6)
    for matrix in (ours, theirs):
        nnz_per_row = (matrix != 0).sum(axis=1)
        assert abs(nnz_per_row.mean() - 200) < 3 * math.sqrt(200 / dim)
        assert abs((matrix > 0).mean() - (matrix < 0).mean()) < 5e-4
    # Johnson-Lindenstrauss: squared distances kept on average, with the same spread as sklearn's.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, p)).astype(np.float32) * rng.uniform(0.1, 3, size=p).astype(np.float32)
    original = _pairwise_sq(x)
    mask = np.triu(np.ones_like(original, dtype=bool), 1)
    ratios = {}
    for label, matrix in (("ours", ours), ("sklearn", theirs)):
        ratios[label] = _pairwise_sq(x @ matrix.T)[mask] / original[mask]
    for label, ratio in ratios.items():
        assert abs(ratio.mean() - 1) < 0.03, label
        assert abs(ratio.std() - math.sqrt(2 / dim)) < 0.03, label  # Var of a χ²_dim/dim ratio
    assert abs(ratios["ours"].std() - ratios["sklearn"].std()) < 0.02


def test_sketch_is_the_signed_hashing_trick_with_sklearns_distance_spread():
    p, dim = 20_000, 256
    matrix = count_sketch_matrix(p, dim, seed=0).to_dense().numpy()
    assert ((matrix != 0).sum(axis=0) == 1).all()  # every input feature lands in exactly one output
    np.testing.assert_array_equal(np.unique(matrix), [-1.0, 0.0, 1.0])
    assert abs((matrix > 0).sum() - p / 2) < 4 * math.sqrt(p / 4)
    assert np.array_equal(matrix, count_sketch_matrix(p, dim, seed=0).to_dense().numpy())
    assert not np.array_equal(matrix, count_sketch_matrix(p, dim, seed=1).to_dense().numpy())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, p)).astype(np.float32) * rng.uniform(0.1, 3, size=p).astype(np.float32)
    reducer = get_reducer(f"sketch:{dim}")
    assert isinstance(reducer, SketchReducer) and reducer.key() == f"sketch(dim={dim},seed=0)"
    ours = reducer.for_layer("x", (p,), "cpu")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, x @ matrix.T, rtol=1e-4, atol=1e-3)
    hasher = FeatureHasher(dim, input_type="dict", alternate_sign=True)  # the same scheme, by murmurhash
    theirs = hasher.transform([dict(zip(map(str, range(p)), row, strict=True)) for row in x]).toarray()
    original = _pairwise_sq(x)
    mask = np.triu(np.ones_like(original, dtype=bool), 1)
    for label, sketched in (("ours", ours), ("sklearn", theirs)):
        ratio = _pairwise_sq(sketched)[mask] / original[mask]
        assert abs(ratio.mean() - 1) < 0.03, label
        assert abs(ratio.std() - math.sqrt(2 / dim)) < 0.03, label


def _pairwise_sq(x):
    sq = (x**2).sum(1)
    return sq[:, None] + sq[None, :] - 2 * x @ x.T


def _pca_setup(tmp_path, n_reference=12):
    network = CountingNet()
    reference = image_set(tmp_path / "ref", n_reference, name="reference", seed=1)
    stimuli = image_set(tmp_path / "images", 5, name="probe", seed=2)
    options = dict(store=ActivationStore(tmp_path / "s"), batch_size=4, num_workers=0, progress=False)
    return network, tiny_model(network), reference, stimuli, options


def _sklearn_pca(model, reference, stimuli, layer, n_components, options):
    """scikit-learn's full-SVD PCA, as LayerPCA runs it (n_components = n_reference), on the raw features."""
    raw_reference = extract(model, reference, [layer], "none", **options)[layer].values
    raw = extract(model, stimuli, [layer], "none", **options)[layer].values
    fitted = PCA(n_components, svd_solver="full", random_state=0).fit(raw_reference)
    return fitted, fitted.transform(raw)


def test_pca_equals_sklearns_signs_included_and_its_fit_is_stored_once(tmp_path):
    network, model, reference, stimuli, options = _pca_setup(tmp_path)
    features = extract(model, stimuli, ["conv2"], PCAReducer(reference, n_components=8), **options)
    assert features["conv2"].shape == (5, 8)
    store, raw_key = options["store"], store_key(model, reference, NoReducer())
    assert not store.has(raw_key, "conv2")  # the raw reference activations went once fitted
    fitted = store.load_fit(raw_key, "conv2", "pca.n8")
    assert isinstance(fitted["components_t"], np.memmap) and fitted["components_t"].shape == (4 * 32 * 32, 8)
    sklearn, expected = _sklearn_pca(model, reference, stimuli, "conv2", 8, options)
    np.testing.assert_allclose(fitted["components_t"].T, sklearn.components_, atol=1e-5)
    np.testing.assert_allclose(features["conv2"].values, expected, rtol=1e-4, atol=1e-4)
    again = PCAReducer(reference, n_components=8)
    again.fit = None  # a refit would fail: the fit comes from the store
    network.forward_calls = 0
    more = extract(model, image_set(tmp_path / "more", 3, name="more", seed=3), ["conv2"], again, **options)
    assert more["conv2"].shape == (3, 8)
    assert network.forward_calls == 2  # the layer listing and the one batch: nothing for the reference set


def test_an_interrupted_fit_leaves_no_fit_and_keeps_what_it_was_fitted_on(tmp_path):
    _, model, reference, stimuli, options = _pca_setup(tmp_path)

    class InterruptedPCA(PCAReducer):
        def fit(self, reference_activations, folder):
            super().fit(reference_activations, folder)
            raise KeyboardInterrupt  # after every file was written, before the fit is published

    with pytest.raises(KeyboardInterrupt):
        extract(model, stimuli, ["conv2"], InterruptedPCA(reference, n_components=8), **options)
    store, raw_key = options["store"], store_key(model, reference, NoReducer())
    assert [path.name for path in (store.directory(raw_key) / "fits").iterdir()] == [".lock"]
    assert store.has(raw_key, "conv2")
    features = extract(model, stimuli, ["conv2"], PCAReducer(reference, n_components=8), **options)
    assert features["conv2"].shape == (5, 8) and store.has_fit(raw_key, "conv2", "pca.n8")


def test_pca_with_as_many_components_as_images_zeroes_the_one_centring_removes(tmp_path):
    _, model, reference, stimuli, options = _pca_setup(tmp_path)
    features = extract(model, stimuli, ["conv2"], PCAReducer(reference, n_components=12), **options)
    sklearn, expected = _sklearn_pca(model, reference, stimuli, "conv2", 12, options)
    assert sklearn.explained_variance_[11] < 1e-9 * sklearn.explained_variance_[0]  # its 12th: rounding
    np.testing.assert_allclose(features["conv2"].values[:, :11], expected[:, :11], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(features["conv2"].values[:, 11], 0)


def test_pca_passes_narrow_layers_through_without_a_fit(tmp_path):
    network, model, reference, stimuli, options = _pca_setup(tmp_path, n_reference=6)
    reducer = PCAReducer(reference, n_components=16)
    assert reducer.output_dim((16,)) == 16 and reducer.output_dim((17,)) == 6  # at most n_reference
    assert PCAReducer(reference, n_components=4).output_dim((17,)) == 4
    options["min_units"] = 1
    features = extract(model, stimuli, ["fc", "pool"], reducer, **options)  # 5 and 16 units
    assert network.forward_calls == 3  # the layer listing and 2 batches: nothing for the reference set
    raw = extract(model, stimuli, ["fc", "pool"], "none", **options)
    for layer in ("fc", "pool"):
        np.testing.assert_array_equal(features[layer].values, raw[layer].values)
    assert not (options["store"].directory(store_key(model, reference, NoReducer())) / "fits").exists()


def _low_rank_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, n)) * 0.8 ** np.arange(n)  # well-separated singular values
    return (latent @ rng.standard_normal((n, p)) + 3).astype(np.float32)


def _fit_to_files(reference, n_components, folder, block_bytes=pca.BLOCK_BYTES):
    folder.mkdir()
    pca.fit(reference, n_components, folder, block_bytes)
    return {name: np.load(folder / f"{name}.npy", mmap_mode="c") for name in ("mean", "components_t")}


def test_pca_fit_in_small_blocks_equals_one_block_and_sklearn(tmp_path):
    data = _low_rank_data(40, 20_000)
    np.save(tmp_path / "reference.npy", data)
    reference = np.load(tmp_path / "reference.npy", mmap_mode="r")
    small = _fit_to_files(reference, 20, tmp_path / "small", block_bytes=2**17)  # 49 blocks of 409 units
    whole = _fit_to_files(reference, 20, tmp_path / "whole", block_bytes=2**30)
    np.testing.assert_allclose(small["components_t"], whole["components_t"], atol=1e-6)
    exact = PCA(20, svd_solver="full").fit(data.astype(np.float64))  # signs included
    np.testing.assert_allclose(small["components_t"].T, exact.components_, atol=1e-5)
    np.testing.assert_allclose(small["mean"], exact.mean_, rtol=1e-6)
    batch = torch.from_numpy(_low_rank_data(40, 20_000, seed=1)[:7])
    projected = pca.project(batch, torch.from_numpy(small["mean"]), small["components_t"], rows=1000)
    expected = exact.transform(batch.double().numpy())
    assert np.abs(projected.numpy() - expected).max() < 1e-5 * np.abs(expected).max()


def test_pca_fit_and_projection_hold_blocks_not_the_layer(tmp_path):
    """200 × 250,000 reference activations (200 MB), 100 components (100 MB): fitting and projecting in
    8 MB blocks holds a few blocks and the 3 MB mean in anonymous (not memory-mapped) memory."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "reference.npy", rng.standard_normal((200, 250_000), dtype=np.float32))
    reference = np.load(tmp_path / "reference.npy", mmap_mode="r")
    folder = tmp_path / "fit"
    folder.mkdir()
    fit_peak = _peak_anonymous_memory(lambda: pca.fit(reference, 100, folder, block_bytes=2**23))
    assert fit_peak < 60e6, fit_peak
    components_t = np.load(folder / "components_t.npy", mmap_mode="c")
    mean = torch.from_numpy(np.load(folder / "mean.npy"))
    batch = torch.from_numpy(rng.standard_normal((32, 250_000), dtype=np.float32))
    project_peak = _peak_anonymous_memory(lambda: pca.project(batch, mean, components_t, rows=2**23 // 400))
    assert project_peak < 20e6, project_peak


def _peak_anonymous_memory(work) -> int:
    """The most this process's anonymous resident memory grew by while ``work`` ran, sampled every 2 ms."""

    def anonymous() -> int:
        status = Path("/proc/self/status").read_text()
        return int(status.split("RssAnon:")[1].split()[0]) * 1024

    baseline, peak, done = anonymous(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], anonymous())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], anonymous()) - baseline


def test_concurrent_extractions_fit_a_layer_once(tmp_path):
    _, model, reference, stimuli, options = _pca_setup(tmp_path)
    fitted_layers = []

    class CountingPCA(PCAReducer):
        def fit(self, reference_activations, folder):
            fitted_layers.append(folder)
            time.sleep(0.5)  # the other extraction reaches the lock meanwhile
            super().fit(reference_activations, folder)

    def run(model):
        return extract(model, stimuli, ["conv2"], CountingPCA(reference, n_components=8), **options)

    models = [model, tiny_model(CountingNet())]  # the same network, but hooks of its own for each run
    with ThreadPoolExecutor(2) as pool:  # flock excludes two open files of one process as of two processes
        first, second = [result["conv2"].values for result in pool.map(run, models)]
    assert len(fitted_layers) == 1
    np.testing.assert_array_equal(first, second)
