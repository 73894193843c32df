"""Memorability benchmarks: PLS from a layer's features to memorability scores, scored by Spearman ρ."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from memprobe.benchmarks.base import (
    Benchmark,
    PLSOptions,
    Score,
    aligned_features,
    cross_validated,
    subset_protocol,
)
from memprobe.correlation import spearman
from memprobe.data import load_dataset
from memprobe.errors import BenchmarkError, DataError

LNSIM_FOLDS = 5
LNSIM_SEED = 0


class LNSIMMemorability(Benchmark):
    """``lnsim.memorability-pls``: seeded 5-fold CV over LNSIM's 2,632 images (no official splits).

    Ceiling: human consistency, the Spearman ρ between the hit rates of two random halves of the
    participants, mean over the data set's 25 splits (≈ 0.78, no Spearman-Brown correction).
    """

    def __init__(self, identifier: str = "lnsim.memorability-pls", pls: PLSOptions | None = None,
                 root=None, dataset=None, seed: int = LNSIM_SEED, n_folds: int = LNSIM_FOLDS,
                 subset: int | None = None, subset_seed: int = 0):
        self.identifier = identifier
        self.pls = pls or PLSOptions()
        self.dataset = dataset or load_dataset("lnsim", root=root)
        self.seed, self.n_folds = seed, n_folds
        self.stimuli = self.dataset.stimuli.subset(n=subset, seed=subset_seed)
        self.subset_protocol = subset_protocol(self.stimuli, self.dataset.stimuli, subset_seed)

    def stimulus_sets(self):
        return [self.stimuli]

    def protocol(self) -> dict:
        return {
            "benchmark": self.identifier, "metric": "spearman", **self.pls.protocol(),
            "cv": "KFold(shuffle=True)", "n_splits": self.n_folds, "split_seed": self.seed,
            "stratification": None, "aggregate": "mean over folds",
            "ceiling_formula": "human split-half Spearman, mean of 25 splits; ceiled = raw / ceiling",
            **self.subset_protocol,
        }

    def score(self, features) -> Score:
        scores = self.dataset.scores.loc[self.stimuli.ids]
        ids = list(scores.index)
        X = aligned_features(features, self.stimuli.name, ids, self.identifier)
        folds = list(KFold(self.n_folds, shuffle=True, random_state=self.seed).split(ids))
        rhos = cross_validated(self.pls, X, scores.to_numpy(dtype=np.float64), folds, spearman)
        per_split = pd.DataFrame({"split": range(self.n_folds), "score": rhos,
                                  "n_train": [len(train) for train, _ in folds],
                                  "n_test": [len(test) for _, test in folds]})
        return Score(float(np.mean(rhos)), self.dataset.split_half_consistency(), per_split, self.protocol())


class LaMemMemorability(Benchmark):
    """``lamem.memorability-pls``: LaMem's official splits — fit on train_k, score on test_k, k = 1..5.

    Each split file's own scores are used (they differ slightly between files). Needs the LaMem images
    for ``stimulus_sets()``; ``score`` needs only features keyed by the images' ids (file stems).
    No ceiling is computed: LaMem ships no per-participant data (the published human consistency is 0.68).
    """

    SPLITS = (1, 2, 3, 4, 5)

    def __init__(self, identifier: str = "lamem.memorability-pls", pls: PLSOptions | None = None,
                 root=None, images=None, dataset=None, subset: int | None = None, subset_seed: int = 0):
        if subset is not None:
            raise BenchmarkError(
                f"{identifier} scores LaMem's official splits, which fix their images; it takes no subset"
            )
        self.identifier = identifier
        self.pls = pls or PLSOptions()
        self.dataset = dataset or load_dataset("lamem", root=root, images=images)

    def stimulus_sets(self):
        if self.dataset.stimuli is None:
            raise DataError(
                "lamem.memorability-pls needs the LaMem images: download lamem.tar.gz (2.7 GB) from the "
                "LaMem site, unpack it and pass images=<folder> (or put it under $MEMPROBE_DATA/lamem/images)"
            )
        return [self.dataset.stimuli]

    def protocol(self) -> dict:
        return {
            "benchmark": self.identifier, "metric": "spearman", **self.pls.protocol(),
            "cv": "official LaMem splits train_k → test_k", "n_splits": len(self.SPLITS), "split_seed": None,
            "stratification": None, "aggregate": "mean over splits", "ceiling_formula": None,
        }

    def score(self, features) -> Score:
        train_sets = [self.dataset.split("train", k) for k in self.SPLITS]
        test_sets = [self.dataset.split("test", k) for k in self.SPLITS]
        ids = pd.Index(sorted(set().union(*(s.index for s in train_sets + test_sets))))
        X = aligned_features(features, "lamem", list(ids), self.identifier)
        trains = [ids.get_indexer(s.index) for s in train_sets]
        tests = [ids.get_indexer(s.index) for s in test_sets]
        rhos = []
        for train, test, train_scores, test_scores in zip(trains, tests, train_sets, test_sets, strict=True):
            # one fit per split: an image's score differs between split files, so splits cannot share Y
            rows = np.concatenate([train, test])
            y = np.concatenate([train_scores.to_numpy(np.float64), test_scores.to_numpy(np.float64)])
            split = (np.arange(len(train)), np.arange(len(train), len(rows)))
            rhos += cross_validated(self.pls, X[rows], y, [split], spearman)
        per_split = pd.DataFrame({"split": list(self.SPLITS), "score": rhos,
                                  "n_train": [len(t) for t in trains], "n_test": [len(t) for t in tests]})
        return Score(float(np.mean(rhos)), None, per_split, self.protocol())
