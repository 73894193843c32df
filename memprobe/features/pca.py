"""Exact PCA of a layer's reference activations, in memory independent of the layer's width.

Brain-Score's LayerPCA fits scikit-learn's ``PCA(n_components, random_state=0)`` on the n × p matrix X of
one layer's flattened activations to n reference images; at its sizes (n_components = n) that is a full
float32 SVD of the centred X, which holds X several times over (1,000 × 831,744 for ResNet-152's
``conv1``: 3.3 GB each). :func:`fit` computes the same decomposition from the n × n Gram matrix, reading
the stored, memory-mapped X in blocks of columns:

1. one pass: the column means μ and G = X_c X_cᵀ (X_c = X − μ), in float64;
2. G = U Λ Uᵀ (float64 ``eigh``), singular values s = √λ;
3. a second pass: the components V = S⁻¹ Uᵀ X_c, block by block, written as float32 to a memory-mapped
   p × k ``.npy`` (unit × component, so a block of units is a contiguous run of rows, for the writes
   here and the projection's reads in the hook);
4. scikit-learn's sign rule (``svd_flip(u_based_decision=False)``): each component's largest-magnitude
   entry (the first, on ties) is positive, so even the signs agree with LayerPCA's.

Rank: centring leaves X_c rank ≤ n − 1, so with k = n the last component has no variance at all; SVD
returns a unit vector for it anyway, set by rounding (LayerPCA's 1,000th component is such noise). Here
components beyond the rank (n − 1, p, and the number of eigenvalues above the Gram eigendecomposition's
resolution λ_max · max(n, p) · ε₆₄) are zero, so they map every image to 0.

Memory (besides the memory maps, whose pages are the kernel's page cache): three n × n float64 matrices,
the mean (12 bytes per unit) and about four blocks of ``block_bytes``: with the default 64 MiB and
n = 1,000, about 0.3 GB (0.31 GB for p = 831,744).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

BLOCK_BYTES = 64 * 2**20


def blocks(total: int, width: int) -> Iterator[slice]:
    for start in range(0, total, width):
        yield slice(start, min(start + width, total))


def fit(reference: np.ndarray, n_components: int, folder: Path, block_bytes: int = BLOCK_BYTES) -> None:
    """Write the PCA of ``reference`` (n × p; a memory map is read block by block) into ``folder``:
    ``mean.npy`` (p), ``components_t.npy`` (p × k, the components as columns) and
    ``explained_variance.npy`` (k), all float32, k = min(n_components, n, p)."""
    n, p = reference.shape
    k = min(n_components, n, p)
    width = max(1, block_bytes // (8 * max(n, k)))
    mean = torch.empty(p, dtype=torch.float64)
    gram = torch.zeros(n, n, dtype=torch.float64)
    for columns in blocks(p, width):
        block = _float64(reference, columns)
        mean[columns] = block.mean(dim=0)
        block -= mean[columns]
        gram += block @ block.T
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    eigenvalues, eigenvectors = eigenvalues.flip(0)[:k], eigenvectors.flip(1)[:, :k]
    rank = _rank(eigenvalues, n, p)
    to_components = eigenvectors[:, :rank] / eigenvalues[:rank].sqrt()
    components_t = np.lib.format.open_memmap(folder / "components_t.npy", "w+", np.float32, (p, k))
    largest = torch.zeros(rank, dtype=torch.float32)  # per component, the largest |entry| so far,
    signs = torch.ones(k, dtype=torch.float32)  # and its sign
    for columns in blocks(p, width):
        block = _float64(reference, columns)
        block -= mean[columns]
        values = (block.T @ to_components).to(torch.float32)
        peak, at = values.abs().max(dim=0)  # the first of equal entries, as sklearn's argmax
        later_larger = peak > largest  # strictly: an earlier block's equal entry stays
        largest[later_larger] = peak[later_larger]
        signs[:rank][later_larger] = values[at, torch.arange(rank)][later_larger].sign()
        components_t[columns, :rank] = values.numpy()  # the file starts as zeros: columns past the rank stay
    for units in blocks(p, max(1, block_bytes // (4 * k))):
        components_t[units] *= signs.numpy()
    components_t.flush()
    np.save(folder / "mean.npy", mean.to(torch.float32).numpy())
    variance = torch.zeros(k, dtype=torch.float32)
    variance[:rank] = eigenvalues[:rank] / (n - 1)
    np.save(folder / "explained_variance.npy", variance.numpy())


def _float64(reference: np.ndarray, columns: slice) -> torch.Tensor:
    # The products run in torch (MKL): numpy's (OpenBLAS) ran them 10× slower on a busy 2-core machine.
    return torch.from_numpy(np.array(reference[:, columns], dtype=np.float64))


def _rank(eigenvalues: torch.Tensor, n: int, p: int) -> int:
    """How many of the (descending) Gram eigenvalues are real variance, not rounding."""
    resolution = eigenvalues[0] * max(n, p) * torch.finfo(torch.float64).eps
    return min(n - 1, p, int((eigenvalues > resolution).sum()))


def project(batch: torch.Tensor, mean: torch.Tensor, components_t: np.ndarray, rows: int) -> torch.Tensor:
    """(batch − mean) · components, ``rows`` units at a time: the memory-mapped p × k components are
    read block by block (and copied to the batch's device block by block), never held whole."""
    flat = batch.detach().reshape(batch.shape[0], -1).to(torch.float32)
    projected = torch.zeros(flat.shape[0], components_t.shape[1], device=flat.device)
    for units in blocks(flat.shape[1], rows):
        loadings = torch.from_numpy(components_t[units]).to(flat.device)
        projected.addmm_(flat[:, units] - mean[units], loadings)
    return projected
