"""User-facing errors: the CLI prints these without a traceback."""


class MemprobeError(Exception):
    """An error a user can act on. The message names the file/id at fault and what to do."""


class DataError(MemprobeError):
    """Missing, malformed or inconsistent data."""


class ModelError(MemprobeError):
    """Unknown model, missing weights, or a layer that does not exist."""


class BenchmarkError(MemprobeError):
    """Unknown benchmark or a protocol that cannot be applied to the data given."""


class UnscorableFeatures(BenchmarkError):
    """A layer's features carry no information for this benchmark (e.g. constant over the images).

    The layer has no score: a sweep records it as NaN with this message instead of stopping.
    """
