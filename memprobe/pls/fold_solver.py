"""The folds' shared layout of the features, and every product with them that NIPALS needs.

With ``scale=False`` PLS sees X only through the inner products of its rows: a factor Z with
ZZᵀ = X₀X₀ᵀ gives the same scores, iterations and predictions. With many more features than images,
Z is the pivoted Cholesky factor of the n × n Gram matrix (the kernel form), and each pass costs n²
instead of np. Cross-validation folds share one Z of all images: a fold's centred training matrix is
Z's rows centred on the fold's mean and zero elsewhere, and all folds run batched.

``kernel_form_is_cheaper`` chooses the form by its cost; ``FoldSolver`` holds Z and makes the passes over
it (on the CPU through the compiled loops of ``kernels``, or blocks of Z shared between threads);
``cpu_threads`` keeps the rest of the fit on one thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
from scipy.linalg import blas, lapack
from threadpoolctl import ThreadpoolController

from memprobe.pls import kernels

# Up to this many targets NIPALS recomputes S = X₀ᵀΠY_k at every component (a pass over Z each time)
FRESH_S_TARGETS = 8
# Reading one matrix element from memory costs about as much as this many multiply-adds in a large
# matrix product (2 cores, float64: products with a few columns are bound by memory bandwidth).
STREAM_COST = 12
# Below this many multiply-adds a CPU product runs on one thread: waking the pool costs more (and on a
# busy machine a whole scheduler time slice).
PARALLEL_FLOPS = 1e7
# Rows of Z per block of a pass through torch (FoldSolver._pass): about the size of a core's L2 cache,
# so the second product of a block reads it from cache.
BLOCK_BYTES = 2 << 20
CACHE_BYTES = 16 << 20  # about half the last-level cache: a Z this small is read from cache, not memory
# Up to this many columns (folds, or folds × targets) a pass streams Z from memory through kernels;
# with more, BLAS's blocked products compute faster
FUSED_COLUMNS = 16


def kernel_form_is_cheaper(n: int, p: int, q: int, n_components: int, folds: int = 1) -> bool:
    """Whether the kernel form is the cheaper, in multiply-add equivalents. Either form makes one pass
    per component over its factor (n × p features, or n × n) with two products of ``folds`` columns, and
    one more with q columns per fold where S is recomputed every time (``FRESH_S_TARGETS``), after a
    first product with q columns; the kernel form first pays for the Gram matrix (n²p/2) and its factor
    (n³/3). A product with few columns streams its matrix from memory instead of computing: ``STREAM_COST``.
    """

    def nipals(d: int) -> float:
        passes = max(2 * n * d * folds, STREAM_COST * n * d)
        if q <= FRESH_S_TARGETS:
            passes += max(n * d * folds * q, STREAM_COST * n * d)
        return n * d * q + n_components * passes

    return n * n * p / 2 + n**3 / 3 + nipals(n) < nipals(p)


@contextmanager
def cpu_threads(count: int | None, device: torch.device):
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


def subtract_outer(A: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
    """A_f ← A_f − u_f v_fᵀ for every fold, in place (on the CPU, baddbmm_ goes through a copy of A)."""
    if A.device.type != "cpu":
        A.baddbmm_(u.unsqueeze(2), v.unsqueeze(1), alpha=-1)
        return
    for f in range(len(A)):
        A[f].addr_(u[f], v[f], alpha=-1)


class FoldSolver:
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
        with cpu_threads(self.threads, X.device):
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
            with cpu_threads(self.threads if n * d * total.shape[0] > PARALLEL_FLOPS else 1, self.Z.device):
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
        with cpu_threads(1, self.Z.device):
            shares = [_pool(self.threads).submit(share, thread, bounds[thread], bounds[thread + 1])
                      for thread in range(self.threads) if bounds[thread] < bounds[thread + 1]]
            total = shares[0].result()
            for share in shares[1:]:
                total += share.result()
            return total

    def _fused(self) -> bool:
        """Whether passes over Z go through ``kernels``'s compiled loops: a Z in the CPU's memory."""
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
            total = torch.from_numpy(kernels.cross(self.Z.detach().numpy(), offset.numpy(), flat.numpy(),
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
            with cpu_threads(self.threads, Y.device):
                for f, rows in enumerate(left_out):
                    torch.sub(targets_sum, Y[rows].T @ self.rows(rows), out=S[f])
        subtract_outer(S, self.mask @ Y, self.means)  # Σ_train (y_i − ȳ_f) = 0: less n_f ȳ_f m_fᵀ
        return S

    def scores(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u_f = Z_f w_f and Zᵀu_f (= Z_fᵀu_f) for F × d W: F × n and F × d, in one pass over Z: a Z in memory
        through the compiled loop of ``kernels``, else as products of blocks of Z whose second product
        reads the block from cache.

        This pass, run once per component, reads X uncentred: Z w = X w − offsetᵀw, and Zᵀu = Xᵀu as u sums
        to zero. Subtracting the offset block by block costs a fifth of the pass, and the products with
        X lose no more than a few bits to it for activations whose mean is of the size of their spread.
        """
        means = self.means if self.offset is None else self.means + self.offset
        shift = (means * W).sum(dim=1, keepdim=True)  # centres u_f
        if self._fused() and len(W) <= FUSED_COLUMNS:
            u, total = kernels.scores(self.Z.detach().numpy(), W.numpy(), shift.flatten().numpy(),
                                     self.mask.numpy(), _pool(self.threads), self.threads)
            return torch.from_numpy(u), torch.from_numpy(total)
        u = torch.empty_like(self.mask)

        def product(rows, block, total):
            u[:, rows] = part = (W @ block.T - shift) * self.mask[:, rows]
            total.addmm_(part, block)

        return u, self._pass(W.shape, product, uncentred=True)
