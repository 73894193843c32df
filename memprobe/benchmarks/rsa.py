"""RSA on the 92-image set: Spearman ρ between the model RDM and an IT RDM (upper triangles).

Model RDM: 1 − Pearson r between the 92 images' feature vectors. Brain RDMs: the monkey-IT RDM
(674 neurons, Kiani et al. 2007) and the human-IT fMRI RDM (Kriegeskorte et al. 2008), as in
fig. 1 of Kriegeskorte et al. There is a single brain RDM per benchmark and no held-out data, so
there are no splits, and no ceiling is reported (``ceiling=None``): the per-subject human RDMs
estimate a noise ceiling for subject RDMs, not for the group RDM scored here.
"""

from __future__ import annotations

import pandas as pd

from memprobe.benchmarks.base import Benchmark, Score, aligned_features, subset_protocol
from memprobe.benchmarks.metrics import compare_rdms, rdm
from memprobe.data import load_dataset


class RSA92(Benchmark):
    def __init__(self, identifier: str, rdm: str, root=None, dataset=None, subset: int | None = None,
                 subset_seed: int = 0):
        self.identifier = identifier
        self.rdm_name = rdm
        self.dataset = dataset or load_dataset("rsa92", root=root)
        self.stimuli = self.dataset.stimuli.subset(n=subset, seed=subset_seed)
        self.subset_protocol = subset_protocol(self.stimuli, self.dataset.stimuli, subset_seed)

    def stimulus_sets(self):
        return [self.stimuli]

    def protocol(self) -> dict:
        return {
            "benchmark": self.identifier, "metric": "spearman between RDM upper triangles",
            "model_rdm": "1 - pearson r between stimulus feature vectors", "brain_rdm": self.rdm_name,
            "cv": None, "n_splits": 1, "split_seed": None, "stratification": None, "ceiling_formula": None,
            **self.subset_protocol,
        }

    def score(self, features) -> Score:
        ids = self.stimuli.ids
        brain = self.dataset.rdms[self.rdm_name].sel(stimulus_id=ids, stimulus_id_2=ids).values
        model = rdm(aligned_features(features, self.stimuli.name, ids, self.identifier))
        rho = compare_rdms(model, brain)
        per_split = pd.DataFrame({"split": [0], "score": [rho], "n_stimuli": [len(ids)]})
        return Score(rho, None, per_split, self.protocol())
