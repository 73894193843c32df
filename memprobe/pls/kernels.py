"""The inner loops of ``memprobe.pls``'s NIPALS on the CPU, compiled with numba.

**The pass over the features** that each component makes (``scores``). For the rows i of a share of Z
(images × features) and F folds (weights W, F × d):

    u_fi = (z_i · w_f − shift_f) · mask_fi        total_f += u_fi z_i

Rows go four at a time: their dot products with w_f read them from memory, and the sums into total_f
(read four rows at once, so total_f is read and written once per four rows) find them still in the
core's cache. Products of BLAS, block by block, read each block twice, the second time from the
shared cache, and stream w and total once per block. On 2 cores, over 2,592 × 4,096 float64 features,
this loop takes 1.8 ms for one fold where blocked products take 3.0 ms (OpenBLAS) or 3.4 ms (torch),
and 7 ms for ten folds where torch's take 17 ms. ``cross`` is the same loop for a single product with
few columns, (Z − 1 offsetᵀ)ᵀV: the S = X₀ᵀΠY_k that NIPALS recomputes at each component for few targets.

**The power iteration** (``power_iteration``) of each component, on the q × q matrix M: one call for
all its steps, where numpy costs a few microseconds of call overhead per step (a tenth of a fit).

The dot products of ``scores`` run in float64 whatever the data's dtype; all sums run in an order the
compiler may change (``fastmath`` reassociation, so that they vectorise): their rounding differs from a
BLAS product's, not its size.
"""

from __future__ import annotations

import numba
import numpy as np

# reassociation and contraction vectorise the sums; no assumption about infinities or NaN
_FAST = {"reassoc", "contract", "nsz", "arcp"}


def _compiled(**options):
    """numba.njit, with the machine code cached on disk where numba finds a writable folder for it (next
    to this file, or the user's cache): else compiled afresh in each process, a second or two."""
    def compile(function):
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(function)
    return compile


@_compiled(nogil=True, fastmath=_FAST)
def scores_rows(Z, W, shift, mask, u, total, start, stop):
    """u[:, start:stop] and total += Σ_i u[:, i] z_iᵀ over rows start … stop − 1 (see the module)."""
    F, d = W.shape
    i = start
    while i + 4 <= stop:
        for f in range(F):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for j in range(d):
                w = W[f, j]
                a0 += Z[i, j] * w
                a1 += Z[i + 1, j] * w
                a2 += Z[i + 2, j] * w
                a3 += Z[i + 3, j] * w
            a0 = (a0 - shift[f]) * mask[f, i]
            a1 = (a1 - shift[f]) * mask[f, i + 1]
            a2 = (a2 - shift[f]) * mask[f, i + 2]
            a3 = (a3 - shift[f]) * mask[f, i + 3]
            u[f, i], u[f, i + 1], u[f, i + 2], u[f, i + 3] = a0, a1, a2, a3
            for j in range(d):
                total[f, j] += a0 * Z[i, j] + a1 * Z[i + 1, j] + a2 * Z[i + 2, j] + a3 * Z[i + 3, j]
        i += 4
    for r in range(i, stop):  # the last rows, fewer than four
        for f in range(F):
            a = 0.0
            for j in range(d):
                a += Z[r, j] * W[f, j]
            a = (a - shift[f]) * mask[f, r]
            u[f, r] = a
            for j in range(d):
                total[f, j] += a * Z[r, j]


@_compiled(nogil=True, fastmath=_FAST)
def cross_rows(Z, offset, V, total, start, stop):
    """total += Σ_i V[i]ᵀ (z_i − offset) over rows start … stop − 1 (total: V's columns × d)."""
    m, d = total.shape
    i = start
    while i + 4 <= stop:
        for c in range(m):
            v0, v1, v2, v3 = V[i, c], V[i + 1, c], V[i + 2, c], V[i + 3, c]
            for j in range(d):
                o = offset[j]
                total[c, j] += v0 * (Z[i, j] - o) + v1 * (Z[i + 1, j] - o) + v2 * (Z[i + 2, j] - o) + v3 * (
                    Z[i + 3, j] - o)
        i += 4
    for r in range(i, stop):  # the last rows, fewer than four
        for c in range(m):
            v = V[r, c]
            for j in range(d):
                total[c, j] += v * (Z[r, j] - offset[j])


def _by_rows(loop, n: int, total_shape, dtype, pool, threads: int, *args) -> np.ndarray:
    """Σ over ``threads`` shares of the n rows of what ``loop(*args, total, start, stop)`` adds to a
    total of zeros: each share on a thread of ``pool`` (the loops release the GIL)."""
    bounds = [n * i // threads for i in range(threads + 1)]
    totals = [np.zeros(total_shape, dtype=dtype) for _ in range(threads)]
    shares = [pool.submit(loop, *args, totals[i], bounds[i], bounds[i + 1])
              for i in range(threads) if bounds[i] < bounds[i + 1]]
    for share in shares:
        share.result()
    total = totals[0]
    for other in totals[1:]:
        total += other
    return total


def scores(Z: np.ndarray, W: np.ndarray, shift: np.ndarray, mask: np.ndarray, pool, threads: int):
    """u (F × n) and Zᵀu per fold (F × d) (see the module), the rows split between ``threads`` threads."""
    u = np.empty((len(W), len(Z)), dtype=Z.dtype)
    total = _by_rows(scores_rows, len(Z), W.shape, Z.dtype, pool, threads, Z, W, shift, mask, u)
    return u, total


def cross(Z: np.ndarray, offset: np.ndarray, V: np.ndarray, pool, threads: int) -> np.ndarray:
    """(Z − 1 offsetᵀ)ᵀV as V's columns × d, for n × m V with few columns (a product that streams Z
    from memory), the rows split between ``threads`` threads."""
    return _by_rows(cross_rows, len(Z), (V.shape[1], Z.shape[1]), Z.dtype, pool, threads, Z, offset, V)


@_compiled(fastmath=_FAST)
def power_iteration_rows(gamma, M, tol, max_iter, beta, iters):
    """Fold by fold, the power iteration of ``nipals._power_iteration`` (see there) with x_j the unit
    vector along M^j γ₀, ν_j = ‖M̂x_j‖ and ρ_j = x_jᵀM̂x_j (M̂ = M/‖M‖): the change at step t = j + 1 is
    2 − 2 ν_(j−1) / √(ρ_j ρ_(j−1)) and β = x_j / (√(‖M‖ ρ_j) + eps). Writes β and the step counts."""
    F, q = gamma.shape
    eps = np.finfo(np.float64).eps
    x, y = np.empty(q), np.empty(q)
    for f in range(F):
        scale = np.sqrt((M[f] * M[f]).sum())
        scale = scale if scale > 0.0 else 1.0
        length = np.sqrt((gamma[f] * gamma[f]).sum())
        for a in range(q):
            x[a] = gamma[f, a] / length if length > 0.0 else 0.0
        rho_before = nu_before = 0.0
        for j in range(max_iter):
            rho = nu = 0.0
            for a in range(q):
                s = 0.0
                for b in range(q):
                    s += M[f, a, b] * x[b]
                y[a] = s / scale
                rho += x[a] * y[a]
                nu += y[a] * y[a]
            nu = np.sqrt(nu)
            # NaN (Mx = 0: u explains nothing more) stops, with β = 0 as in scikit-learn
            if j >= 1 and (not 2.0 - 2.0 * nu_before / np.sqrt(rho * rho_before) >= tol or j + 1 == max_iter):
                unit = 1.0 / (np.sqrt(max(scale * rho, 0.0)) + eps)
                for a in range(q):
                    beta[f, a] = x[a] * unit
                iters[f] = j + 1
                break
            rho_before, nu_before = rho, nu
            for a in range(q):
                x[a] = y[a] / nu if nu > 0.0 else 0.0


def power_iteration(gamma: np.ndarray, M: np.ndarray, tol: float, max_iter: int):
    """β (F × q) and the step counts (F) for float64 γ₀ (F × q) and M (F × q × q)."""
    beta, iters = np.zeros_like(gamma), np.zeros(len(gamma), dtype=np.int64)
    power_iteration_rows(np.ascontiguousarray(gamma), np.ascontiguousarray(M), tol, max_iter, beta, iters)
    return beta, iters
