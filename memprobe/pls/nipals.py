"""scikit-learn's NIPALS (mode A) for every fold at once, through the products of a ``FoldSolver``.

Why it is fast. X is never deflated in memory. With S_k = X_kᵀY_k (features × targets) the power
iteration runs on the q × q matrix M = S_kᵀS_k: for u = Y_kγ,

    w ∝ X_kᵀu = S_kβ,  ‖w‖² = βᵀMβ,  ‖w − w_old‖² = (β − β_old)ᵀM(β − β_old),

so scikit-learn's iterates come out (up to rounding) at O(q²) per iteration. A component then needs
the x-scores t = X_k w = X₀w − T Pᵀw and the loadings X_kᵀt = X₀ᵀt − P Tᵀt: one pass over X₀ gives
both (on the CPU a compiled loop, ``kernels``, that multiplies a few rows by w and then by their
results while they are in cache), after which Y and M take low-rank updates, and S_{k+1} = S_k − tᵀt p cᵀ
is kept as the last computed S less these terms. S is recomputed as X₀ᵀΠY_k (Π projects out the
earlier x-scores) whenever its updates would lose digits.

A fold stops early (with a warning) when the deflated X has no variance left (remaining Σ‖x‖² below
1000 · machine-epsilon of the total), or when Y has nothing left to explain (as scikit-learn does).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from memprobe.pls import kernels
from memprobe.pls.fold_solver import FRESH_S_TARGETS, PARALLEL_FLOPS, FoldSolver, cpu_threads, subtract_outer

MAX_ITER = 500
TOL = 1e-06


# defined here, under the estimator that exports it, because the component loop raises most of them
class PLSWarning(UserWarning):
    """PLS could not use all requested components, or NIPALS did not converge."""


def nipals(solver: FoldSolver, Y: torch.Tensor, S: torch.Tensor, n_components: int,
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
        subtract_outer(Y, t, c)
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
    with cpu_threads(threads if F * q * q * d > PARALLEL_FLOPS else 1, S.device):
        return (S @ S.transpose(1, 2)).double()


def _update_outer(M, h, c, tt, pp) -> None:
    """M = SSᵀ after S ← S − tᵀt c pᵀ, in place: M − tᵀt (h cᵀ + c hᵀ) + (tᵀt)²‖p‖² c cᵀ with h = Sp (the
    old S), as one rank-2 update."""
    h, c, tt, pp = h.double(), c.double(), tt.double().unsqueeze(1), pp.double().unsqueeze(1)
    M.baddbmm_(torch.stack([h, c], dim=2), torch.stack([tt * c, tt * h - tt * tt * pp * c], dim=1), alpha=-1)


def _power_iteration(gamma: np.ndarray, M: np.ndarray, single_target: bool):
    """scikit-learn's ``_get_first_singular_vectors_power_method`` (mode A) in the q-space of u = Y_kγ.

    scikit-learn's iterates are w_t ∝ X_kᵀY_kγ_{t-1} with γ_t ∝ Mβ_t (its divisions by uᵀu, tᵀt and
    cᵀc only scale them), so w_t ∝ X_kᵀY_k β_t with β_t ∝ M^(t-1)γ₀, normalised to ‖w_t‖² = β_tᵀMβ_t = 1;
    it stops at the first t ≥ 2 with ‖w_t − w_(t-1)‖² < tol, at once for a single target, or at max_iter.
    With V_j = M̂ʲγ₀ (M̂ = M/‖M‖, whose powers cannot overflow), a_j = V_j·V_j and b_j = V_j·V_(j+1):

        ‖w_t − w_(t-1)‖² = 2 − 2 a_j / √(b_j b_(j-1)),  β_t = V_j / √(‖M‖ b_j)   for t = j + 1

    ``kernels.power_iteration`` runs these steps, in the ratios of unit vectors (the powers shrink).
    Runs in float64 on the CPU (as scikit-learn does), whatever the fit's dtype.
    Returns β (w = X_kᵀY_kβ) and the iteration count of each fold.
    """
    dtype = gamma.dtype
    gamma, M = gamma.astype(np.float64), M.astype(np.float64, copy=False)
    if single_target:
        square = np.einsum("fi,fij,fj->f", gamma, M, gamma)
        return (gamma * _unit_scale(square)[:, None]).astype(dtype), np.ones(len(gamma), dtype=np.int64)
    beta, iters = kernels.power_iteration(gamma, M, TOL, MAX_ITER)
    return beta.astype(dtype), iters


def _unit_scale(square: np.ndarray) -> np.ndarray:
    """scikit-learn's w /= ‖w‖ + eps for ‖w‖² = ``square``: bounded where w has (nearly) vanished."""
    return 1 / (np.sqrt(np.maximum(square, 0)) + np.finfo(np.float64).eps)


def regression_coefficients(W, P, C, tts) -> torch.Tensor:
    """coef = W pinv(PᵀW) Cᵀ per fold (F × d × q) from the rows of W and P (F × A × d)."""
    PtW = P @ W.transpose(1, 2)
    PtW = PtW * (tts > 0).to(PtW.dtype).unsqueeze(2)
    return W.transpose(1, 2) @ torch.linalg.pinv(PtW) @ C.transpose(1, 2)
