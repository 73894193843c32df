"""Neural predictivity, Brain-Score's ``pls`` protocol: PLS from a layer's features to neuroids.

For each recording (a Cowley V4 session, or one Brain-Score assembly): 10 splits of its stimuli,
train 0.9 / test 0.1, ``random_state=1`` — ``StratifiedShuffleSplit`` by the assembly's stratification
coordinate (``object_name`` for MajajHong2015) when the responses carry it, otherwise ``ShuffleSplit``
with the same arguments (what Brain-Score does with ``stratification_coord=None``); the split indices
refer to the responses' presentation order. PLSRegression(25, scale=False) is fitted on each split's
training stimuli, and Pearson r per neuroid is taken on its test stimuli.

Aggregation: per split, the median r over all neuroids (pooled over recordings), then the mean over
splits. Ceiling: Brain-Score's InternalConsistency on the repetitions (see
:func:`memprobe.benchmarks.metrics.split_half_consistency`); ceiled = raw / ceiling.

``cowley_v4.V4-pls`` fits each of the 8 sessions separately (their images differ) and pools their
neuroids. Only session 210325 has raw repeats, so its split-half ceiling is applied to the pooled
score of all sessions — an estimate that assumes similar reliability across sessions (recorded in the
protocol as ``ceiling_source``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from memprobe.benchmarks.base import Benchmark, PLSOptions, Score, aligned_features, cross_validated
from memprobe.benchmarks.metrics import SplitHalfConsistency, split_half_consistency
from memprobe.correlation import pearson_per_column
from memprobe.data import StimulusSet, load_dataset
from memprobe.errors import BenchmarkError

N_SPLITS = 10
TRAIN_SIZE = 0.9
SPLIT_SEED = 1
COWLEY_CEILING_SESSION = "210325"


@dataclass(frozen=True)
class Recording:
    """Responses (presentation × neuroid, ``stimulus_id`` on presentation) to one stimulus set."""

    name: str
    stimuli: StimulusSet
    responses: xr.DataArray


def brainscore_splits(n_stimuli: int, stratify=None, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED):
    """Brain-Score's cross-validation splits: (train indices, test indices) pairs."""
    arguments = dict(n_splits=n_splits, train_size=TRAIN_SIZE, test_size=None, random_state=seed)
    if stratify is None:
        return list(ShuffleSplit(**arguments).split(np.zeros(n_stimuli)))
    return list(StratifiedShuffleSplit(**arguments).split(np.zeros(n_stimuli), np.asarray(stratify)))


class NeuralPLS(Benchmark):
    def __init__(self, identifier: str, recordings: list[Recording], ceiling: SplitHalfConsistency | None,
                 ceiling_source: str | None, stratification_coord: str | None, pls: PLSOptions | None = None,
                 subset: int | None = None, subset_seed: int = 0):
        self.identifier = identifier
        self.recordings = [_restrict(recording, subset, subset_seed) for recording in recordings]
        self.subset_protocol = {} if subset is None else {"subset": subset, "subset_seed": subset_seed}
        self.ceiling = ceiling
        self.ceiling_source = ceiling_source
        self.stratification_coord = stratification_coord
        self.pls = pls or PLSOptions()

    def stimulus_sets(self) -> list[StimulusSet]:
        return [recording.stimuli for recording in self.recordings]

    def _stratified(self) -> bool:
        """Brain-Score stratifies the splits when every recording's responses carry the coordinate."""
        coord = self.stratification_coord
        return coord is not None and all(coord in recording.responses.coords for recording in self.recordings)

    def _recording_scores(self, recording: Recording, features) -> np.ndarray:
        responses = recording.responses.transpose("presentation", "neuroid")
        ids = [str(i) for i in responses["stimulus_id"].values]
        X = aligned_features(features, recording.stimuli.name, ids, self.identifier)
        Y = np.asarray(responses.values, dtype=np.float64)
        if not np.isfinite(Y).all():
            raise BenchmarkError(f"{self.identifier}: responses of {recording.name} contain NaN; "
                                 "average repetitions with nanmean before scoring")
        stratify = responses[self.stratification_coord].values if self._stratified() else None
        splits = brainscore_splits(len(ids), stratify)
        return np.stack(cross_validated(self.pls, X, Y, splits, pearson_per_column))

    def protocol(self) -> dict:
        strategy = "StratifiedShuffleSplit" if self._stratified() else "ShuffleSplit"
        protocol = {
            "benchmark": self.identifier, "metric": "pearson r per neuroid", **self.pls.protocol(),
            "cv": f"{strategy}(train_size={TRAIN_SIZE}, test_size=None)", "n_splits": N_SPLITS,
            "split_seed": SPLIT_SEED,
            "stratification": self.stratification_coord if self._stratified() else None,
            "aggregate": "median over neuroids pooled over recordings, then mean over splits",
            "recordings": [recording.name for recording in self.recordings],
            "ceiling_source": self.ceiling_source,
            **self.subset_protocol,
        }
        if self.ceiling is not None:
            protocol.update(self.ceiling.protocol)
            protocol["ceiling_formula"] += "; ceiled = raw / ceiling"
        else:
            protocol["ceiling_formula"] = None
        return protocol

    def score(self, features) -> Score:
        per_recording, rows = [], []
        for recording in self.recordings:
            r = self._recording_scores(recording, features)
            neuroids = recording.responses["neuroid_id"].values
            per_recording.append(xr.DataArray(
                r, dims=("split", "neuroid"),
                coords={"split": np.arange(r.shape[0]), "neuroid_id": ("neuroid", [str(n) for n in neuroids]),
                        "recording": ("neuroid", [recording.name] * r.shape[1])},
            ))
            rows += [{"split": s, "recording": recording.name, "score": float(np.nanmedian(r[s])),
                      "n_neuroids": r.shape[1]} for s in range(r.shape[0])]
        details = xr.concat(per_recording, dim="neuroid")
        pooled = np.nanmedian(details.values, axis=1)
        n_pooled = details.sizes["neuroid"]
        rows += [{"split": s, "recording": "pooled", "score": float(pooled[s]), "n_neuroids": n_pooled}
                 for s in range(len(pooled))]
        ceiling = None if self.ceiling is None else self.ceiling.value
        return Score(float(pooled.mean()), ceiling, pd.DataFrame(rows), self.protocol(), details)


def _restrict(recording: Recording, subset: int | None, seed: int) -> Recording:
    """The recording on ``subset`` of its stimuli (drawn with ``seed``), or all of it."""
    stimuli = recording.stimuli.subset(n=subset, seed=seed)
    if stimuli is recording.stimuli:
        return recording
    keep = np.isin(np.asarray(recording.responses["stimulus_id"].values).astype(str), stimuli.ids)
    return Recording(recording.name, stimuli, recording.responses.isel(presentation=keep))


def _repeats(raw: xr.DataArray) -> np.ndarray:
    return raw.transpose("presentation", "neuroid", "repetition").values


class CowleyV4PLS(NeuralPLS):
    """``cowley_v4.V4-pls``: every Cowley session fitted separately, neuroids pooled."""

    def __init__(self, identifier: str = "cowley_v4.V4-pls", pls: PLSOptions | None = None, root=None,
                 dataset=None, sessions: list[str] | None = None, subset: int | None = None,
                 subset_seed: int = 0):
        dataset = dataset or load_dataset("cowley_v4", root=root)
        recordings = []
        for name in sessions or dataset.sessions:
            session = dataset.session(name)
            recordings.append(Recording(name, session.stimuli, session.responses))
        raw = dataset.session(COWLEY_CEILING_SESSION).raw
        ceiling = split_half_consistency(_repeats(raw)) if raw is not None else None
        source = f"split-half repeats of session {COWLEY_CEILING_SESSION}, applied to all sessions"
        super().__init__(identifier, recordings, ceiling, source if ceiling else None, None, pls,
                         subset, subset_seed)


class BrainScorePLS(NeuralPLS):
    """``MajajHong2015public.{V4,IT}-pls``, ``FreemanZiemba2013public.{V1,V2}-pls`` on the Brain-Score
    assemblies (``memprobe.data.brainscore``); ``dataset=`` takes an already converted one."""

    def __init__(self, identifier: str, assembly: str, pls: PLSOptions | None = None, dataset=None,
                 subset: int | None = None, subset_seed: int = 0, **load):
        dataset = dataset or load_dataset("brainscore", identifier=assembly, **load)
        stratification = dataset.responses.attrs.get("stratification_coord")
        ceiling = split_half_consistency(_repeats(dataset.raw)) if dataset.raw is not None else None
        recordings = [Recording(assembly, dataset.stimuli, dataset.responses)]
        source = f"split-half repeats of {assembly}" if ceiling else None
        super().__init__(identifier, recordings, ceiling, source, stratification, pls, subset, subset_seed)
