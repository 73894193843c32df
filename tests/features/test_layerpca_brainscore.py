"""memprobe's ``pca`` reducer against Brain-Score's own LayerPCA (perf/brainscore_layerpca_peer.py, run in
.venv-brainscore) on a real ResNet-152 layer. The full-size comparison (1,000 components on 1,000 images,
``conv1`` included, V4 scores) is perf/layerpca_vs_brainscore.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from v4_features import SESSION

from memprobe.data import load_dataset
from memprobe.features import ActivationStore, extract, list_layers
from memprobe.features.reducers import PCAReducer
from memprobe.zoo import load_model

REPO = Path(__file__).resolve().parents[2]
BRAINSCORE_PYTHON = REPO / ".venv-brainscore" / "bin" / "python"
LAYER = "layer1.0.conv1"  # 64 × 57 × 57 = 207,936 units, early in the network: a short forward pass


@pytest.mark.brainscore
@pytest.mark.slow
def test_pca_equals_brainscores_layerpca_on_a_real_layer(tmp_path):
    """Equal to LayerPCA up to LayerPCA's own float32 rounding, which a float64 PCA shows: ours agrees with
    that to ~1e-7 on every component, LayerPCA to ~1e-5 (worst components ~1e-3: float32 SVD)."""
    assert BRAINSCORE_PYTHON.is_file(), "run scripts/setup_test_env.sh to create .venv-brainscore"
    model = load_model("resmem:resnet152")
    # LayerPCA fits k components on k ImageNet images; here k = 100, and 50 images of a V4 session
    reference = load_dataset("imagenet_sample").stimuli.subset(n=100, seed=0)
    target = load_dataset("cowley_v4").session(SESSION).stimuli.subset(n=50, seed=0)
    options = dict(store=ActivationStore(tmp_path / "store"), batch_size=50, num_workers=0, progress=False,
                   catalogue=list_layers(model))
    raw = [extract(model, stimuli, [LAYER], "none", **options) for stimuli in (reference, target)]
    paths = [str(options["store"].layer_path(activations.key, LAYER)) for activations in raw]
    command = [str(BRAINSCORE_PYTHON), str(REPO / "perf" / "brainscore_layerpca_peer.py"), *paths,
               str(tmp_path / "layerpca.npz"), "100"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    layerpca = np.load(tmp_path / "layerpca.npz")
    theirs, variance = layerpca["projected"], layerpca["explained_variance"]
    with threadpool_limits(1):  # OpenBLAS's threads crawl on a busy CPU
        exact = PCA(100, svd_solver="full").fit(raw[0][LAYER].values.astype(np.float64))
        truth = exact.transform(raw[1][LAYER].values.astype(np.float64))

    ours = extract(model, target, [LAYER], PCAReducer(reference, n_components=100), **options)[LAYER].values
    assert ours.shape == theirs.shape == (50, 100)
    assert variance[99] < 1e-6 * variance[0]  # centring leaves 99 components; LayerPCA's 100th is rounding
    np.testing.assert_array_equal(ours[:, 99], 0)
    ours, theirs, truth = ours[:, :99], theirs[:, :99], truth[:, :99]
    assert (_relative_errors(ours, truth) < 1e-5).all()  # signs included
    assert (np.sum(ours * theirs, axis=0) > 0).all()  # the same signs as LayerPCA
    assert np.linalg.norm(ours - theirs) < 1e-4 * np.linalg.norm(theirs)
    assert (_relative_errors(ours, theirs) <= _relative_errors(theirs, truth) + 1e-6).all()


def _relative_errors(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per component (column)."""
    return np.linalg.norm(features - reference, axis=0) / np.linalg.norm(reference, axis=0)
