"""LNSIM (Lu et al., IEEE TIP 2020): 2,632 outdoor natural scenes with memorability hit rates.

Layout (as in the public repository): ``lnsim/Image_data/0001.jpg`` … ``2632.jpg`` and
``lnsim/Random_splits/subject_hrs{1,2}.mat`` holding ``subject_hrs1`` / ``subject_hrs2`` of shape
(25 splits, 2632 images): for each random split of the participants into two halves, each half's hit
rate per image; column i is image i+1.

Stimulus ids are the image file stems, ``"0001"`` … ``"2632"``. The per-image score is the mean of both
halves over the 25 splits; ``half_scores`` keeps every half for the human-consistency ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import xarray as xr

from memprobe.correlation import spearman
from memprobe.data.registry import dataset_dir
from memprobe.data.stimuli import StimulusSet
from memprobe.errors import DataError


@dataclass(frozen=True)
class LNSIM:
    stimuli: StimulusSet
    scores: pd.Series  # index stimulus_id, name "memorability"
    half_scores: xr.DataArray  # split × half × stimulus_id

    def split_half_consistency(self) -> float:
        """Human consistency: Spearman ρ between the two halves, mean over the 25 splits (≈ 0.78)."""
        return float(split_half_spearman(self.half_scores).mean())


def split_half_spearman(half_scores: xr.DataArray) -> pd.Series:
    """Spearman ρ between half 1 and half 2 of each split (index ``split``)."""
    rhos = [
        spearman(half_scores.sel(split=s, half=1).values, half_scores.sel(split=s, half=2).values)
        for s in half_scores["split"].values
    ]
    return pd.Series(rhos, index=pd.Index(half_scores["split"].values, name="split"), name="spearman")


def _read_halves(path: Path, variable: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"LNSIM: missing {path}; re-fetch with `memprobe data fetch lnsim`")
    contents = scipy.io.loadmat(path)
    if variable not in contents:
        raise DataError(f"LNSIM: {path} has no variable {variable!r} (has {sorted(contents)})")
    values = np.asarray(contents[variable], dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"LNSIM: {path}:{variable} should be (splits, images), got shape {values.shape}")
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        split, column = np.argwhere(bad)[0]
        raise DataError(
            f"LNSIM: {path}:{variable} holds {int(bad.sum())} hit rates that are NaN or outside [0, 1], "
            f"first at split {split + 1}, image {column + 1:04d} ({values[split, column]})"
        )
    return values


def load_lnsim(root: str | Path | None = None) -> LNSIM:
    """Load LNSIM from the data folder ``root`` (default ``$MEMPROBE_DATA``)."""
    folder = dataset_dir("lnsim", root)
    half1 = _read_halves(folder / "Random_splits" / "subject_hrs1.mat", "subject_hrs1")
    half2 = _read_halves(folder / "Random_splits" / "subject_hrs2.mat", "subject_hrs2")
    if half1.shape != half2.shape:
        raise DataError(f"LNSIM: the two halves' hit rates differ in shape: {half1.shape} vs {half2.shape}")
    n_splits, n_images = half1.shape

    image_dir = folder / "Image_data"
    ids = [f"{i:04d}" for i in range(1, n_images + 1)]
    present = {p.name for p in image_dir.iterdir()} if image_dir.is_dir() else set()
    missing = [f"{i}.jpg" for i in ids if f"{i}.jpg" not in present]
    if missing:
        raise DataError(
            f"LNSIM: {len(missing)} of {n_images} images with scores are missing from {image_dir}, "
            f"e.g. {missing[:3]}; re-fetch with `memprobe data fetch lnsim`"
        )
    table = pd.DataFrame(
        {"image": [str(image_dir / f"{i}.jpg") for i in ids]}, index=pd.Index(ids, name="stimulus_id")
    )

    half_scores = xr.DataArray(
        np.stack([half1, half2], axis=1),
        dims=("split", "half", "stimulus_id"),
        coords={"split": np.arange(1, n_splits + 1), "half": [1, 2], "stimulus_id": ids},
        name="hit_rate",
    )
    scores = pd.Series(half_scores.mean(dim=("split", "half")).values, index=table.index, name="memorability")
    return LNSIM(StimulusSet("lnsim", table), scores, half_scores)
