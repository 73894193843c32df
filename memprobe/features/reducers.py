"""Reducers: map one layer's batch of activations (B, ...) to a (B, d) float32 matrix inside the hook.

Each reducer has a ``key()`` that goes into the activation store's cache key, and ``for_layer(layer,
shape, device)`` that returns the function applied to that layer's output batch. Every reducer returns
a NEW tensor: the hook's input may be overwritten later in the forward pass by an in-place ReLU.

- ``none``: the flattened output (copied).
- ``pool``: the mean over every dimension after the channel dimension (H×W for conv maps, L for 1-d
  maps); vectors (B, C) pass through.
- ``srp``: a very sparse random projection to ``dim`` dimensions (Li, Hastie & Church 2006), with the
  matrix convention of ``sklearn.random_projection.SparseRandomProjection``: density s = 1/sqrt(p),
  entries ±sqrt(1/s)/sqrt(dim) with probability s/2 each, 0 otherwise. The matrix is a torch sparse CSR
  matrix generated deterministically from (seed, p, dim), so layers with the same width share it and a
  dense p × dim matrix never exists. Layers with p ≤ dim pass through unreduced (a projection to more
  dimensions than the input has cannot help).
- ``sketch`` (the default): the count sketch, the same kind of projection with one non-zero (±1) per
  input feature, so it costs one multiply-add per activation whatever D is (srp costs D/sqrt(p) each:
  at D = 4096, extracting all ResNet-152 layers took 3.4× a bare forward pass with srp and 1.4× with
  the sketch; perf/extraction_throughput.py).

Default dim = 4096, chosen by perf/extraction_srp_agreement.py (results/benchmarks/): on two real
Cowley V4 sessions (400 and 640 images, 20 resmem:resnet152 layers from conv1 to fc) neural PLS scores
from sketch:4096 (and srp:4096) agree with those of the unreduced activations (Spearman across layers
0.99 and 0.98, mean |Δr| 0.011 and 0.018), where D = 1024 does not (srp: mean |Δr| 0.038 and 0.055).
The projection's noise lowers scores, by about 0.1 · n / D in raw r for n images, so larger stimulus
sets need proportionally larger D (≈ 5n to stay within 0.02), and disk grows with D. The committed full
ResNet-152 sweep (all 11,364 images of the four default benchmarks) uses srp:1024, because at D = 4096
its store would need ~97 GB.
- ``pca``: Brain-Score's LayerPCA, exactly (1,000 components fitted on a 1,000-image ImageNet reference
  set; layers with at most 1,000 units pass through), fitted in bounded memory: see :class:`PCAReducer`.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from memprobe.errors import MemprobeError
from memprobe.features import pca
from memprobe.features.reducer_spec import DEFAULT_SIZES, ReducerSpec

DEFAULT_SRP_DIM = DEFAULT_SIZES["srp"]
DEFAULT_SEED = 0
# Measured on 2 CPU cores over all 522 ResNet-152 layers (16 images): per-image 1.5 s vs batched 2.7 s
# at D = 1024, but 8.0 s vs 4.6 s at D = 4096, where re-reading the matrix for every image dominates.
PER_IMAGE_MAX_DIM = 1024


@dataclass
class LayerReduction:
    """The per-layer function applied to an output batch, and the width ``dim`` it produces.

    ``same_as``: reductions with equal (not None) values give equal rows for the same tensor, so a tensor
    that two layers output (a block and its last ReLU) is reduced once.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    same_as: tuple | None = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.fn(batch)


class Reducer(ABC):
    name: str

    @abstractmethod
    def key(self) -> str:
        """A stable string naming everything that changes this reducer's output."""

    @abstractmethod
    def for_layer(self, layer: str, shape: tuple[int, ...], device: str | torch.device) -> LayerReduction:
        """The reduction for a layer whose per-image output has ``shape`` (batch dimension excluded)."""

    @abstractmethod
    def output_dim(self, shape: tuple[int, ...]) -> int:
        """How many features :meth:`for_layer` keeps per image of that layer (without building anything)."""

    def fit_bytes(self, shape: tuple[int, ...]) -> int:
        """The most disk that fitting this reducer to a layer of that shape takes in the store (0: it learns
        nothing)."""
        return 0

    def __repr__(self) -> str:
        return self.key()


def _flat_copy(batch: torch.Tensor) -> torch.Tensor:
    return batch.detach().reshape(batch.shape[0], -1).to(torch.float32, copy=True)


class NoReducer(Reducer):
    name = "none"

    def key(self) -> str:
        return "none"

    def for_layer(self, layer, shape, device):
        return LayerReduction(_flat_copy, math.prod(shape), ("copy",))

    def output_dim(self, shape):
        return math.prod(shape)


class PoolReducer(Reducer):
    name = "pool"

    def key(self) -> str:
        return "pool"

    def for_layer(self, layer, shape, device):
        if len(shape) < 2:
            return LayerReduction(_flat_copy, math.prod(shape), ("copy",))

        def spatial_mean(batch: torch.Tensor) -> torch.Tensor:
            return batch.detach().to(torch.float32).flatten(2).mean(dim=2)

        return LayerReduction(spatial_mean, shape[0], ("pool",))

    def output_dim(self, shape):
        return shape[0] if len(shape) >= 2 else math.prod(shape)


def sparse_random_matrix(n_features: int, dim: int, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """The (dim × n_features) very sparse random projection matrix as a torch CSR tensor.

    Row i has Binomial(p, s) non-zeros at distinct random columns, s = 1/sqrt(p), each ±sqrt(1/s)/sqrt(dim)
    with equal probability: exactly the distribution of sklearn's SparseRandomProjection(density='auto').
    """
    rng = np.random.default_rng([seed, n_features, dim])
    density = 1.0 / math.sqrt(n_features)
    counts = rng.binomial(n_features, density, size=dim)
    columns = np.concatenate([np.sort(rng.choice(n_features, c, replace=False)) for c in counts])
    values = (rng.integers(0, 2, size=columns.size) * 2 - 1) * math.sqrt(1.0 / density / dim)
    return _csr(counts, columns, values, dim, n_features)


def count_sketch_matrix(n_features: int, dim: int, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """The (dim × n_features) count sketch as a torch CSR tensor: every input feature adds itself, with a
    random sign, to one random output (Charikar, Chen & Farach-Colton 2002), so ⟨Sx, Sy⟩ is unbiased for
    ⟨x, y⟩ with at most the variance of a dense Gaussian projection, at one multiply-add per feature.
    """
    rng = np.random.default_rng([seed, n_features, dim, 1])
    bucket = rng.integers(0, dim, size=n_features)
    signs = rng.integers(0, 2, size=n_features) * 2.0 - 1
    columns = np.argsort(bucket, kind="stable")
    return _csr(np.bincount(bucket, minlength=dim), columns, signs[columns], dim, n_features)


def _csr(row_counts, columns, values, dim: int, n_features: int) -> torch.Tensor:
    row_starts = np.concatenate([[0], np.cumsum(row_counts)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(row_starts.astype(np.int64)),
            torch.from_numpy(columns.astype(np.int64)),
            torch.from_numpy(values.astype(np.float32)),
            size=(dim, n_features),
            check_invariants=False,
        )


class SRPReducer(Reducer):
    name = "srp"
    per_image_max_dim: float = PER_IMAGE_MAX_DIM  # on the CPU, one sparse mat-vec per image up to this D

    def __init__(self, dim: int = DEFAULT_SRP_DIM, seed: int = DEFAULT_SEED):
        self.dim = dim
        self.seed = seed
        self._matrices: dict[tuple[int, str], torch.Tensor] = {}

    def key(self) -> str:
        return f"{self.name}(dim={self.dim},seed={self.seed})"

    def _make_matrix(self, n_features: int) -> torch.Tensor:
        return sparse_random_matrix(n_features, self.dim, self.seed)

    def matrix(self, n_features: int, device) -> torch.Tensor:
        cache_key = (n_features, str(device))
        if cache_key not in self._matrices:
            self._matrices[cache_key] = self._make_matrix(n_features).to(device)
        return self._matrices[cache_key]

    def for_layer(self, layer, shape, device):
        n_features = math.prod(shape)
        if n_features <= self.dim:
            return LayerReduction(_flat_copy, n_features, ("copy",))
        matrix = self.matrix(n_features, device)

        def project(batch: torch.Tensor) -> torch.Tensor:
            flat = batch.detach().reshape(batch.shape[0], -1).to(torch.float32)
            if flat.device.type == "cpu" and self.dim <= self.per_image_max_dim:
                # At small D one sparse mat-vec per image is cheaper: the batched product transposes
                # the whole (B, p) batch first, which then costs more than the product itself.
                return torch.stack([matrix @ row for row in flat])
            return (matrix @ flat.T).T.contiguous()

        return LayerReduction(project, self.dim, (self.key(),))

    def output_dim(self, shape):
        return min(math.prod(shape), self.dim)


class SketchReducer(SRPReducer):
    """The count sketch (``count_sketch_matrix``): the sparsest random projection, one non-zero per
    input feature instead of D/sqrt(p), so its cost does not grow with D."""

    name = "sketch"
    per_image_max_dim = math.inf  # per image 20 ms vs batched 69 ms (32 images × 802,816 units, D = 4096)

    def _make_matrix(self, n_features: int) -> torch.Tensor:
        return count_sketch_matrix(n_features, self.dim, self.seed)


class PCAReducer(Reducer):
    """Brain-Score's LayerPCA, exactly: a layer with more than ``n_components`` units is projected onto the
    first ``n_components`` principal components (scikit-learn's PCA: centred, signs by ``svd_flip``) of
    its flattened activations to the ``reference`` images; narrower layers pass through unchanged.

    The reducer does not extract anything itself: the extractor asks which layers need a fit
    (:meth:`layers_to_fit`), extracts their raw reference activations into the store and hands each one,
    memory-mapped, to :meth:`fit` with a folder to write the fit into; the store keeps the fits beside
    those activations (:meth:`use` takes them back, memory-mapped).

    Memory budget, whatever the layer's width p (n reference images, k components, both 1,000 for
    Brain-Score's protocol): fitting holds three n × n float64 matrices, the mean (12 bytes per unit) and
    about four blocks of ``block_bytes`` (see :mod:`memprobe.features.pca`): about 0.3 GB at the default
    64 MiB; projecting a batch of B images holds the B × k result and a B × ``block_bytes``/(4k) slice of
    the batch besides the batch itself. The n × p reference activations and the p × k components stay on
    disk, memory-mapped, read a block at a time (their pages are the kernel's page cache, dropped under
    memory pressure). Measured on ResNet-152's ``conv1`` (p = 831,744):
    results/benchmarks/layerpca_vs_brainscore.txt.
    """

    name = "pca"

    def __init__(
        self, reference, n_components: int = DEFAULT_SIZES["pca"], block_bytes: int = pca.BLOCK_BYTES
    ):
        self.reference = reference
        self.n_components = n_components
        self.block_bytes = block_bytes
        self._fits: dict[str, dict[str, np.ndarray]] = {}

    def key(self) -> str:
        return f"pca(n={self.n_components},ref={self.reference.name}:{self.reference.fingerprint()})"

    @property
    def fit_name(self) -> str:
        """Names the fits in the store (beside the raw reference activations they were fitted on)."""
        return f"pca.n{self.n_components}"

    def layers_to_fit(self, layers) -> list:
        """The layers (with ``name``, ``units``) that are projected, not passed through."""
        return [layer for layer in layers if layer.units > self.n_components]

    def fit(self, reference_activations: np.ndarray, folder: Path) -> None:
        """Write the PCA of one layer's raw reference activations (n_reference × p) into ``folder``."""
        pca.fit(reference_activations, self.n_components, folder, self.block_bytes)

    def use(self, layer: str, fitted: dict[str, np.ndarray]) -> None:
        self._fits[layer] = fitted

    def forget(self, layers: list[str]) -> None:
        """Drop these layers' fits (their memory maps: the disk of a deleted file is freed when unmapped)."""
        for layer in layers:
            self._fits.pop(layer, None)

    def output_dim(self, shape):
        units = math.prod(shape)
        return units if units <= self.n_components else min(self.n_components, len(self.reference))

    def fit_bytes(self, shape):
        """The raw float32 reference activations (n × p) and the fit written from them (p × k components
        and the p means): both are on disk until the raw ones are deleted after the fit."""
        units = math.prod(shape)
        if units <= self.n_components:
            return 0
        return (len(self.reference) + self.output_dim(shape) + 1) * units * 4

    def for_layer(self, layer, shape, device):
        units = math.prod(shape)
        if units <= self.n_components:
            return LayerReduction(_flat_copy, units, ("copy",))
        if layer not in self._fits:
            raise MemprobeError(f"PCA reducer was not fitted for layer {layer!r}; extract() fits it first")
        fitted = self._fits[layer]
        mean = torch.from_numpy(np.array(fitted["mean"])).to(device)
        components_t = fitted["components_t"]
        k = components_t.shape[1]
        rows = max(1, self.block_bytes // (4 * k))
        return LayerReduction(lambda batch: pca.project(batch, mean, components_t, rows), k)


REDUCERS = {
    "none": NoReducer, "pool": PoolReducer, "srp": SRPReducer, "sketch": SketchReducer, "pca": PCAReducer
}


def get_reducer(spec: str | ReducerSpec | Reducer, **options) -> Reducer:
    """A reducer from an instance or a spec (see :class:`ReducerSpec`): ``none``, ``pool``, ``srp[:D]``,
    ``sketch[:D]``, ``pca[:K]``. ``pca`` is fitted on the ``imagenet_sample`` images unless ``reference=``
    gives another stimulus set."""
    if isinstance(spec, Reducer):
        return spec
    spec = ReducerSpec.parse(spec)
    options = {**spec.options(), **options}
    if spec.name == "pca" and "reference" not in options:
        from memprobe.data import load_dataset

        options["reference"] = load_dataset("imagenet_sample").stimuli
    return REDUCERS[spec.name](**options)
