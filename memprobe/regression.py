"""PLS regression in torch that reproduces scikit-learn's ``PLSRegression`` (NIPALS, mode A).

Same algorithm, same numbers: scikit-learn's power iteration (start from the first non-constant
column of Y, ``max_iter=500``, ``tol=1e-06`` on the squared change of the x-weights, no iteration
when Y has one column), the same deflation of X and Y, the same sign convention (the largest
|x-weight| of each component is positive) and ``coef = W pinv(PᵀW) Qᵀ``.

Why it is fast. Every NIPALS quantity is a product with X, and with ``scale=False`` they can all be
written with the n × n Gram matrix K = X Xᵀ of the centred training images (kernel PLS, Lindgren &
Rännar): the deflated X_k = Π X (Π projects out the earlier x-scores), so K_k = Π K Π and the
y-scores always lie in span(Y_k). With B = K_k Y_k the whole power iteration runs on the q × q
matrix M = Y_kᵀB: for u = Y_k γ,

    w ∝ X_kᵀ u = X_kᵀ Y_k β,  ‖w‖² = βᵀMβ,  t = X_k w = Bβ,  Y_kᵀt = Mβ,
    ‖w − w_old‖² = (β − β_old)ᵀ M (β − β_old),

so the iterates are scikit-learn's (up to rounding) at O(q²) per iteration. Each component then
needs one product K t (for the deflation of B, which is recomputed as Π K Π Y_k whenever its cheap
update would lose digits); X itself is touched only to form K, or, where K costs more multiply-adds
than it saves (many targets, or few features), through X (Xᵀ v) instead. Cross-validation folds
share one Gram matrix of all images: a fold's centred kernel is H K[train, train] H, and all folds run
their iterations batched.

Small samples. A centred training set of n images has rank ≤ n − 1, and scikit-learn would go on
fitting numerical noise past the rank. Here the number of components is cut to
``min(n_components, n_train − 1, p)`` with a warning naming the fold and sizes, and a fold stops
early (with a warning) when the deflated X has no variance left (remaining Σ‖x‖² below
1000 · machine-epsilon of the total), or when Y has nothing left to explain (as scikit-learn does).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from functools import cached_property

import numpy as np
import torch
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

from memprobe.errors import BenchmarkError, UnscorableFeatures

MAX_ITER = 500
TOL = 1e-06
FRESH_B_TARGETS = 8
CHUNK = 16  # power-iteration steps per batch of matrix-vector products (_power_iteration)
# Reading one matrix element from memory costs about as much as this many multiply-adds in a large
# matrix product (2 cores, float64: products with a few columns are bound by memory bandwidth).
STREAM_COST = 12
# Below this many multiply-adds a CPU product runs on one thread: waking the pool costs more (and on a
# busy machine a whole scheduler time slice).
PARALLEL_FLOPS = 1e7


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


def _gram(X: torch.Tensor) -> torch.Tensor:
    """X Xᵀ. On the CPU BLAS syrk computes one triangle only: half the multiply-adds of X @ X.T."""
    if X.device.type != "cpu" or X.dtype not in (torch.float32, torch.float64):
        return X @ X.T
    x = X.contiguous().numpy()
    syrk = blas.dsyrk if X.dtype == torch.float64 else blas.ssyrk
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        upper = syrk(1.0, x.T, trans=1)  # x.T is a column-major view of x: no copy; the rest stays 0
    full = upper + upper.T
    np.fill_diagonal(full, np.diagonal(upper))
    return torch.from_numpy(full)


class _FoldSolver:
    """Batched NIPALS over F folds that share one set of images.

    Vectors live in the space of all n images: a fold's vectors are centred over its training
    rows and zero elsewhere (``mask``), so products with the shared operator give each fold's
    centred kernel products directly.
    """

    def __init__(self, X: torch.Tensor, train_masks: torch.Tensor, use_kernel: bool, centred: bool = False):
        # global centring only improves precision; each fold re-centres on its own training rows
        self.X = X if centred else X - X.mean(dim=0)
        self.mask = train_masks.to(X.dtype)  # F × n
        self.n_train = self.mask.sum(dim=1)  # F
        self.threads = torch.get_num_threads()  # for the large products; the rest runs on one thread
        self.gram = _gram(self.X) if use_kernel else None

    @cached_property
    def traces(self) -> torch.Tensor:
        """Σ‖x_i − m_f‖² over each fold's training rows: the trace of its centred kernel."""
        mask, n_train = self.mask, self.n_train
        if self.gram is not None:
            return mask @ torch.diagonal(self.gram) - ((mask @ self.gram) * mask).sum(dim=1) / n_train
        mean = (mask @ self.X) / n_train.unsqueeze(1)  # F × p
        return mask @ torch.linalg.vector_norm(self.X, dim=1).square() - n_train * (mean * mean).sum(dim=1)

    def centre(self, V: torch.Tensor, folds: torch.Tensor | None = None) -> torch.Tensor:
        """Centre F × n × m over each fold's training rows and zero the other rows (``folds``: a subset)."""
        mask = self.mask if folds is None else self.mask[folds]
        n_train = self.n_train if folds is None else self.n_train[folds]
        mean = (V * mask.unsqueeze(-1)).sum(dim=1, keepdim=True) / n_train.view(-1, 1, 1)
        return (V - mean) * mask.unsqueeze(-1)

    def raw_product(self, V: torch.Tensor) -> torch.Tensor:
        """X̃ X̃ᵀ V for every fold at once (F × n × m → F × n × m), X̃ globally centred."""
        F, n, m = V.shape
        flat = V.permute(1, 0, 2).reshape(n, F * m)
        flops = n * F * m * (n if self.gram is not None else 2 * self.X.shape[1])
        with _threads(self.threads if flops > PARALLEL_FLOPS else 1, flat.device):
            out = self._columns_product(flat, None)
        return out.reshape(n, F, m).permute(1, 0, 2)

    def rows_product(self, V: torch.Tensor, rows: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(X̃ X̃ᵀ V_f)[rows_f] for each fold f: the product for a few rows costs a fraction of all n."""
        with _threads(self.threads, V.device):
            if self.gram is not None:
                return [self.gram[r] @ V[f] for f, r in enumerate(rows)]
            return [((V[f].T @ self.X) @ self.X[r].T).T for f, r in enumerate(rows)]

    def kernel_product(self, V: torch.Tensor, folds: torch.Tensor | None = None) -> torch.Tensor:
        """Each fold's centred training kernel times V (V already centred on its fold)."""
        return self.centre(self.raw_product(V), folds)

    def targets_product(self, Y: torch.Tensor) -> torch.Tensor:
        """``kernel_product`` of n × q Y centred on each fold: F × n × q.

        A fold's Y_f = (Y − 1mᵀ) ⊙ train is Y less its left-out rows, so X̃X̃ᵀ[Y 1] is computed once and
        each fold subtracts the product of its left-out rows: F + 1 products with a tenth of the rows
        instead of F with all of them (cross-validation holds out few rows)."""
        F, n = self.mask.shape
        left_out = [torch.nonzero(row == 0).flatten() for row in self.mask]
        if max(len(rows) for rows in left_out) > n // 2:
            return self.kernel_product(self.centre(Y.unsqueeze(0).expand(F, n, Y.shape[1])))
        Z = torch.cat([Y, torch.ones_like(Y[:, :1])], dim=1)  # the last column gives X̃X̃ᵀ1
        means = (self.mask @ Y) / self.n_train.unsqueeze(1)
        with _threads(self.threads, Y.device):
            whole = self._columns_product(Z, None)
            parts = [whole - self._columns_product(Z[rows], rows) for rows in left_out]
        raw = [part[:, :-1] - part[:, -1:] * mean for part, mean in zip(parts, means, strict=True)]
        return self.centre(torch.stack(raw))

    def _columns_product(self, Z: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """X̃X̃ᵀ[:, rows] Z (all rows for None), computed as (Zᵀ A)ᵀ rather than Aᵀ Z (or K Z, K symmetric):
        CPU BLAS is several times slower on a transposed operand with few columns."""
        if self.gram is not None:
            return (Z.T @ (self.gram if rows is None else self.gram[rows])).T
        return ((Z.T @ (self.X if rows is None else self.X[rows])) @ self.X.T).T


def _nipals(solver: _FoldSolver, Y: torch.Tensor, n_components: int, fold_names: Sequence[str],
            B: torch.Tensor | None = None):
    """Run scikit-learn's NIPALS on every fold; Y is F × n × q, centred (and scaled) per fold, and B its
    ``kernel_product`` if already known.

    Returns dual x-weights R (w_k = X₀ᵀ r_k), x-scores T, K₀T, y-loadings C, tᵀt, and the
    number of NIPALS iterations (F × A), with zeros for components a fold could not fit.
    """
    F, n, q = Y.shape
    dtype, device = Y.dtype, Y.device
    eps = torch.finfo(dtype).eps
    Y = Y.clone()
    B = solver.kernel_product(Y) if B is None else B
    b_norm_fresh = torch.linalg.vector_norm(B, dim=(1, 2))  # ‖B‖ when last computed afresh
    M = _cross(Y, B, solver.threads)  # Y_kᵀ B_k, q × q per fold, then updated with B
    m_norm_fresh = torch.linalg.vector_norm(M, dim=(1, 2))
    R = torch.zeros(F, n, n_components, dtype=dtype, device=device)
    T = torch.zeros_like(R)
    KT = torch.zeros_like(R)
    C = torch.zeros(F, q, n_components, dtype=dtype, device=device)
    tts = torch.zeros(F, n_components, dtype=dtype, device=device)
    n_iter = torch.zeros(F, n_components, dtype=torch.long, device=device)
    active = torch.ones(F, dtype=torch.bool, device=device)
    variance_total = solver.traces
    variance_left = variance_total.clone()
    for k in range(n_components):
        largest = Y.abs().amax(dim=1, keepdim=True)  # F × 1 × q
        near_zero = largest < 10 * eps  # columns scikit-learn sets to zero
        if bool(near_zero.any()):
            Y, B = Y.masked_fill(near_zero, 0.0), B.masked_fill(near_zero, 0.0)
            M = M.masked_fill(near_zero, 0.0).masked_fill(near_zero.transpose(1, 2), 0.0)
        nonconstant = (largest > eps).squeeze(1) & ~near_zero.squeeze(1)  # F × q
        # The updates of B and M below carry rounding errors of size eps‖B_r‖ (eps‖M_r‖) from their last
        # fresh value (step r); relative to a shrinking B (M) they grow, so once one has lost a quarter
        # of its digits (norm < eps^¼ of the fresh norm) it is recomputed: B = ΠK₀ΠY_k, M = Y_kᵀB. With
        # few targets a fresh B costs no more than a few matrix-vector products: always recompute
        # (a nearly explained y, as with near-duplicate features, is where the update loses digits).
        b_norm = torch.linalg.vector_norm(B, dim=(1, 2))
        stale_b = active & ((b_norm < eps**0.25 * b_norm_fresh) | (q <= FRESH_B_TARGETS))
        stale = torch.nonzero(stale_b).flatten()
        if len(stale):
            Y_stale = _project_out(Y[stale], T[stale], tts[stale], k)
            fresh = _project_out(solver.kernel_product(Y_stale, stale), T[stale], tts[stale], k)
            B[stale] = fresh.masked_fill(near_zero[stale], 0.0)
            b_norm_fresh[stale] = torch.linalg.vector_norm(B[stale], dim=(1, 2))
        m_norm = torch.linalg.vector_norm(M, dim=(1, 2))
        stale_m = torch.nonzero(stale_b | (active & (m_norm < eps**0.25 * m_norm_fresh))).flatten()
        if len(stale_m):
            M[stale_m] = _cross(Y[stale_m], B[stale_m], solver.threads)
            m_norm_fresh[stale_m] = torch.linalg.vector_norm(M[stale_m], dim=(1, 2))
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
        beta_fit, iters_fit = _power_iteration(gamma.cpu().numpy(), M[fit].cpu().numpy(), q == 1)
        beta = torch.zeros(F, q, dtype=dtype, device=device)
        beta[fit] = torch.as_tensor(beta_fit, device=device)
        iters = torch.zeros(F, dtype=torch.long, device=device)
        iters[fit] = torch.as_tensor(iters_fit, device=device)
        for f in torch.nonzero(iters >= MAX_ITER).flatten().tolist():
            warnings.warn(f"PLS {fold_names[f]}: NIPALS reached max_iter={MAX_ITER} at component {k + 1}",
                          PLSWarning, stacklevel=3)
        keep = active.to(dtype).unsqueeze(1)
        t = _bmv(B, beta)
        tt = (t * t).sum(dim=1)
        safe_tt = torch.where(active, tt, torch.ones_like(tt))
        c = _vbm(t, Y) / safe_tt.unsqueeze(1)  # y-loadings
        kt_raw = solver.kernel_product(t.unsqueeze(-1)).squeeze(-1)  # K₀ t
        kt = _project_out(kt_raw.unsqueeze(-1), T, tts, k).squeeze(-1)  # K_k t = Π K₀ t (t ⟂ earlier scores)
        R[:, :, k] = _project_out(_bmv(Y, beta).unsqueeze(-1), T, tts, k).squeeze(-1)  # w = X₀ᵀΠY_kβ
        T[:, :, k] = t
        KT[:, :, k] = kt_raw
        C[:, :, k] = c
        tts[:, k] = tt * keep.squeeze(1)
        n_iter[:, k] = iters * active
        # Deflation: Y ← Y − t cᵀ;  B ← Π_t K_k Π_t Y = B − kt cᵀ − t eᵀ with e = (h − (tᵀkt) c) / tᵀt,
        # h = Bᵀt; then M = YᵀB ← M − h cᵀ − c hᵀ + (tᵀkt) c cᵀ (Yᵀkt = Bᵀt = h: K_k is symmetric)
        s = (t * kt).sum(dim=1)
        h = _vbm(t, B)
        e = (h - s.unsqueeze(1) * c) / safe_tt.unsqueeze(1)
        Y.baddbmm_(t.unsqueeze(2), c.unsqueeze(1), alpha=-1)
        B.baddbmm_(torch.stack([kt, t], dim=2), torch.stack([c, e], dim=1), alpha=-1)
        hc = h.unsqueeze(2) * c.unsqueeze(1)
        M = M - hc - hc.transpose(1, 2) + s.view(-1, 1, 1) * c.unsqueeze(2) * c.unsqueeze(1)
        # Variance of X left after deflation: trace(K_{k+1}) = trace(K_k) − tᵀK_k t / tᵀt.
        variance_left = variance_left - torch.where(active, s / safe_tt, torch.zeros_like(s))
        exhausted = active & (variance_left <= 1000 * eps * variance_total)
        if k + 1 < n_components:
            for f in torch.nonzero(exhausted).flatten().tolist():
                warnings.warn(f"PLS {fold_names[f]}: X has rank {k + 1} (no variance left); using "
                              f"{k + 1} of {n_components} components", PLSWarning, stacklevel=3)
        active = active & ~exhausted
    return R, T, KT, C, tts, n_iter


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


def _cross(Y: torch.Tensor, B: torch.Tensor, threads: int) -> torch.Tensor:
    """YᵀB for every fold (F × n × q twice → F × q × q)."""
    F, n, q = Y.shape
    with _threads(threads if F * n * q * q > PARALLEL_FLOPS else 1, Y.device):
        return Y.transpose(1, 2) @ B


def _power_iteration(gamma: np.ndarray, M: np.ndarray, single_target: bool):
    """scikit-learn's ``_get_first_singular_vectors_power_method`` (mode A) in the q-space of u = Y_kγ.

    scikit-learn's iterates are w_t ∝ X_kᵀY_kγ_{t-1} with γ_t ∝ Mβ_t (its divisions by uᵀu, tᵀt and
    cᵀc only scale them), so w_t ∝ X_kᵀY_k β_t with β_t ∝ M^(t-1)γ₀, normalised to ‖w_t‖² = β_tᵀMβ_t = 1;
    it stops at the first t ≥ 2 with ‖w_t − w_(t-1)‖² < tol, at once for a single target, or at max_iter.
    With V_j = M̂ʲγ₀ (M̂ = M/‖M‖, whose powers cannot overflow), a_j = V_j·V_j and b_j = V_j·V_(j+1):

        ‖w_t − w_(t-1)‖² = 2 − 2 a_j / √(b_j b_(j-1)),  β_t = V_j / √(‖M‖ b_j)   for t = j + 1

    (the first chunk; later ones restart from the normalised last vector of the one before), so CHUNK
    steps cost CHUNK matrix-vector products and a few vectorised reductions, not a dozen numpy calls each.
    Runs in float64 on the CPU (as scikit-learn does), whatever the fit's dtype.
    Returns β (w = X_kᵀY_kβ) and the iteration count of each fold.
    """
    dtype = gamma.dtype
    gamma, M = gamma.astype(np.float64), M.astype(np.float64)
    F, q = gamma.shape
    if single_target:
        square = np.einsum("fi,fi->f", gamma, _matvec(M, gamma))
        return (gamma * _unit_scale(square)[:, None]).astype(dtype), np.ones(F, dtype=np.int64)
    scale = np.linalg.norm(M, axis=(1, 2))
    scale[scale == 0] = 1.0
    M = M / scale[:, None, None]
    final, iters = np.zeros_like(gamma), np.zeros(F, dtype=np.int64)
    pending = np.arange(F)  # folds still iterating
    first = 0  # V_0 of this chunk is (a multiple of) M̂^first γ₀
    V0 = gamma
    while len(pending):
        steps = min(CHUNK, MAX_ITER - 1 - first)
        V = np.empty((steps + 2, len(pending), q))
        V[0] = V0 / np.maximum(np.linalg.norm(V0, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        for j in range(steps + 1):
            V[j + 1] = _matvec(M, V[j])
        a = np.einsum("jfi,jfi->jf", V[: steps + 1], V[: steps + 1])  # a_j, j = 0 … steps
        b = np.einsum("jfi,jfi->jf", V[:-1], V[1:])  # b_j, j = 0 … steps
        with np.errstate(divide="ignore", invalid="ignore"):
            change = 2 - 2 * a[1:] / np.sqrt(b[1:] * b[:-1])  # ‖w_t − w_(t-1)‖², t = first + j + 1
        stop = ~(change >= TOL)  # NaN: Mγ = 0, u explains nothing more (w stays 0, as in scikit-learn)
        if first + steps + 1 == MAX_ITER:
            stop[-1] = True
        stopped = stop.any(axis=0)
        j = np.argmax(stop, axis=0)[stopped] + 1
        done = pending[stopped]
        rows = np.flatnonzero(stopped)
        # V_j shrinks along the chunk; scikit-learn's + eps (_unit_scale) must meet a unit vector
        length = np.maximum(np.sqrt(a[j, rows]), np.finfo(np.float64).tiny)
        chosen = V[j, rows] / length[:, None]
        final[done] = chosen * _unit_scale(scale[done] * b[j, rows] / length**2)[:, None]
        iters[done] = first + j + 1
        pending, V0, M = pending[~stopped], V[steps, ~stopped], M[~stopped]
        first += steps
    return final.astype(dtype), iters


def _unit_scale(square: np.ndarray) -> np.ndarray:
    """scikit-learn's w /= ‖w‖ + eps for ‖w‖² = ``square``: bounded where w has (nearly) vanished."""
    return 1 / (np.sqrt(np.maximum(square, 0)) + np.finfo(np.float64).eps)


def _matvec(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.matmul(A, v[:, :, None])[:, :, 0]


def _dual_coefficients(R, KT, C, tts) -> torch.Tensor:
    """V (F × n × q) with predictions (X* − m) X₀ᵀ V: coef = W pinv(PᵀW) Qᵀ, W = X₀ᵀR, P = X₀ᵀT/tᵀt."""
    safe = torch.where(tts > 0, tts, torch.ones_like(tts))
    PtW = (KT.transpose(1, 2) @ R) / safe.unsqueeze(2)
    PtW = PtW * (tts > 0).to(PtW.dtype).unsqueeze(2)
    return R @ torch.linalg.pinv(PtW) @ C.transpose(1, 2)


def _check_variance(solver: _FoldSolver, raw_squares: torch.Tensor, names: Sequence[str]) -> None:
    """Refuse folds whose training features are constant: PLS would fit nothing and predict the mean.

    ``raw_squares``: ‖x_i‖² of the uncentred images, the scale against which the centred variance is
    judged (a constant non-zero layer leaves only rounding after centring).
    """
    traces = solver.traces
    scale = solver.mask @ raw_squares
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
        """The cheaper form in multiply-add equivalents: the Gram matrix costs n²p/2 once, then each
        product is with n × n instead of twice with n × p. NIPALS multiplies q columns per fold for the
        first B, then one per component (q + 1 where B is recomputed every time, ``FRESH_B_TARGETS``).
        A product with few columns streams its matrix from memory instead of computing: ``STREAM_COST``."""
        if self.kernel is not None:
            return self.kernel
        per_component = q + 1 if q <= FRESH_B_TARGETS else 1

        def product(rows: int, cols: int, columns: int) -> float:
            return max(rows * cols * columns, STREAM_COST * rows * cols)

        each = folds * per_component
        kernel = n * n * p / 2 + product(n, n, folds * q) + n_components * product(n, n, each)
        features = 2 * product(n, p, folds * q) + n_components * 2 * product(n, p, each)
        return kernel < features

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
        Xc, Yc = X - self.x_mean_, Y - self.y_mean_
        self.x_std_ = _std(Xc) if self.scale else torch.ones_like(self.x_mean_)
        self.y_std_ = _std(Yc) if self.scale else torch.ones_like(self.y_mean_)
        if self.scale:
            Xc, Yc = Xc / self.x_std_, Yc / self.y_std_
        A = _component_limit(self.n_components, n, p, "fit")
        everything = torch.ones(1, n, dtype=torch.bool, device=X.device)
        solver = _FoldSolver(Xc, everything, self._use_kernel(n, p, Y.shape[1], A), centred=True)
        _check_variance(solver, torch.linalg.vector_norm(X, dim=1).square(), ["fit"])
        with _threads(1, X.device):
            R, T, _, C, tts, n_iter = _nipals(solver, Yc.unsqueeze(0), A, ["fit"])
        safe = torch.where(tts[0] > 0, tts[0], torch.ones_like(tts[0]))
        W, P = torch.split((torch.cat([R[0], T[0]], dim=1).T @ Xc).T, [A, A], dim=1)  # (Vᵀ A)ᵀ: see _vbm
        P = P / safe
        sign = torch.sign(W.gather(0, W.abs().argmax(dim=0, keepdim=True))).squeeze(0)
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        self.x_weights_, self.x_loadings_ = W * sign, P * sign
        self.y_weights_ = self.y_loadings_ = C[0] * sign
        self.x_scores_ = T[0] * sign
        self.x_rotations_ = self.x_weights_ @ torch.linalg.pinv(self.x_loadings_.T @ self.x_weights_)
        self.coef_ = ((self.x_rotations_ @ self.y_loadings_.T) * self.y_std_).T / self.x_std_
        self.intercept_ = self.y_mean_
        self.n_iter_ = n_iter[0][: int((tts[0] > 0).sum())].tolist()
        self.n_components_ = len(self.n_iter_)
        return self

    def predict(self, X):
        is_numpy = not isinstance(X, torch.Tensor)
        X = _as_tensor(X, self.device, self.dtype)
        pred = (X - self.x_mean_) @ self.coef_.T + self.intercept_
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
        solver = _FoldSolver(X - x_mean, masks, self._use_kernel(n, p, Y.shape[1], A, F), centred=True)
        _check_variance(solver, torch.linalg.vector_norm(X, dim=1).square(), names)
        Yf = solver.centre(Y.unsqueeze(0).expand(F, n, Y.shape[1]))
        y_means = (Y.unsqueeze(0) * solver.mask.unsqueeze(-1)).sum(dim=1) / solver.n_train.unsqueeze(1)
        with _threads(1, X.device):
            R, T, KT, C, tts, _ = _nipals(solver, Yf, A, names, solver.targets_product(Y))
        V = solver.centre(_dual_coefficients(R, KT, C, tts))
        tests = [torch.as_tensor(np.asarray(t), dtype=torch.long, device=X.device) for t in test_indices_list]
        fitted = solver.rows_product(V, tests)  # X̃[test] X̃_trainᵀ V: the test rows only
        # minus the training rows' mean of X̃ X̃_trainᵀ V (X is centred on them): (K̃ m)ᵀV / n_train
        kernel_means = solver.raw_product(solver.mask.unsqueeze(-1)).squeeze(-1)
        offsets = _vbm(kernel_means, V) / solver.n_train.unsqueeze(1)
        predictions = []
        for f in range(F):
            pred = fitted[f] - offsets[f] + y_means[f]
            pred = pred.squeeze(1) if one_d else pred
            predictions.append(pred.cpu().numpy() if is_numpy else pred)
        return predictions


def _std(centred: torch.Tensor) -> torch.Tensor:
    std = centred.std(dim=0, correction=1)
    return torch.where(std == 0, torch.ones_like(std), std)
