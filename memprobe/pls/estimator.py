"""PLS regression in torch that reproduces scikit-learn's ``PLSRegression`` (NIPALS, mode A).

Same algorithm, same numbers: scikit-learn's power iteration (start from the first non-constant
column of Y, ``max_iter=500``, ``tol=1e-06`` on the squared change of the x-weights, no iteration
when Y has one column), the same deflation of X and Y, the same sign convention (the largest
|x-weight| of each component is positive) and ``coef = W pinv(PᵀW) Qᵀ``.

This module holds the estimator, scikit-learn's ``fit``/``predict`` plus ``fit_predict_folds`` (every
cross-validation fold of one data set fitted together), and the checks of its input. The work is done
below it: ``nipals`` (the component loop, and why it is fast), ``fold_solver`` (the features as the
folds share them, and the passes over them), ``kernels`` (those passes' compiled CPU loops).

Small samples. A centred training set of n images has rank ≤ n − 1, and scikit-learn would go on
fitting numerical noise past the rank. Here the number of components is cut to
``min(n_components, n_train − 1, p)`` with a warning naming the fold and sizes, and ``nipals`` stops a
fold early (with a warning) when its deflated X has no variance left or Y nothing left to explain.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from memprobe.errors import BenchmarkError, UnscorableFeatures
from memprobe.pls.fold_solver import FoldSolver, cpu_threads, kernel_form_is_cheaper
from memprobe.pls.nipals import PLSWarning, nipals, regression_coefficients


def _as_tensor(array, device, dtype) -> torch.Tensor:
    """The data as a tensor, without a copy where it already has the dtype (nothing writes to it)."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    values = np.asarray(array, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    with warnings.catch_warnings():  # a read-only array (a memory-mapped store) is fine: it is only read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(values, device=device)


def _check_variance(solver: FoldSolver, x_mean: torch.Tensor, names: Sequence[str]) -> None:
    """Refuse folds whose training features are constant: PLS would fit nothing and predict the mean.

    The centred variance is judged against the size of the uncentred features (trace + n‖mean‖²): a
    constant non-zero layer leaves only rounding after centring.
    """
    traces = solver.traces
    scale = traces + solver.n_train * x_mean.square().sum()
    flat = traces <= 1000 * torch.finfo(traces.dtype).eps * scale
    if bool(flat.any()):
        f = int(torch.nonzero(flat)[0])
        raise UnscorableFeatures(
            f"PLS {names[f]}: the features are constant over its {int(solver.n_train[f])} training samples "
            "(no variance to regress on), so no component can be fitted and the layer has no score"
        )


def _component_limit(n_components: int, n_train: int, p: int, name: str) -> int:
    limit = min(n_components, n_train - 1, p)
    if limit < 1:
        raise BenchmarkError(
            f"PLS {name}: {n_train} training samples × {p} features cannot fit any component; "
            "give at least 2 training samples and 1 feature."
        )
    if limit < n_components:
        warnings.warn(
            f"PLS {name}: {n_train} training samples × {p} features support at most {limit} components "
            f"(centred rank ≤ n − 1); using {limit} instead of {n_components}",
            PLSWarning,
            stacklevel=3,
        )
    return limit


class PLSRegression:
    """scikit-learn's ``PLSRegression`` (NIPALS) on torch tensors, any device and float dtype.

    ``kernel``: ``None`` chooses between the n × n Gram form and products with X by their cost
    (``fold_solver.kernel_form_is_cheaper``); True or False forces one.
    Attributes after ``fit`` follow scikit-learn: ``x_weights_``, ``x_loadings_``, ``y_weights_``,
    ``y_loadings_``, ``x_rotations_``, ``coef_`` (targets × features), ``intercept_``, ``n_iter_``,
    ``n_components_`` (components actually used), as torch tensors.
    """

    def __init__(self, n_components: int = 25, scale: bool = False, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float64, kernel: bool | None = None):
        self.n_components = n_components
        self.scale = scale
        self.device = torch.device(device)
        self.dtype = dtype
        self.kernel = kernel

    def _use_kernel(self, n: int, p: int, q: int, n_components: int, folds: int = 1) -> bool:
        if self.kernel is not None:
            return self.kernel
        return kernel_form_is_cheaper(n, p, q, n_components, folds)

    def _prepare(self, X, Y):
        X = _as_tensor(X, self.device, self.dtype)
        Y = _as_tensor(Y, self.device, self.dtype)
        if X.ndim != 2:
            raise BenchmarkError(f"PLS: X must be 2-D (samples × features), got shape {tuple(X.shape)}")
        one_d = Y.ndim == 1
        Y = Y.reshape(-1, 1) if one_d else Y
        if Y.shape[0] != X.shape[0]:
            raise BenchmarkError(f"PLS: X has {X.shape[0]} samples but Y has {Y.shape[0]}")
        return X, Y, one_d

    @staticmethod
    def _check_finite(x_mean: torch.Tensor, y_mean: torch.Tensor) -> None:
        # a NaN or infinity anywhere makes its column's mean non-finite: no separate pass over X
        if not (torch.isfinite(x_mean).all() and torch.isfinite(y_mean).all()):
            raise BenchmarkError("PLS: X or Y contains NaN or infinite values; remove or impute them first")

    def fit(self, X, Y) -> PLSRegression:
        X, Y, self._one_d = self._prepare(X, Y)
        n, p = X.shape
        self.x_mean_ = X.mean(dim=0)
        self.y_mean_ = Y.mean(dim=0)
        self._check_finite(self.x_mean_, self.y_mean_)
        Yc = Y - self.y_mean_
        Xc, offset = X, self.x_mean_  # centred as the solver reads it
        self.x_std_, self.y_std_ = torch.ones_like(self.x_mean_), torch.ones_like(self.y_mean_)
        if self.scale:
            self.x_std_, self.y_std_ = _std(X - self.x_mean_), _std(Yc)
            Xc, Yc, offset = (X - self.x_mean_) / self.x_std_, Yc / self.y_std_, None
        A = _component_limit(self.n_components, n, p, "fit")
        everything = torch.ones(1, n, dtype=torch.bool, device=X.device)
        kernel = self._use_kernel(n, p, Y.shape[1], A)
        solver = FoldSolver(Xc, offset, everything, kernel, Yc)
        _check_variance(solver, self.x_mean_ / self.x_std_, ["fit"])
        with cpu_threads(1, X.device):
            W, P, R, T, C, tts, n_iter = nipals(solver, Yc.unsqueeze(0), solver.targets_cross(), A, ["fit"],
                                                dual_weights=kernel)
        if kernel:  # W and P are in the factor's coordinates: W = X₀ᵀR, P = X₀ᵀT / tᵀt
            safe = torch.where(tts[0] > 0, tts[0], torch.ones_like(tts[0]))
            W, P = (torch.cat([R[0], T[0]], dim=1).T @ solver.X).split(A)  # (Vᵀ A)ᵀ: see nipals._vbm
            P = P / safe.unsqueeze(1)
        else:
            W, P = W[0], P[0]
        # scikit-learn's signs: each component's largest |x-weight| is positive (W, P: components × features)
        largest = W.gather(1, W.abs().argmax(dim=1, keepdim=True)).squeeze(1)
        sign = torch.where(largest < 0, -torch.ones_like(largest), torch.ones_like(largest))
        self.x_weights_, self.x_loadings_ = W.mul_(sign.unsqueeze(1)).T, P.mul_(sign.unsqueeze(1)).T
        self.y_weights_ = self.y_loadings_ = C[0] * sign
        self.x_scores_ = T[0] * sign
        self.x_rotations_ = self.x_weights_ @ torch.linalg.pinv(self.x_loadings_.T @ self.x_weights_)
        self.intercept_ = self.y_mean_
        self.n_iter_ = n_iter[0][: int((tts[0] > 0).sum())].tolist()
        self.n_components_ = len(self.n_iter_)
        return self

    @property
    def coef_(self) -> torch.Tensor:
        """Targets × features: predictions are (X − x_mean_) coef_ᵀ + intercept_."""
        return ((self.x_rotations_ @ self.y_loadings_.T) * self.y_std_).T / self.x_std_

    def predict(self, X):
        is_numpy = not isinstance(X, torch.Tensor)
        X = _as_tensor(X, self.device, self.dtype)
        # through the components (coef_ = x_rotations_ y_loadings_ᵀ): no features × targets product, no
        # centred copy of X
        scores = (X / self.x_std_ if self.scale else X) @ self.x_rotations_
        scores -= (self.x_mean_ / self.x_std_) @ self.x_rotations_
        pred = scores @ (self.y_loadings_.T * self.y_std_) + self.intercept_
        pred = pred.squeeze(1) if self._one_d else pred
        return pred.cpu().numpy() if is_numpy else pred

    def fit_predict_folds(self, X, Y, train_indices_list: Sequence, test_indices_list: Sequence):
        """Fit one model per fold on X[train] and predict X[test]; all folds share the work.

        Returns a list (one per fold) of predictions, test samples × targets (1-D if Y is 1-D);
        numpy arrays when X is not a torch tensor. Same numbers as fitting each fold separately.
        """
        if len(train_indices_list) != len(test_indices_list):
            raise BenchmarkError(f"PLS: {len(train_indices_list)} training folds but "
                                 f"{len(test_indices_list)} test folds")
        is_numpy = not isinstance(X, torch.Tensor)
        if self.scale:  # per-fold standard deviations: no shared Gram matrix
            predictions = []
            for train, test in zip(train_indices_list, test_indices_list, strict=True):
                model = PLSRegression(self.n_components, True, self.device, self.dtype, self.kernel)
                train, test = np.asarray(train), np.asarray(test)
                predictions.append(model.fit(X[train], Y[train]).predict(X[test]))
            return predictions
        X, Y, one_d = self._prepare(X, Y)
        n, p = X.shape
        F = len(train_indices_list)
        masks = torch.zeros(F, n, dtype=torch.bool, device=X.device)
        for f, train in enumerate(train_indices_list):
            train = torch.as_tensor(np.asarray(train), dtype=torch.long, device=X.device)
            if train.numel() and (train.min() < 0 or train.max() >= n):
                raise BenchmarkError(f"PLS fold {f}: training indices out of range for {n} samples")
            masks[f, train] = True
        names = [f"fold {f}" for f in range(F)]
        n_train = masks.sum(dim=1).tolist()
        A = min(_component_limit(self.n_components, int(m), p, names[f]) for f, m in enumerate(n_train))
        x_mean = X.mean(dim=0)
        self._check_finite(x_mean, Y.mean(dim=0))
        solver = FoldSolver(X, x_mean, masks, self._use_kernel(n, p, Y.shape[1], A, F), Y - Y.mean(dim=0))
        _check_variance(solver, x_mean, names)
        Yf = solver.centre(Y.unsqueeze(0).expand(F, n, Y.shape[1]))
        y_means = (Y.unsqueeze(0) * solver.mask.unsqueeze(-1)).sum(dim=1) / solver.n_train.unsqueeze(1)
        with cpu_threads(1, X.device):
            W, P, _, _, C, tts, _ = nipals(solver, Yf, solver.targets_cross(), A, names)
        coef = regression_coefficients(W, P, C, tts)
        tests = [torch.as_tensor(np.asarray(t), dtype=torch.long, device=X.device) for t in test_indices_list]
        fitted = [(solver.rows(rows) - solver.means[f]) @ coef[f] for f, rows in enumerate(tests)]
        predictions = []
        for f in range(F):
            pred = fitted[f] + y_means[f]
            pred = pred.squeeze(1) if one_d else pred
            predictions.append(pred.cpu().numpy() if is_numpy else pred)
        return predictions


def _std(centred: torch.Tensor) -> torch.Tensor:
    std = centred.std(dim=0, correction=1)
    return torch.where(std == 0, torch.ones_like(std), std)
