"""Real data: a linear head on frozen ResMem ResNet-152 features predicts LNSIM memorability."""

from __future__ import annotations

import numpy as np
import pytest

from memprobe.data import load_dataset
from memprobe.finetune.data import FeatureScores, kfold_splits, lamem_splits
from memprobe.finetune.features import cache_frozen_features
from memprobe.finetune.models import build_feature_head
from memprobe.finetune.recipes import PAPER
from memprobe.finetune.trainer import train_folds
from memprobe.zoo import load_model


@pytest.mark.slow
def test_linear_head_on_frozen_resmem_features_predicts_lnsim_memorability(tmp_path):
    lnsim = load_dataset("lnsim")
    stimuli = lnsim.stimuli.subset(n=150, seed=0)
    loaded = load_model("resmem:resnet152")
    # ~30 s of ResNet-152 on 2 cores the first time; cached under MEMPROBE_CACHE afterwards
    features = cache_frozen_features(loaded.network, loaded.preprocessing.transform(), stimuli, ["layer4.2"],
                                     model_key="resmem:resnet152", progress=False)
    assert features.pooled.shape == (150, 2048)
    ids = features.ids
    scores = lnsim.scores.loc[ids].to_numpy()
    folds = kfold_splits(ids, n_folds=5, seed=0)

    def pooled_spearman(targets, out):
        position = {sid: i for i, sid in enumerate(ids)}

        def make_dataset(subset, train):
            rows = [position[s] for s in subset]
            return FeatureScores(features.pooled[rows], subset, targets[rows])

        def build_model(fold):
            return build_feature_head("linear", [2048])

        _, metrics = train_folds(folds, build_model, make_dataset, PAPER, out, progress=False)
        return float(metrics.set_index("fold").loc["overall", "spearman"])

    assert pooled_spearman(scores, tmp_path / "real") > 0.25
    shuffled = np.random.default_rng(0).permutation(scores)  # same values, no relation to the images
    assert abs(pooled_spearman(shuffled, tmp_path / "shuffled")) < 0.2


def test_lamem_folds_are_the_official_splits_and_do_not_leak():
    lamem = load_dataset("lamem")
    folds = lamem_splits(lamem.splits)
    assert [f.index for f in folds] == [0, 1, 2, 3, 4]
    for k, fold in enumerate(folds, start=1):
        assert fold.test == list(lamem.splits[("test", k)].index)
        assert (len(fold.train), len(fold.validation), len(fold.test)) == (45000, 3741, 10000)
        assert not set(fold.test) & (set(fold.train) | set(fold.validation))
