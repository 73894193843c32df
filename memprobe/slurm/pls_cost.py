"""What scoring one layer costs: the PLS fits a benchmark makes, and their seconds from their sizes.

memprobe's PLS (``memprobe.pls``) fits every cross-validation fold of one data set together, either in
the feature form (passes over the n × p features) or in the kernel form (the same passes over a factor
of the n × n Gram matrix, after computing it), whichever ``fold_solver.kernel_form_is_cheaper`` finds
cheaper. :func:`multiply_adds` counts the multiply-add equivalents of the cheaper form with that same
cost model (its terms are repeated here; a test checks that both choose the same form), and
:class:`PLSTiming` turns them into seconds::

    seconds = per_fit_s + per_fold_s × folds + multiply_adds / multiply_adds_per_s

The fixed costs are NIPALS's hundreds of small operations per component (on a GPU, kernel launches and
host round trips) and the fold's own bookkeeping. The constants are fitted to timings of memprobe's PLS
by ``perf/plan_costs.py`` and committed in ``slurm/costs.json``: on this machine's CPU (measured there),
and on an H100 (fitted to the committed ``results/benchmarks/pls_speed_cuda.json`` and
``neural_speed_cuda.json`` runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from memprobe.pls.fold_solver import FRESH_S_TARGETS, STREAM_COST

# Neuroids of Brain-Score's public assemblies, as Brain-Score documents them (no assembly is read here).
NEUROIDS = {
    "MajajHong2015public.V4-pls": 88,
    "MajajHong2015public.IT-pls": 168,
    "FreemanZiemba2013public.V1-pls": 102,
    "FreemanZiemba2013public.V2-pls": 103,
}
ASSUMED_NEUROIDS = max(NEUROIDS.values())  # for a neural benchmark not listed above


def form_costs(n: int, p: int, q: int, components: int, folds: int) -> tuple[float, float]:
    """Multiply-add equivalents of the (feature form, kernel form) of one fit of all ``folds`` together:
    ``fold_solver.kernel_form_is_cheaper``'s terms."""

    def nipals(d: int) -> float:
        passes = max(2 * n * d * folds, STREAM_COST * n * d)
        if q <= FRESH_S_TARGETS:
            passes += max(n * d * folds * q, STREAM_COST * n * d)
        return n * d * q + components * passes

    return nipals(p), n * n * p / 2 + n**3 / 3 + nipals(n)


def multiply_adds(n: int, p: int, q: int, components: int, folds: int) -> float:
    """Multiply-add equivalents of the form memprobe's PLS chooses."""
    return min(form_costs(n, p, q, min(components, n - 1, p), folds))


@dataclass(frozen=True)
class PLSTiming:
    per_fit_s: float
    per_fold_s: float
    multiply_adds_per_s: float
    basis: str  # where the constants come from, for the plan's notes

    def seconds(self, n: int, p: int, q: int, components: int, folds: int) -> float:
        return (self.per_fit_s + self.per_fold_s * folds
                + multiply_adds(n, p, q, components, folds) / self.multiply_adds_per_s)


@dataclass(frozen=True)
class BenchmarkFits:
    """The PLS fits a benchmark makes on one layer: ``count`` fits of ``n`` images × ``q`` targets, each
    of ``folds`` folds fitted together; ``targets_known``: q is a documented size, not assumed."""

    count: int
    n: int
    q: int
    folds: int
    targets_known: bool = True


def benchmark_fits(benchmark: str, images: int, splits: int) -> BenchmarkFits | None:
    """How ``benchmark`` fits PLS on ``images`` stimuli with ``splits`` splits; None: it fits none (RSA)."""
    if benchmark.endswith("-rsa"):
        return None
    if benchmark == "lamem.memorability-pls":  # one fit per official split: each split has its own scores
        return BenchmarkFits(splits, images, 1, 1)
    if "memorability" in benchmark:
        return BenchmarkFits(1, images, 1, splits)
    neuroids = NEUROIDS.get(benchmark)
    return BenchmarkFits(1, images, neuroids or ASSUMED_NEUROIDS, splits, neuroids is not None)
