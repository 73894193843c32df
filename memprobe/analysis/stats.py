"""Rank correlations with honest uncertainty: Spearman and partial Spearman, bootstrap CIs, permutation p.

Point estimates and permutation nulls work on batches (arrays ``(..., n)`` hold ``...`` samples of ``n``
points). Bootstrap replicates are multisets of the original points, so they are computed from resampling
weights with one sort of the data for all replicates (see ``perf/analysis_bootstrap.py`` for the
speed against scipy.stats.bootstrap and pingouin).

Partial Spearman is the Pearson partial correlation of ranks (the definition pingouin and R's ``ppcor``
use): ``x``, ``y`` and each covariate are ranked, ``x`` and ``y`` ranks are regressed on the covariate
ranks (with intercept), and the residuals are correlated.

Model identity is controlled by ranking every variable *within* each model and centring those ranks per
model: the Pearson partial correlation of within-model ranks given one dummy per model (by
Frisch-Waugh-Lovell the centring is the dummy regression, without an ``n x n_models`` design matrix).
Ranking within models rather than over the pooled layers matters: pooled ranks of ``offset_model + f(depth)``
are a different nonlinear function of depth in each model, which a linear fit on depth ranks plus model
dummies cannot remove, leaving a spurious partial correlation when depth and model drive both axes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

# Floats in one batched chunk; bounds memory at ~160 MB for 16,860-layer tables.
_CHUNK_FLOATS = 20_000_000


@dataclass(frozen=True)
class Correlation:
    """A rank correlation with its percentile-bootstrap CI and two-sided permutation p-value."""

    rho: float
    ci_low: float
    ci_high: float
    p_perm: float
    p_parametric: float
    n: int
    n_groups: int
    resampling: str
    controls: str

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=-1) / denominator


def _group_counts(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the size of its group, and how many points of its row lie in lower-numbered groups."""
    n_groups = int(groups.max()) + 1
    rows = groups.reshape(-1, groups.shape[-1])
    flat_labels = rows + n_groups * np.arange(rows.shape[0])[:, None]
    counts = np.bincount(flat_labels.ravel(), minlength=rows.shape[0] * n_groups).reshape(-1, n_groups)
    lower = np.cumsum(counts, axis=1) - counts
    size = np.take_along_axis(counts, rows, axis=1).reshape(groups.shape)
    before = np.take_along_axis(lower, rows, axis=1).reshape(groups.shape)
    return size, before


def centred_ranks(values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Ranks along the last axis minus their mean; with ``groups``, ranks within each group minus the group's
    mean rank (ties get average ranks either way)."""
    ranked = stats.rankdata(values, axis=-1)
    n = ranked.shape[-1]
    if groups is None:
        return ranked - (n + 1) / 2
    groups = np.broadcast_to(groups, ranked.shape)
    size, before = _group_counts(groups)
    # Pooled ranks are integers/halves <= n, so shifting each group by (n + 1) keeps groups apart exactly.
    within = stats.rankdata(ranked + groups * (n + 1), axis=-1) - before
    return within - (size + 1) / 2


def rank_residuals(
    values: np.ndarray, covariates: np.ndarray | None = None, groups: np.ndarray | None = None
) -> np.ndarray:
    """Centred ranks of ``values`` (``(..., n)``), within groups when given, with a linear fit on the
    covariates' (equally ranked) values removed.

    ``covariates`` has shape ``(..., n, k)``; ``groups`` shape ``(..., n)`` (or ``(n,)``), ints 0..G-1.
    """
    ranked = centred_ranks(values, groups)
    if covariates is None:
        return ranked
    covariate_ranks = np.stack(
        [centred_ranks(covariates[..., j], groups) for j in range(covariates.shape[-1])], axis=-1
    )
    design = np.concatenate([np.ones(covariate_ranks.shape[:-1] + (1,)), covariate_ranks], axis=-1)
    transposed = np.swapaxes(design, -1, -2)
    # pinv, not solve: a bootstrap resample can make a covariate constant (singular Gram matrix).
    beta = np.linalg.pinv(transposed @ design) @ (transposed @ ranked[..., None])
    return ranked - (design @ beta)[..., 0]


def rank_correlation(
    x: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None, groups: np.ndarray | None = None
) -> np.ndarray:
    """Spearman ρ of ``x`` and ``y`` along the last axis; partial when covariates and/or groups are given."""
    return _pearson(rank_residuals(x, covariates, groups), rank_residuals(y, covariates, groups))


def _as_covariates(covariates, n: int) -> np.ndarray | None:
    return None if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)


def _as_groups(groups) -> tuple[np.ndarray | None, int]:
    """Group labels (any type) → integer codes 0..G-1 and G."""
    if groups is None:
        return None, 1
    uniques, codes = np.unique(np.asarray(groups), return_inverse=True)
    return codes.astype(int), len(uniques)


def _chunks(total: int, n: int, width: int):
    size = max(1, _CHUNK_FLOATS // max(1, n * width))
    for start in range(0, total, size):
        yield start, min(total, start + size)


def _weighted_centred_ranks(values: np.ndarray, weights: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Mid-ranks of each point in the multisets that ``weights`` (``(B, n)`` counts) make of ``values``
    (``(n,)``), within groups when given, centred on the (group's) mean rank; shape ``(B, n)``.

    One sort of the values serves every replicate: a point's rank is the weight of the smaller values (in
    its group) plus half its tie block, so a bootstrap costs O(B·n) instead of B sorts.
    """
    n = values.size
    group_of = np.zeros(n, dtype=int) if groups is None else groups
    order = np.lexsort((values, group_of))
    sorted_values, sorted_groups = values[order], group_of[order]
    new_value = np.ones(n, dtype=bool)
    new_value[1:] = (sorted_values[1:] != sorted_values[:-1]) | (sorted_groups[1:] != sorted_groups[:-1])
    starts = np.flatnonzero(new_value)
    code = np.empty(n, dtype=int)
    code[order] = np.cumsum(new_value) - 1
    block = np.add.reduceat(weights[:, order], starts, axis=1)  # weight per distinct (group, value)
    below = np.cumsum(block, axis=1) - block
    block_group = sorted_groups[starts]
    new_group = np.ones(starts.size, dtype=bool)
    new_group[1:] = block_group[1:] != block_group[:-1]
    first_block = np.flatnonzero(new_group)
    group_index = np.cumsum(new_group) - 1
    below -= below[:, first_block][:, group_index]  # restart the count at each group
    group_total = np.add.reduceat(block, first_block, axis=1)[:, group_index]
    centred = below + (block + 1) / 2 - (group_total + 1) / 2
    return centred[:, code]


def weighted_rank_correlation(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, covariates: np.ndarray | None = None, groups=None
) -> np.ndarray:
    """(Partial) Spearman ρ of the multisets given by integer ``weights`` ``(B, n)``: the same number as
    ``rank_correlation`` on the points repeated by their weights (a bootstrap resample), per row."""
    columns = [x, y] + ([] if covariates is None else [covariates[:, j] for j in range(covariates.shape[1])])
    ranks = np.stack([_weighted_centred_ranks(column, weights, groups) for column in columns], axis=1)
    # Ranks are centred (per group), so weighted second moments are the covariances given an intercept and
    # group dummies; the partial correlation follows from the inverse covariance matrix.
    covariance = np.einsum("bin,bjn->bij", ranks * weights[:, None, :], ranks)
    precision = np.linalg.pinv(covariance) if covariates is not None else covariance
    sign = -1 if covariates is not None else 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign * precision[:, 0, 1] / np.sqrt(precision[:, 0, 0] * precision[:, 1, 1])


def _layer_weights(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """Resampling weights of n points drawn with replacement, ``rows`` times."""
    draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(float)


def _hierarchical_weights(
    rng: np.random.Generator, rows: int, codes: np.ndarray, n_groups: int
) -> np.ndarray:
    """Weights from drawing groups with replacement, then each drawn group's points with replacement.

    A group drawn m times contributes m·n_g draws from its n_g points, i.e. a multinomial(m·n_g, 1/n_g).
    """
    drawn = rng.integers(0, n_groups, size=(rows, n_groups)) + n_groups * np.arange(rows)[:, None]
    times = np.bincount(drawn.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)
    weights = np.zeros((rows, codes.size))
    for group in range(n_groups):
        members = np.flatnonzero(codes == group)
        weights[:, members] = rng.multinomial(
            times[:, group] * members.size, np.full(members.size, 1 / members.size)
        )
    return weights


def bootstrap_distribution(
    x,
    y,
    covariates=None,
    groups=None,
    partial_groups: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap replicates of the (partial) Spearman ρ.

    Without ``groups`` the points (layers) are resampled with replacement. With ``groups`` (model per
    layer) the resampling is hierarchical: models are drawn with replacement, then layers within each drawn
    model. With ``partial_groups`` the statistic also controls for group identity; a model drawn twice then
    counts as one model holding both draws of its layers.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    covariates = _as_covariates(covariates, n)
    codes, n_groups = _as_groups(groups)
    hierarchical = codes is not None and n_groups > 1
    statistic_groups = codes if (hierarchical and partial_groups) else None
    width = 8 + 3 * (0 if covariates is None else covariates.shape[1])
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    for start, stop in _chunks(n_boot, n, width):
        rows = stop - start
        weights = (
            _hierarchical_weights(rng, rows, codes, n_groups)
            if hierarchical
            else _layer_weights(rng, rows, n)
        )
        replicates[start:stop] = weighted_rank_correlation(x, y, weights, covariates, statistic_groups)
    return replicates


def permutation_distribution(x, y, covariates=None, groups=None, n_perm: int = 2000, seed: int = 0):
    """Null replicates of the (partial) Spearman ρ from permuting ``y``'s rank residuals against ``x``'s.

    For the plain Spearman ρ this is the exact pairing-permutation null (ranks do not change under
    permutation). For partial ρ the residuals are permuted (ter Braak's approximate scheme).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    covariates = _as_covariates(covariates, n)
    codes, _ = _as_groups(groups)
    residual_x = rank_residuals(x, covariates, codes)
    residual_y = rank_residuals(y, covariates, codes)
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_perm)
    for start, stop in _chunks(n_perm, n, 2):
        order = rng.permuted(np.broadcast_to(np.arange(n), (stop - start, n)), axis=1)
        replicates[start:stop] = _pearson(residual_x, residual_y[order])
    return replicates


def parametric_pvalue(rho: float, n: int, n_covariates: int) -> float:
    """Two-sided p from the t distribution with n - 2 - k degrees of freedom (as scipy/pingouin report)."""
    dof = n - 2 - n_covariates
    if dof <= 0 or not np.isfinite(rho):
        return float("nan")
    if abs(rho) >= 1:
        return 0.0
    t = rho * np.sqrt(dof / (1 - rho * rho))
    return float(2 * stats.t.sf(abs(t), dof))


def correlate(
    x,
    y,
    covariates=None,
    groups=None,
    control_groups: bool = False,
    n_boot: int = 2000,
    n_perm: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    covariate_names: tuple[str, ...] = (),
) -> Correlation:
    """(Partial) Spearman ρ of x and y, percentile-bootstrap CI and two-sided permutation p.

    ``groups`` (e.g. model per layer) makes the bootstrap hierarchical; ``control_groups`` also removes
    each group's mean ranks (controls for group identity) in the statistic itself.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    covariates = _as_covariates(covariates, x.size)
    codes, n_groups = _as_groups(groups)
    statistic_groups = codes if control_groups else None
    rho = float(rank_correlation(x, y, covariates, statistic_groups))
    n_controls = (0 if covariates is None else covariates.shape[1]) + (n_groups - 1 if control_groups else 0)
    boot = bootstrap_distribution(x, y, covariates, codes, control_groups, n_boot, seed)
    null = permutation_distribution(x, y, covariates, statistic_groups, n_perm, seed + 1)
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(boot, [tail, 1 - tail]) if np.isfinite(boot).any() else (np.nan, np.nan)
    exceed = np.count_nonzero(np.abs(null) >= abs(rho) - 1e-12)
    controls = list(covariate_names) + (["model"] if control_groups else [])
    return Correlation(
        rho=rho,
        ci_low=float(low),
        ci_high=float(high),
        p_perm=float((exceed + 1) / (n_perm + 1)),
        p_parametric=parametric_pvalue(rho, x.size, n_controls),
        n=int(x.size),
        n_groups=int(n_groups),
        resampling="models, then layers within models" if n_groups > 1 else "layers",
        controls=", ".join(controls) if controls else "none",
    )
