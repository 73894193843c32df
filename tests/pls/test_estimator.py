"""memprobe's torch PLS against scikit-learn's PLSRegression: same predictions, weights, iterations."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from sklearn.cross_decomposition._pls import _get_first_singular_vectors_power_method
from sklearn.model_selection import KFold, ShuffleSplit

from memprobe.correlation import spearman
from memprobe.errors import BenchmarkError, UnscorableFeatures
from memprobe.pls import PLSRegression, PLSWarning, fold_solver, kernels, nipals


def _data(n, p, q, seed=0, offset=3.0):
    """Correlated, non-centred features (like ReLU activations) and targets that depend on them."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, p)) @ rng.normal(size=(p, p)) / np.sqrt(p) + offset * rng.random(p))
    Y = X[:, : min(p, 8)] @ rng.normal(size=(min(p, 8), q)) + rng.normal(size=(n, q))
    return X, Y


def _relative_error(expected, actual):
    return np.abs(np.asarray(expected) - np.asarray(actual)).max() / np.abs(expected).max()


@pytest.mark.parametrize(
    "n, p, q, scale",
    [
        (120, 40, 6, False),  # more images than features: primal form
        (80, 300, 6, False),  # more features than images: n × n kernel form
        (80, 300, 1, False),  # one target: NIPALS takes a single step
        (90, 200, 5, True),
        (90, 30, 1, True),
    ],
)
def test_fit_predict_matches_sklearn_float64(n, p, q, scale):
    X, Y = _data(n, p, q)
    if q == 1:
        Y = Y[:, 0]
    X_new, _ = _data(25, p, q, seed=1)
    reference = SklearnPLS(n_components=12, scale=scale).fit(X, Y)
    ours = PLSRegression(n_components=12, scale=scale).fit(X, Y)
    assert _relative_error(reference.predict(X_new), ours.predict(X_new)) < 1e-4
    assert ours.predict(X_new).shape == reference.predict(X_new).shape
    assert ours.n_iter_ == reference.n_iter_
    # same sign convention: the largest |x-weight| of each component is positive
    np.testing.assert_allclose(ours.x_weights_.numpy(), reference.x_weights_, atol=1e-8)
    np.testing.assert_allclose(ours.y_loadings_.numpy(), reference.y_loadings_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.coef_.numpy(), reference.coef_, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("kernel", [True, False])
def test_batched_folds_match_one_sklearn_fit_per_fold(kernel):
    X, Y = _data(150, 220, 9, seed=2)
    splits = list(ShuffleSplit(n_splits=6, train_size=0.9, random_state=1).split(X))
    expected = [SklearnPLS(25, scale=False).fit(X[tr], Y[tr]).predict(X[te]) for tr, te in splits]
    trains, tests = [s[0] for s in splits], [s[1] for s in splits]
    ours = PLSRegression(25, kernel=kernel).fit_predict_folds(X, Y, trains, tests)
    for fold_expected, fold_ours in zip(expected, ours, strict=True):
        assert _relative_error(fold_expected, fold_ours) < 1e-4


@pytest.mark.parametrize("small_fold", [False, True])  # most rows left out: no shared product of all of Y
def test_folds_of_different_sizes_and_unused_rows(small_fold):
    """LaMem-style splits: folds of unequal size, and rows (a validation set) in no fold at all."""
    X, Y = _data(130, 90, 1, seed=3)
    y = Y[:, 0]
    rng = np.random.default_rng(0)
    order = rng.permutation(130)
    trains = [order[:70], order[10:100]] + ([order[100:130]] if small_fold else [])
    tests = [order[100:130], order[:10]] + ([order[:10]] if small_fold else [])
    ours = PLSRegression(10).fit_predict_folds(X, y, trains, tests)
    for tr, te, pred in zip(trains, tests, ours, strict=True):
        expected = SklearnPLS(10, scale=False).fit(X[tr], y[tr]).predict(X[te])
        assert pred.shape == (len(te),)
        assert _relative_error(expected, pred) < 1e-4


def test_float32_gives_the_same_scores_to_three_decimals():
    X, Y = _data(200, 400, 4, seed=4)
    splits = list(ShuffleSplit(n_splits=5, train_size=0.8, random_state=1).split(X))
    ours = PLSRegression(25, dtype=torch.float32).fit_predict_folds(
        X, Y, [s[0] for s in splits], [s[1] for s in splits]
    )
    for (tr, te), pred in zip(splits, ours, strict=True):
        expected = SklearnPLS(25, scale=False).fit(X[tr], Y[tr]).predict(X[te])
        assert pred.dtype == np.float32
        for j in range(Y.shape[1]):
            assert round(spearman(pred[:, j], Y[te, j]), 3) == round(spearman(expected[:, j], Y[te, j]), 3)


def test_torch_input_gives_torch_output_on_the_requested_device_and_dtype():
    X, Y = _data(60, 100, 3, seed=5)
    model = PLSRegression(5, dtype=torch.float32).fit(torch.tensor(X), torch.tensor(Y))
    prediction = model.predict(torch.tensor(X[:7]))
    assert isinstance(prediction, torch.Tensor) and prediction.dtype == torch.float32
    assert prediction.shape == (7, 3)


def test_fewer_training_samples_than_components_warns_and_reduces():
    X, Y = _data(40, 120, 3, seed=6)
    trains, tests = [np.arange(12), np.arange(12, 40)], [np.arange(30, 40), np.arange(12)]
    message = r"fold 0: 12 training samples × 120 features .* using 11 instead of 25"
    with pytest.warns(PLSWarning, match=message):
        ours = PLSRegression(25).fit_predict_folds(X, Y, trains, tests)
    # the rule: min(n_components, n_train - 1, p) components, for every fold of the call
    expected = SklearnPLS(11, scale=False).fit(X[trains[0]], Y[trains[0]]).predict(X[tests[0]])
    assert _relative_error(expected, ours[0]) < 1e-4
    assert np.isfinite(ours[1]).all()


def test_rank_deficient_features_stop_early_with_a_warning():
    rng = np.random.default_rng(7)
    basis = rng.normal(size=(60, 3))
    X = basis @ rng.normal(size=(3, 50))  # 50 features of rank 3
    Y = basis @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(60, 2))
    with pytest.warns(PLSWarning, match="X has rank 3"):
        model = PLSRegression(10).fit(X, Y)
    assert model.n_components_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = SklearnPLS(3, scale=False).fit(X, Y).predict(X)
    assert _relative_error(expected, model.predict(X)) < 1e-4


def test_bad_input_is_a_clear_error():
    X, Y = _data(30, 10, 2)
    X[3, 4] = np.nan
    with pytest.raises(BenchmarkError, match="NaN"):
        PLSRegression(3).fit(X, Y)
    with pytest.raises(BenchmarkError, match="30 samples but Y has 29"):
        PLSRegression(3).fit(np.ones((30, 10)), Y[:29])
    with pytest.raises(BenchmarkError, match="cannot fit any component"):
        PLSRegression(3).fit_predict_folds(X[:, :2] * 0 + 1, Y, [np.arange(1)], [np.arange(1, 5)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_sklearn():
    X, Y = _data(300, 700, 10, seed=8)
    splits = list(ShuffleSplit(n_splits=4, train_size=0.9, random_state=1).split(X))
    for dtype, tolerance in [(torch.float64, 1e-4), (torch.float32, 2e-2)]:
        ours = PLSRegression(25, device="cuda", dtype=dtype).fit_predict_folds(
            torch.tensor(X), torch.tensor(Y), [s[0] for s in splits], [s[1] for s in splits]
        )
        for (tr, te), pred in zip(splits, ours, strict=True):
            assert pred.device.type == "cuda"
            expected = SklearnPLS(25, scale=False).fit(X[tr], Y[tr]).predict(X[te])
            assert _relative_error(expected, pred.cpu().numpy()) < tolerance


def test_ill_conditioned_late_components_still_match_sklearn():
    """Features = target × a random direction + small noise: after one component the target is nearly
    explained and X nearly exhausted, so 25 components stress the rounding of every deflation."""
    rng = np.random.default_rng(9)
    for n, p in [(800, 30), (300, 1000)]:  # primal and n × n kernel form
        y = rng.uniform(0.2, 0.9, size=n)
        X = np.outer(y, rng.normal(size=p)) + 0.05 * rng.normal(size=(n, p))
        ours = PLSRegression(25).fit(X, y).predict(X)
        assert _relative_error(SklearnPLS(25, scale=False).fit(X, y).predict(X), ours) < 1e-4
        folds = list(KFold(4, shuffle=True, random_state=0).split(X))
        batched = PLSRegression(25).fit_predict_folds(X, y, [f[0] for f in folds], [f[1] for f in folds])
        for (train, test), prediction in zip(folds, batched, strict=True):
            expected = SklearnPLS(25, scale=False).fit(X[train], y[train]).predict(X[test])
            assert _relative_error(expected, prediction) < 1e-4


def test_kernel_form_with_duplicate_images_matches_sklearn():
    """Duplicate images (LNSIM has a byte-identical pair) make the Gram matrix singular: its pivoted
    Cholesky factor stops at the rank, and the fits must not change."""
    X, Y = _data(70, 400, 4, seed=12)
    X[10], X[20] = X[3], X[3]
    Y[10] = Y[3] + 0.5  # same image, other scores
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    trains, tests = [f[0] for f in folds], [f[1] for f in folds]
    ours = PLSRegression(25, kernel=True).fit_predict_folds(X, Y, trains, tests)
    for (train, test), prediction in zip(folds, ours, strict=True):
        expected = SklearnPLS(25, scale=False).fit(X[train], Y[train]).predict(X[test])
        assert _relative_error(expected, prediction) < 1e-4
    factor = fold_solver._gram_factor(torch.tensor(X - X.mean(axis=0)))
    assert factor.shape[1] == 70 - 3  # centring and the two duplicates each take one dimension
    np.testing.assert_allclose(factor @ factor.T, (X - X.mean(axis=0)) @ (X - X.mean(axis=0)).T, atol=1e-9)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-8), (torch.float32, 1e-4)])
def test_targets_explained_by_few_components_match_sklearn(dtype, tolerance):
    """Three latent factors drive X and 20 targets: after three components S = X_kᵀY_k has shrunk by
    orders of magnitude, so M = SᵀS is recomputed from S while S itself still carries its updates."""
    rng = np.random.default_rng(15)
    latent = rng.normal(size=(300, 3))
    X = latent @ rng.normal(size=(3, 100)) + 0.3 * rng.normal(size=(300, 100)) + 1
    Y = latent @ rng.normal(size=(3, 20)) + 0.01 * rng.normal(size=(300, 20))
    reference = SklearnPLS(10, scale=False).fit(X, Y)
    ours = PLSRegression(10, dtype=dtype).fit(X, Y)
    assert ours.n_iter_ == reference.n_iter_
    assert _relative_error(reference.predict(X), ours.predict(X)) < tolerance


@pytest.mark.parametrize("offset", [3.0, 1e4])
def test_features_far_from_zero_keep_their_precision(offset):
    """The per-component pass multiplies uncentred X (the mean is subtracted from the products): features
    whose mean is thousands of times their spread still give scikit-learn's predictions and iterations."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(300, 120)) @ rng.normal(size=(120, 120)) / 10 + offset
    Y = X[:, :5] @ rng.normal(size=(5, 7)) + rng.normal(size=(300, 7))
    ours = PLSRegression(25).fit(X, Y)
    reference = SklearnPLS(25, scale=False).fit(X, Y)
    assert ours.n_iter_ == reference.n_iter_
    assert _relative_error(reference.predict(X), ours.predict(X)) < 1e-8


def test_a_target_that_x_explains_exactly_stops_the_fit_as_in_sklearn():
    """scikit-learn zeroes a residual column of Y once all its values are below 10 eps, and stops when no
    column is left. Orthogonal features with two distinct variances explain a linear target in two
    components (PLS1 spans the Krylov space of XᵀX, which has two eigenvalues); the target is small, so
    its residual is far below 10 eps whatever the rounding."""
    rng = np.random.default_rng(14)
    basis = rng.normal(size=(50, 6))
    basis, _ = np.linalg.qr(basis - basis.mean(axis=0))
    X = basis * np.array([1, 1, 1, 2, 2, 2]) * 5 + 3
    y = 0.01 * (X @ rng.normal(size=6)) + 0.07
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SklearnPLS(6, scale=False).fit(X, y)
    with pytest.warns(PLSWarning, match="Y residual is constant after 2 components"):
        ours = PLSRegression(6).fit(X, y)
    assert ours.n_components_ == len(reference.n_iter_) == 2
    assert _relative_error(reference.predict(X), ours.predict(X)) < 1e-8


@pytest.mark.parametrize("value", [0.0, 3.7])
def test_constant_features_are_refused_not_scored(value):
    X, Y = _data(40, 6, 2)
    X[:] = value
    with pytest.raises(UnscorableFeatures, match="constant over its 40 training samples"):
        PLSRegression(3).fit(X, Y)
    folds = [np.arange(0, 30), np.arange(10, 40)]
    with pytest.raises(UnscorableFeatures, match="fold 0: the features are constant over its 30"):
        PLSRegression(3).fit_predict_folds(X, Y, folds, [np.arange(30, 40), np.arange(0, 10)])
    X[20, 0] += 1.0  # one varying value (in both folds) is enough to fit
    PLSRegression(3).fit_predict_folds(X, Y, folds, [np.arange(30, 40), np.arange(0, 10)])


def test_a_fold_that_runs_out_of_rank_early_stops_while_the_others_go_on():
    rng = np.random.default_rng(10)
    basis = rng.normal(size=(3, 40))
    weights = rng.normal(size=(60, 3))
    weights[:30, 2] = 0  # the first 30 images span only two of the three directions
    X, Y = weights @ basis, weights @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(60, 2))
    trains, tests = [np.arange(30), np.arange(60)], [np.arange(30, 60), np.arange(30)]
    with pytest.warns(PLSWarning, match="fold 0: X has rank 2"):
        ours = PLSRegression(10).fit_predict_folds(X, Y, trains, tests)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for components, train, test, prediction in zip((2, 3), trains, tests, ours, strict=True):
            expected = SklearnPLS(components, scale=False).fit(X[train], Y[train]).predict(X[test])
            assert _relative_error(expected, prediction) < 1e-4


@pytest.mark.parametrize("scale", [1.0, 5.0, 1e6])
@pytest.mark.parametrize("gap, targets, steps",
    [(0.97, 30, (50, 499)), (0.995, 30, (50, 499)), (0.0, 30, (2, 2)), (None, 1, (1, 1))])
def test_power_iteration_follows_sklearns_power_method_step_by_step(scale, gap, targets, steps):
    """Slowly converging problems (top singular values 3 % and 0.5 % apart: tens to hundreds of steps),
    one that converges at once (S of rank one: the earliest stop, at the second step) and a single
    target (no iteration): the same weights and step counts as scikit-learn's power method on X and Y
    with XᵀY = S, from M = SSᵀ alone."""
    rng = np.random.default_rng(11)
    n, p = 80, 40
    X, _ = np.linalg.qr(rng.normal(size=(n, p)))  # orthonormal columns: S = YᵀX = Aᵀ for Y = X A
    left, _ = np.linalg.qr(rng.normal(size=(p, targets)))
    right, _ = np.linalg.qr(rng.normal(size=(targets, targets)))
    singular = np.r_[1.0, gap, rng.uniform(0.1, 0.9, targets - 2) * (gap > 0)] if targets > 1 else np.ones(1)
    A = scale * (left * singular) @ right.T
    S = A.T
    expected, _, expected_iters = _get_first_singular_vectors_power_method(X, X @ A)
    beta, iters = nipals._power_iteration(np.eye(targets)[:1], (S @ S.T)[None], targets == 1)
    assert iters[0] == expected_iters
    assert steps[0] <= expected_iters <= steps[1]  # the cases are what they claim
    np.testing.assert_allclose(beta[0] @ S, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-8), (torch.float32, 1e-3)])
def test_the_compiled_pass_over_features_in_memory_gives_sklearns_fit(monkeypatch, dtype, tolerance):
    """Features larger than the cache go through ``kernels``'s loops (rows four at a time, shared between
    threads): one fold with all rows, one with rows left out, several folds; small data made to look
    large must give scikit-learn's predictions every way, with n (here 101) not a multiple of four.
    With 4 targets S is recomputed at each component, through kernels.cross."""
    monkeypatch.setattr(fold_solver, "CACHE_BYTES", 0)
    calls, crosses = [], []
    scores, cross = kernels.scores, kernels.cross
    monkeypatch.setattr(kernels, "scores", lambda *args: calls.append(len(args[1])) or scores(*args))
    monkeypatch.setattr(kernels, "cross",
                        lambda *args: crosses.append(args[2].shape[1]) or cross(*args))
    X, Y = _data(101, 60, 4, seed=12)
    splits = list(KFold(4, shuffle=True, random_state=0).split(X))
    expected = [SklearnPLS(10, scale=False).fit(X[tr], Y[tr]).predict(X[te]) for tr, te in splits]
    (train, test), first = splits[0], expected[0]

    model = PLSRegression(10, dtype=dtype, kernel=False).fit(X[train], Y[train])
    assert _relative_error(first, model.predict(X[test])) < tolerance
    one_fold = PLSRegression(10, dtype=dtype, kernel=False).fit_predict_folds(X, Y, [train], [test])[0]
    assert _relative_error(first, one_fold) < tolerance
    folds = PLSRegression(10, dtype=dtype, kernel=False).fit_predict_folds(
        X, Y, [s[0] for s in splits], [s[1] for s in splits])
    for fold_expected, fold_ours in zip(expected, folds, strict=True):
        assert _relative_error(fold_expected, fold_ours) < tolerance
    assert calls == [1] * 20 + [4] * 10  # one pass per component
    assert crosses == [4] * 20 + [16] * 10  # one recomputed S (folds × targets columns) per component


def test_the_compiled_loops_work_where_numba_can_write_no_cache():
    """An install where numba finds no writable folder for its cache (read-only, and no user cache):
    the loops compile in each process instead of failing at import."""
    code = ("import numpy as np; from memprobe.pls import kernels as k; "
            "print(type(k.power_iteration_rows._cache).__name__, "
            "k.power_iteration(np.eye(3)[:1], 2 * np.eye(3)[None], 1e-6, 500)[1][0])")
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "_IPythonCacheLocator"}  # none outside IPython
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["NullCache", "2"]
