"""Reducers: shapes, determinism, the sparse projections' distributions, reference-set PCA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from extract_fixtures import CountingNet, image_set, tiny_model
from sklearn.decomposition import PCA
from sklearn.feature_extraction import FeatureHasher
from sklearn.random_projection import SparseRandomProjection

from memprobe.errors import MemprobeError
from memprobe.extract import extract
from memprobe.reduce import (
    PCAReducer,
    SketchReducer,
    SRPReducer,
    count_sketch_matrix,
    get_reducer,
    sparse_random_matrix,
)
from memprobe.store import ActivationStore


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


def test_pca_fitted_on_a_reference_set_matches_sklearn_and_is_cached(tmp_path):
    network = CountingNet()
    model = tiny_model(network)
    reference = image_set(tmp_path / "ref", 12, name="reference", seed=1)
    stimuli = image_set(tmp_path / "images", 5, name="probe", seed=2)
    store = ActivationStore(tmp_path / "s")
    options = dict(store=store, batch_size=4, num_workers=0, progress=False)
    features = extract(model, stimuli, ["conv2"], PCAReducer(reference, n_components=8), **options)
    assert features["conv2"].shape == (5, 8)
    raw_reference = extract(model, reference, ["conv2"], "none", **options)["conv2"].values
    raw = extract(model, stimuli, ["conv2"], "none", **options)["conv2"].values
    expected = PCA(8, random_state=0).fit(raw_reference).transform(raw)
    np.testing.assert_allclose(np.abs(features["conv2"].values), np.abs(expected), rtol=1e-3, atol=1e-3)
    network.forward_calls = 0
    again = PCAReducer(reference, n_components=8)
    again.prepare(model, ["conv2"], **options)
    assert network.forward_calls == 1  # the layer listing only: the fitted PCA comes from the store


def test_pca_over_budget_is_fitted_on_the_sparse_projection(tmp_path):
    model = tiny_model()
    reference = image_set(tmp_path / "ref", 12, name="reference", seed=1)
    stimuli = image_set(tmp_path / "images", 5, name="probe", seed=2)
    options = dict(store=ActivationStore(tmp_path / "s"), batch_size=4, num_workers=0, progress=False)
    reducer = PCAReducer(reference, n_components=6, max_fit_bytes=1000, srp_dim=64)
    features = extract(model, stimuli, ["conv2"], reducer, **options)
    assert features["conv2"].shape == (5, 6)
    projected = extract(model, stimuli, ["conv2"], SRPReducer(64), **options)["conv2"].values
    projected_reference = extract(model, reference, ["conv2"], SRPReducer(64), **options)["conv2"].values
    expected = PCA(6, random_state=0).fit(projected_reference).transform(projected)
    np.testing.assert_allclose(np.abs(features["conv2"].values), np.abs(expected), rtol=1e-3, atol=1e-3)
    assert "max_fit_bytes=1000" in reducer.key() and "srp(dim=64" in reducer.key()
