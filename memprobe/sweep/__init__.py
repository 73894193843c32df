"""The layer sweep: one model × its layers × benchmarks → a tidy score table in a run folder."""

from memprobe.sweep.config import DEFAULT_BENCHMARKS, PLS_DTYPES, SweepConfig, parse_size
from memprobe.sweep.run import SweepTimes, run_sweep
from memprobe.sweep.run_folder import RunFolder

__all__ = [
    "DEFAULT_BENCHMARKS", "PLS_DTYPES", "RunFolder", "SweepConfig", "SweepTimes", "parse_size", "run_sweep"
]
