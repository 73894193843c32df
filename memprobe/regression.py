"""PLS regression in torch that reproduces scikit-learn's ``PLSRegression`` (NIPALS, mode A).

Same algorithm, same numbers: scikit-learn's power iteration (start from the first non-constant
column of Y, ``max_iter=500``, ``tol=1e-06`` on the squared change of the x-weights, no iteration
when Y has one column), the same deflation of X and Y, the same sign convention (the largest
|x-weight| of each component is positive) and ``coef = W pinv(PᵀW) Qᵀ``.

Why it is fast. X is never deflated in memory. With S_k = X_kᵀY_k (features × targets) the power
iteration runs on the q × q matrix M = S_kᵀS_k: for u = Y_kγ,

    w ∝ X_kᵀu = S_kβ,  ‖w‖² = βᵀMβ,  ‖w − w_old‖² = (β − β_old)ᵀM(β − β_old),

so scikit-learn's iterates come out (up to rounding) at O(q²) per iteration. A component then needs
the x-scores t = X_k w = X₀w − T Pᵀw and the loadings X_kᵀt = X₀ᵀt − P Tᵀt: one pass over X₀ gives
both (on the CPU a compiled loop, ``pls_kernels``, that multiplies a few rows by w and then by their
results while they are in cache), after which Y and M take low-rank updates, and S_{k+1} = S_k − tᵀt p cᵀ
is kept as the last computed S less these terms. S is recomputed as X₀ᵀΠY_k (Π projects out the
earlier x-scores) whenever its updates would lose digits.

With ``scale=False`` PLS sees X only through the inner products of its rows: a factor Z with
ZZᵀ = X₀X₀ᵀ gives the same scores, iterations and predictions. With many more features than images,
Z is the pivoted Cholesky factor of the n × n Gram matrix (the kernel form), and each pass costs n²
instead of np. Cross-validation folds share one Z of all images: a fold's centred training matrix is
Z's rows centred on the fold's mean and zero elsewhere, and all folds run batched.

Small samples. A centred training set of n images has rank ≤ n − 1, and scikit-learn would go on
fitting numerical noise past the rank. Here the number of components is cut to
``min(n_components, n_train − 1, p)`` with a warning naming the fold and sizes, and a fold stops
early (with a warning) when the deflated X has no variance left (remaining Σ‖x‖² below
1000 · machine-epsilon of the total), or when Y has nothing left to explain (as scikit-learn does).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
from scipy.linalg import blas, lapack
from threadpoolctl import ThreadpoolController

from memprobe import pls_kernels
from memprobe.errors import BenchmarkError, UnscorableFeatures

MAX_ITER = 500
TOL = 1e-06
FRESH_S_TARGETS = 8
# Reading one matrix element from memory costs about as much as this many multiply-adds in a large
# matrix product (2 cores, float64: products with a few columns are bound by memory bandwidth).
STREAM_COST = 12
# Below this many multiply-adds a CPU product runs on one thread: waking the pool costs more (and on a
# busy machine a whole scheduler time slice).
PARALLEL_FLOPS = 1e7
# Rows of Z per block of a pass through torch (_FoldSolver._pass): about the size of a core's L2 cache,
# so the second product of a block reads it from cache.
BLOCK_BYTES = 2 << 20
CACHE_BYTES = 16 << 20  # about half the last-level cache: a Z this small is read from cache, not memory
# Up to this many columns (folds, or folds × targets) a pass streams Z from memory through pls_kernels;
# with more, BLAS's blocked products compute faster
FUSED_COLUMNS = 16


class PLSWarning(UserWarning):
    """PLS could not use all requested components, or NIPALS did not converge."""


def _as_tensor(array, device, dtype) -> torch.Tensor:
    """The data as a tensor, without a copy where it already has the dtype (nothing writes to it)."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    values = np.asarray(array, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    with warnings.catch_warnings():  # a read-only array (a memory-mapped store) is fine: it is only read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(values, device=device)


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # finding the loaded BLAS libraries takes milliseconds: once


def _scipy_blas_threads():
    """SciPy's BLAS (syrk, pstrf) on as many threads as torch uses."""
    return _blas_controller().limit(limits=torch.get_num_threads(), user_api="blas")


def _gram(X: torch.Tensor) -> torch.Tensor:
    """X Xᵀ. On the CPU BLAS syrk computes one triangle only: half the multiply-adds of X @ X.T."""
    if X.device.type != "cpu" or X.dtype not in (torch.float32, torch.float64):
        return X @ X.T
    x = X.contiguous().numpy()
    syrk = blas.dsyrk if X.dtype == torch.float64 else blas.ssyrk
    with _scipy_blas_threads():
        upper = syrk(1.0, x.T, trans=1)  # x.T is a column-major view of x: no copy; the rest stays 0
    full = upper + upper.T
    np.fill_diagonal(full, np.diagonal(upper))
    return torch.from_numpy(full)


def _gram_factor(X: torch.Tensor) -> torch.Tensor:
    """Z (n × r, r the numerical rank) with ZZᵀ = XXᵀ, factored in float64 whatever X's dtype: pivoted
    Cholesky (LAPACK pstrf, n³/3 multiply-adds) on the CPU, an eigendecomposition on other devices."""
    gram = _gram(X).to(torch.float64)
    if gram.device.type != "cpu":
        values, vectors = torch.linalg.eigh(gram)
        return (vectors * values.clamp(min=0).sqrt()).to(X.dtype)
    with _scipy_blas_threads():
        factor, pivots, rank, _ = lapack.dpstrf(gram.numpy(), lower=1)  # gram[piv][:, piv] = L Lᵀ
    Z = torch.zeros(len(gram), rank, dtype=torch.float64)
    Z[torch.as_tensor(pivots - 1, dtype=torch.long)] = torch.from_numpy(np.tril(factor)[:, :rank])
    return Z.to(X.dtype)


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="memprobe-pls")


class _FoldSolver:
    """The products of batched NIPALS over F folds that share n images, through a factor Z (n × d) of
    the images' Gram matrix: the centred features X − offset themselves, or ``_gram_factor`` of them.

    Fold f's centred training matrix is Z_f = mask_f ⊙ (Z − 1m_fᵀ), m_f the mean of its training rows:
    vectors over images are centred over the fold's training rows and zero elsewhere (``centre``).
    On the CPU the features are centred block by block as a pass reads them, never copied whole: a
    copy of X costs as much as several passes (a fresh allocation of that size is page-faulted in).
    """

    def __init__(self, X: torch.Tensor, offset: torch.Tensor | None, train_masks: torch.Tensor,
                 use_kernel: bool, Y: torch.Tensor):
        """``offset``: the mean of X's rows (None: X is centred); Y: the n × q targets, centred, whose
        product with Z (for ``targets_cross``) the first pass over Z computes too. Global centring only
        improves precision; each fold re-centres on its own training rows."""
        self.threads = torch.get_num_threads()  # for the large products; the rest runs on one thread
        self.mask = train_masks.to(X.dtype)  # F × n
        self.n_train = self.mask.sum(dim=1)  # F
        with _threads(self.threads, X.device):
            if use_kernel or X.device.type != "cpu" or offset is None:
                self.X = X if offset is None else X - offset
                self.Z, self.offset = _gram_factor(self.X) if use_kernel else self.X, None
            else:
                self.X, self.Z, self.offset = None, X, offset
        self.Y = Y
        squares = torch.empty(len(X), dtype=X.dtype, device=X.device)
        F = len(self.mask)

        def sums(rows, block, total):  # each fold's Σz_i, and Σ y_i z_iᵀ
            squares[rows] = torch.linalg.vector_norm(block, dim=1).square()
            total[:F].addmm_(self.mask[:, rows], block)
            total[F:].addmm_(Y[rows].T, block)

        totals = self._pass((F + Y.shape[1], self.Z.shape[1]), sums)
        self.means, self._targets_sum = totals[:F] / self.n_train.unsqueeze(1), totals[F:]  # F × d, q × d
        # Σ‖z_i − m_f‖² over each fold's training rows: the trace of its centred kernel
        self.traces = self.mask @ squares - self.n_train * (self.means * self.means).sum(dim=1)

    def rows(self, rows, out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of Z (a slice or indices), into ``out`` where they are computed."""
        if self.offset is None:
            return self.Z[rows]
        return torch.sub(self.Z[rows], self.offset, out=out)

    def _pass(self, shape, product, uncentred: bool = False) -> torch.Tensor:
        """Σ over blocks of Z's rows of what ``product(rows, block, total)`` adds to ``total`` (zeros of
        ``shape``); ``uncentred``: blocks of X, without subtracting ``offset``. On the CPU the blocks are
        small enough to stay in cache while ``product`` uses them, and each thread sums a share of them;
        a Z that fits in the last-level cache (and needs no centring), or one on another device, is one
        block of all rows, multiplied with all threads."""
        n, d = self.Z.shape
        if self.Z.device.type != "cpu" or (uncentred or self.offset is None) and self.Z.nbytes <= CACHE_BYTES:
            total = torch.zeros(shape, dtype=self.Z.dtype, device=self.Z.device)
            with _threads(self.threads if n * d * total.shape[0] > PARALLEL_FLOPS else 1, self.Z.device):
                product(slice(0, n), self.Z if uncentred else self.rows(slice(0, n)), total)
            return total
        step = max(1, BLOCK_BYTES // (d * self.Z.element_size()))
        if self.offset is not None and not hasattr(self, "_blocks"):  # reused: allocating costs more
            self._blocks = torch.empty(self.threads, min(step, n), d, dtype=self.Z.dtype)

        def share(thread: int, start: int, stop: int) -> torch.Tensor:
            total = torch.zeros(shape, dtype=self.Z.dtype)
            for first in range(start, stop, step):
                rows = slice(first, min(first + step, stop))
                if uncentred or self.offset is None:
                    product(rows, self.Z[rows], total)
                else:
                    product(rows, self.rows(rows, self._blocks[thread, : rows.stop - first]), total)
            return total

        bounds = [n * i // self.threads for i in range(self.threads + 1)]
        with _threads(1, self.Z.device):
            shares = [_pool(self.threads).submit(share, thread, bounds[thread], bounds[thread + 1])
                      for thread in range(self.threads) if bounds[thread] < bounds[thread + 1]]
            total = shares[0].result()
            for share in shares[1:]:
                total += share.result()
            return total

    def _fused(self) -> bool:
        """Whether passes over Z go through ``pls_kernels``'s compiled loops: a Z in the CPU's memory."""
        return self.Z.device.type == "cpu" and self.Z.dtype in (torch.float32, torch.float64) and (
            self.Z.nbytes > CACHE_BYTES)

    def centre(self, V: torch.Tensor) -> torch.Tensor:
        """Centre F × n × m over each fold's training rows and zero the other rows."""
        mask = self.mask.unsqueeze(-1)
        mean = (V * mask).sum(dim=1, keepdim=True) / self.n_train.view(-1, 1, 1)
        return (V - mean) * mask

    def cross(self, V: torch.Tensor) -> torch.Tensor:
        """Z_fᵀV_f for F × n × m V centred on each fold, as F × m × d (= ZᵀV_f: V_f sums to 0)."""
        F, n, m = V.shape
        flat = V.permute(1, 0, 2).reshape(n, F * m)
        if self._fused() and F * m <= FUSED_COLUMNS:
            offset = torch.zeros_like(self.Z[0]) if self.offset is None else self.offset
            total = torch.from_numpy(pls_kernels.cross(self.Z.detach().numpy(), offset.numpy(), flat.numpy(),
                                                      _pool(self.threads), self.threads))
        else:
            total = self._pass((F * m, self.Z.shape[1]),
                               lambda rows, block, out: out.addmm_(flat[rows].T, block))
        return total.reshape(F, m, -1)

    def targets_cross(self) -> torch.Tensor:
        """``cross`` of the targets centred on each fold: F × q × d.

        Fold f's Σ_train (y_i − ȳ_f) z_iᵀ is Σ_all y_i z_iᵀ less its left-out rows' sum, less n_f ȳ_f m_fᵀ:
        the first pass's product and F products with a tenth of the rows, instead of F with all of them
        (cross-validation holds out few rows). Y is centred, so that last term is small (no digits lost
        to it). Called once: the result is built in the first pass's product."""
        F, n = self.mask.shape
        Y, targets_sum, self._targets_sum = self.Y, self._targets_sum, None
        left_out = [torch.nonzero(row == 0).flatten() for row in self.mask]
        if max(len(rows) for rows in left_out) > n // 2:
            return self.cross(self.centre(Y.unsqueeze(0).expand(F, n, Y.shape[1])))
        if F == 1 and not len(left_out[0]):
            S = targets_sum.unsqueeze(0)  # (no copy: fresh allocations cost page faults)
        else:
            S = torch.empty(F, *targets_sum.shape, dtype=Y.dtype, device=Y.device)
            with _threads(self.threads, Y.device):
                for f, rows in enumerate(left_out):
                    torch.sub(targets_sum, Y[rows].T @ self.rows(rows), out=S[f])
        _subtract_outer(S, self.mask @ Y, self.means)  # Σ_train (y_i − ȳ_f) = 0: less n_f ȳ_f m_fᵀ
        return S

    def scores(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u_f = Z_f w_f and Zᵀu_f (= Z_fᵀu_f) for F × d W: F × n and F × d, in one pass over Z: a Z in memory
        through the compiled loop of ``pls_kernels``, else as products of blocks of Z whose second product
        reads the block from cache.

        This pass, run once per component, reads X uncentred: Z w = X w − offsetᵀw, and Zᵀu = Xᵀu as u sums
        to zero. Subtracting the offset block by block costs a fifth of the pass, and the products with
        X lose no more than a few bits to it for activations whose mean is of the size of their spread.
        """
        means = self.means if self.offset is None else self.means + self.offset
        shift = (means * W).sum(dim=1, keepdim=True)  # centres u_f
        if self._fused() and len(W) <= FUSED_COLUMNS:
            u, total = pls_kernels.scores(self.Z.detach().numpy(), W.numpy(), shift.flatten().numpy(),
                                         self.mask.numpy(), _pool(self.threads), self.threads)
            return torch.from_numpy(u), torch.from_numpy(total)
        u = torch.empty_like(self.mask)

        def product(rows, block, total):
            u[:, rows] = part = (W @ block.T - shift) * self.mask[:, rows]
            total.addmm_(part, block)

        return u, self._pass(W.shape, product, uncentred=True)


def _nipals(solver: _FoldSolver, Y: torch.Tensor, S: torch.Tensor, n_components: int,
            fold_names: Sequence[str], dual_weights: bool = False):
    """Run scikit-learn's NIPALS on every fold; Y is F × n × q, centred (and scaled) per fold, and S its
    ``cross`` (F × q × d, the transpose of X_kᵀY_k per fold); both are overwritten.

    Returns the x-weights and x-loadings as rows (F × A × d, in the coordinates of the solver's Z),
    dual x-weights R (w_k = X₀ᵀr_k; only with ``dual_weights``, else None), x-scores T, y-loadings C,
    tᵀt, and the number of NIPALS iterations (F × A), with zeros for components a fold could not fit.
    """
    F, n, q = Y.shape
    dtype, device = Y.dtype, Y.device
    eps = torch.finfo(dtype).eps
    M = _outer(S, solver.threads)  # S_kᵀS_k, q × q per fold, then updated with S
    m_norm_fresh = torch.linalg.vector_norm(M, dim=(1, 2))
    s_norm_fresh = _frobenius(M)  # ‖S‖ when last computed afresh
    d = S.shape[2]
    W = torch.zeros(F, n_components, d, dtype=dtype, device=device)
    P = torch.zeros_like(W)
    R = torch.zeros(F, n, n_components, dtype=dtype, device=device) if dual_weights else None
    T = torch.zeros(F, n, n_components, dtype=dtype, device=device)
    # S_k = S − Σ_j updates_j p_jᵀ over the components j since S was last computed (a product with a few
    # rows of P instead of a pass that rewrites S)
    updates = torch.zeros(F, q, n_components, dtype=dtype, device=device)
    C = torch.zeros(F, q, n_components, dtype=dtype, device=device)
    tts = torch.zeros(F, n_components, dtype=dtype, device=device)
    n_iter = torch.zeros(F, n_components, dtype=torch.long, device=device)
    active = torch.ones(F, dtype=torch.bool, device=device)
    variance_total = solver.traces
    variance_left = variance_total.clone()
    # scikit-learn zeroes the columns of Y_k whose every |y| < 10 eps. ‖y_j‖², tracked through the deflation
    # (‖y − t c_j‖² = ‖y‖² − tᵀt c_j²), shows without a pass over Y that no column is near that: a column
    # with ‖y_j‖² > n (10 eps)² has a larger entry (the margin covers the rounding of the tracked value).
    squares, floor = _column_squares(Y)
    for k in range(n_components):
        if bool((squares > floor).all()):
            near_zero = torch.zeros(F, 1, q, dtype=torch.bool, device=device)
            nonconstant = torch.ones(F, q, dtype=torch.bool, device=device)
        else:
            largest = torch.maximum(Y.amax(dim=1, keepdim=True), -Y.amin(dim=1, keepdim=True))  # F × 1 × q
            near_zero = largest < 10 * eps  # columns scikit-learn sets to zero
            if bool(near_zero.any()):
                Y, S = Y.masked_fill(near_zero, 0.0), S.masked_fill(near_zero.transpose(1, 2), 0.0)
                updates = updates.masked_fill(near_zero.transpose(1, 2), 0.0)
                M = M.masked_fill(near_zero, 0.0).masked_fill(near_zero.transpose(1, 2), 0.0)
            nonconstant = (largest > eps).squeeze(1) & ~near_zero.squeeze(1)  # F × q
            squares, floor = _column_squares(Y)
        # The updates of S and M below carry rounding errors of size eps‖S_r‖ (eps‖M_r‖) from their last
        # fresh value (step r); relative to a shrinking S (M) they grow, so once one has lost a quarter
        # of its digits (norm < eps^¼ of the fresh norm) it is recomputed: S = X₀ᵀΠY_k, M = SᵀS. With
        # few targets a fresh S costs about one more pass: always recompute (a nearly explained y, as
        # with near-duplicate features, is where the update loses digits).
        s_norm = _frobenius(M)
        stale_s = active & ((s_norm < eps**0.25 * s_norm_fresh) | (q <= FRESH_S_TARGETS))
        stale = torch.nonzero(stale_s).flatten()
        if len(stale):
            S[stale] = solver.cross(_project_out(Y[stale], T[stale], tts[stale], k)).masked_fill(
                near_zero[stale].transpose(1, 2), 0.0)
            updates[stale] = 0.0
        m_norm = torch.linalg.vector_norm(M, dim=(1, 2))
        stale_m = torch.nonzero(stale_s | (active & (m_norm < eps**0.25 * m_norm_fresh))).flatten()
        if len(stale_m):
            if k:  # S_k itself, from S and its updates (none left where S was just recomputed)
                S[stale_m] -= updates[stale_m, :, :k] @ P[stale_m, :k]
                updates[stale_m] = 0.0
            M[stale_m] = _outer(S[stale_m], solver.threads)
            m_norm_fresh[stale_m] = torch.linalg.vector_norm(M[stale_m], dim=(1, 2))
            s_norm_fresh[stale] = _frobenius(M[stale])
        has_signal = nonconstant.any(dim=1)
        for f in torch.nonzero(active & ~has_signal).flatten().tolist():
            warnings.warn(f"PLS {fold_names[f]}: Y residual is constant after {k} components; "
                          f"using {k}", PLSWarning, stacklevel=3)
        active = active & has_signal
        if not bool(active.any()):
            break
        fit = torch.nonzero(active).flatten()
        first = torch.argmax(nonconstant[fit].to(torch.int8), dim=1)
        gamma = torch.nn.functional.one_hot(first, q).to(dtype)  # u = Y[:, first], for the folds in fit
        M_fit = M if len(fit) == F else M[fit]  # (no copy where every fold goes on)
        beta_fit, iters_fit = _power_iteration(gamma.cpu().numpy(), M_fit.cpu().numpy(), q == 1)
        beta = torch.zeros(F, q, dtype=dtype, device=device)
        beta[fit] = torch.as_tensor(beta_fit, device=device)
        iters = torch.zeros(F, dtype=torch.long, device=device)
        iters[fit] = torch.as_tensor(iters_fit, device=device)
        for f in torch.nonzero(iters >= MAX_ITER).flatten().tolist():
            warnings.warn(f"PLS {fold_names[f]}: NIPALS reached max_iter={MAX_ITER} at component {k + 1}",
                          PLSWarning, stacklevel=3)
        w = _vbm(beta, S)  # S_kβ, unit length (zero for folds not fitting)
        if k:
            w -= _vbm(_vbm(beta, updates[:, :, :k]), P[:, :k])
        u, Zt_u = solver.scores(w)  # u = X₀w, Zᵀu = X₀ᵀX₀w
        t, Xt_t = u, Zt_u
        if k:  # deflation: t = X_k w = X₀w − T Pᵀw;  X_kᵀt = X₀ᵀt − P Tᵀt with X₀ᵀT = P diag(tᵀt)
            a = _bmv(P[:, :k], w)
            t = u - _bmv(T[:, :, :k], a)
            Xt_t = Zt_u - _vbm(tts[:, :k] * a + _vbm(t, T[:, :, :k]), P[:, :k])
        tt = (t * t).sum(dim=1)
        safe_tt = torch.where(active, tt, torch.ones_like(tt)).unsqueeze(1)
        p = Xt_t / safe_tt  # x-loadings
        c = _vbm(t, Y) / safe_tt  # y-loadings
        if dual_weights:
            R[:, :, k] = _project_out(_bmv(Y, beta).unsqueeze(-1), T, tts, k).squeeze(-1)  # w = X₀ᵀΠY_kβ
        keep = active.to(dtype)
        W[:, k], P[:, k], T[:, :, k], C[:, :, k] = w, p, t, c
        tts[:, k] = tt * keep
        n_iter[:, k] = iters * active
        # Deflation: Y ← Y − t cᵀ, S ← S − tᵀt c pᵀ (S as rows; recorded in ``updates``), and M = SSᵀ
        h = _bmv(S, p)  # S_k p
        if k:
            h -= _bmv(updates[:, :, :k], _bmv(P[:, :k], p))
        pp = (p * p).sum(dim=1)
        squares = squares - tt.unsqueeze(1) * c * c
        _subtract_outer(Y, t, c)
        updates[:, :, k] = tt.unsqueeze(1) * c
        _update_outer(M, h, c, tt, pp)
        # Variance of X left after deflation: trace(X_{k+1}ᵀX_{k+1}) = trace(X_kᵀX_k) − tᵀt ‖p‖².
        variance_left = variance_left - tt * pp * keep
        exhausted = active & (variance_left <= 1000 * eps * variance_total)
        if k + 1 < n_components:
            for f in torch.nonzero(exhausted).flatten().tolist():
                warnings.warn(f"PLS {fold_names[f]}: X has rank {k + 1} (no variance left); using "
                              f"{k + 1} of {n_components} components", PLSWarning, stacklevel=3)
        active = active & ~exhausted
    return W, P, R, T, C, tts, n_iter


def _column_squares(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """‖y_j‖² of each fold's target columns (F × q), and the value above which the tracked ‖y_j‖² proves a
    column has an entry over 10 eps (twice n (10 eps)², or of √eps ‖y_j‖² for the tracking's rounding)."""
    eps, n = torch.finfo(Y.dtype).eps, Y.shape[1]
    squares = torch.linalg.vector_norm(Y, dim=1).square()
    return squares, 2 * torch.maximum(n * (10 * eps) ** 2 * torch.ones_like(squares), eps**0.5 * squares)


def _project_out(V: torch.Tensor, T: torch.Tensor, tts: torch.Tensor, k: int) -> torch.Tensor:
    """Π V: remove the first k x-scores from F × n × m V.

    Block Gram-Schmidt applied twice: the scores are orthogonal only up to rounding, and a single
    pass leaves enough of them in V to spoil late components ("twice is enough", Giraud et al. 2005).
    """
    if k == 0:
        return V
    scores = T[:, :, :k]
    safe = torch.where(tts[:, :k] > 0, tts[:, :k], torch.ones_like(tts[:, :k])).unsqueeze(-1)
    for _ in range(2):
        coefficients = torch.bmm(V.transpose(1, 2), scores).transpose(1, 2) / safe  # (Vᵀ T)ᵀ: see _vbm
        if V.shape[2] == 1:  # one column: see _bmv
            V = V - _bmv(scores, coefficients.squeeze(2)).unsqueeze(2)
        else:
            V = torch.baddbmm(V, scores, coefficients, alpha=-1)
    return V


@contextmanager
def _threads(count: int | None, device: torch.device):
    """Run CPU work with ``count`` intra-op threads (None: unchanged), then restore the setting.

    NIPALS does hundreds of small tensor operations per fit; on the CPU, waking the intra-op thread
    pool for each costs more than the work (ms each on a busy machine), so only the large products
    with X or the Gram matrix run multi-threaded.
    """
    if count is None or device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _bmv(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Batched matrix-vector product: F × a × b times F × b → F × a, as (vᵀAᵀ)ᵀ: on the CPU, bmm with a
    one-column right operand runs several times slower than with a one-row left operand."""
    return torch.bmm(v.unsqueeze(1), A.transpose(1, 2)).squeeze(1)


def _vbm(v: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Batched Aᵀv as a row vector times A (F × a, F × a × b → F × b): many times faster than bmm with Aᵀ."""
    return torch.bmm(v.unsqueeze(1), A).squeeze(1)


def _frobenius(M: torch.Tensor) -> torch.Tensor:
    """‖S‖ for M = SSᵀ (F × q × q): √trace(M), without a pass over S."""
    return torch.diagonal(M, dim1=1, dim2=2).sum(dim=1).clamp(min=0).sqrt()


def _outer(S: torch.Tensor, threads: int) -> torch.Tensor:
    """S Sᵀ for every fold (F × q × d → F × q × q), in float64 (the power iteration's precision)."""
    F, q, d = S.shape
    with _threads(threads if F * q * q * d > PARALLEL_FLOPS else 1, S.device):
        return (S @ S.transpose(1, 2)).double()


def _update_outer(M, h, c, tt, pp) -> None:
    """M = SSᵀ after S ← S − tᵀt c pᵀ, in place: M − tᵀt (h cᵀ + c hᵀ) + (tᵀt)²‖p‖² c cᵀ with h = Sp (the
    old S), as one rank-2 update."""
    h, c, tt, pp = h.double(), c.double(), tt.double().unsqueeze(1), pp.double().unsqueeze(1)
    M.baddbmm_(torch.stack([h, c], dim=2), torch.stack([tt * c, tt * h - tt * tt * pp * c], dim=1), alpha=-1)


def _subtract_outer(A: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
    """A_f ← A_f − u_f v_fᵀ for every fold, in place (on the CPU, baddbmm_ goes through a copy of A)."""
    if A.device.type != "cpu":
        A.baddbmm_(u.unsqueeze(2), v.unsqueeze(1), alpha=-1)
        return
    for f in range(len(A)):
        A[f].addr_(u[f], v[f], alpha=-1)


def _power_iteration(gamma: np.ndarray, M: np.ndarray, single_target: bool):
    """scikit-learn's ``_get_first_singular_vectors_power_method`` (mode A) in the q-space of u = Y_kγ.

    scikit-learn's iterates are w_t ∝ X_kᵀY_kγ_{t-1} with γ_t ∝ Mβ_t (its divisions by uᵀu, tᵀt and
    cᵀc only scale them), so w_t ∝ X_kᵀY_k β_t with β_t ∝ M^(t-1)γ₀, normalised to ‖w_t‖² = β_tᵀMβ_t = 1;
    it stops at the first t ≥ 2 with ‖w_t − w_(t-1)‖² < tol, at once for a single target, or at max_iter.
    With V_j = M̂ʲγ₀ (M̂ = M/‖M‖, whose powers cannot overflow), a_j = V_j·V_j and b_j = V_j·V_(j+1):

        ‖w_t − w_(t-1)‖² = 2 − 2 a_j / √(b_j b_(j-1)),  β_t = V_j / √(‖M‖ b_j)   for t = j + 1

    ``pls_kernels.power_iteration`` runs these steps, in the ratios of unit vectors (the powers shrink).
    Runs in float64 on the CPU (as scikit-learn does), whatever the fit's dtype.
    Returns β (w = X_kᵀY_kβ) and the iteration count of each fold.
    """
    dtype = gamma.dtype
    gamma, M = gamma.astype(np.float64), M.astype(np.float64, copy=False)
    if single_target:
        square = np.einsum("fi,fij,fj->f", gamma, M, gamma)
        return (gamma * _unit_scale(square)[:, None]).astype(dtype), np.ones(len(gamma), dtype=np.int64)
    beta, iters = pls_kernels.power_iteration(gamma, M, TOL, MAX_ITER)
    return beta.astype(dtype), iters


def _unit_scale(square: np.ndarray) -> np.ndarray:
    """scikit-learn's w /= ‖w‖ + eps for ‖w‖² = ``square``: bounded where w has (nearly) vanished."""
    return 1 / (np.sqrt(np.maximum(square, 0)) + np.finfo(np.float64).eps)


def _coefficients(W, P, C, tts) -> torch.Tensor:
    """coef = W pinv(PᵀW) Cᵀ per fold (F × d × q) from the rows of W and P (F × A × d)."""
    PtW = P @ W.transpose(1, 2)
    PtW = PtW * (tts > 0).to(PtW.dtype).unsqueeze(2)
    return W.transpose(1, 2) @ torch.linalg.pinv(PtW) @ C.transpose(1, 2)


def _check_variance(solver: _FoldSolver, x_mean: torch.Tensor, names: Sequence[str]) -> None:
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
    (``_use_kernel``); True or False forces one.
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
        """The cheaper form in multiply-add equivalents. Either form makes one pass per component over
        its factor (n × p features, or n × n) with two products of ``folds`` columns, and one more with
        q columns per fold where S is recomputed every time (``FRESH_S_TARGETS``), after a first product
        with q columns; the kernel form first pays for the Gram matrix (n²p/2) and its factor (n³/3).
        A product with few columns streams its matrix from memory instead of computing: ``STREAM_COST``."""
        if self.kernel is not None:
            return self.kernel

        def nipals(d: int) -> float:
            passes = max(2 * n * d * folds, STREAM_COST * n * d)
            if q <= FRESH_S_TARGETS:
                passes += max(n * d * folds * q, STREAM_COST * n * d)
            return n * d * q + n_components * passes

        return n * n * p / 2 + n**3 / 3 + nipals(n) < nipals(p)

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
        solver = _FoldSolver(Xc, offset, everything, kernel, Yc)
        _check_variance(solver, self.x_mean_ / self.x_std_, ["fit"])
        with _threads(1, X.device):
            W, P, R, T, C, tts, n_iter = _nipals(solver, Yc.unsqueeze(0), solver.targets_cross(), A, ["fit"],
                                                 dual_weights=kernel)
        if kernel:  # W and P are in the factor's coordinates: W = X₀ᵀR, P = X₀ᵀT / tᵀt
            safe = torch.where(tts[0] > 0, tts[0], torch.ones_like(tts[0]))
            W, P = (torch.cat([R[0], T[0]], dim=1).T @ solver.X).split(A)  # (Vᵀ A)ᵀ: see _vbm
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
        solver = _FoldSolver(X, x_mean, masks, self._use_kernel(n, p, Y.shape[1], A, F), Y - Y.mean(dim=0))
        _check_variance(solver, x_mean, names)
        Yf = solver.centre(Y.unsqueeze(0).expand(F, n, Y.shape[1]))
        y_means = (Y.unsqueeze(0) * solver.mask.unsqueeze(-1)).sum(dim=1) / solver.n_train.unsqueeze(1)
        with _threads(1, X.device):
            W, P, _, _, C, tts, _ = _nipals(solver, Yf, solver.targets_cross(), A, names)
        coef = _coefficients(W, P, C, tts)
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
