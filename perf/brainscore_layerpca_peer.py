"""Brain-Score's LayerPCA on given raw activations: the peer memprobe's ``pca`` reducer is checked against.

Runs inside the Brain-Score side environment (``.venv-brainscore``), like perf/brainscore_peer.py:

    .venv-brainscore/bin/python perf/brainscore_layerpca_peer.py REFERENCE.npy TARGET.npy OUT.npz N_COMPONENTS

REFERENCE.npy (n × p) and TARGET.npy (m × p) hold one layer's raw activations, as memprobe's hook saw them,
to the reference images and to the target images. This runs LayerPCA's own code, ``_pcas`` (flatten,
the ``units <= n_components`` pass-through, ``PCA(n_components, random_state=0).fit``) and ``__call__``
(flatten, ``transform``), with its two outside ends replaced: ``_get_imagenet_val``, which would fetch
N_COMPONENTS ImageNet validation images from S3, and the model's activations extractor, which here
returns REFERENCE for those images (so n must equal N_COMPONENTS, as in Brain-Score). Both files are
memory-mapped copy-on-write (scikit-learn wants writable input), so PCA's own copies are the only ones in
memory. Writes ``projected`` (m × k) and ``explained_variance`` (k; empty where the layer passed
through) to OUT.npz and prints the peak resident memory (kB) as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import numpy as np

os.environ["RESULTCACHING_DISABLE"] = "1"  # else LayerPCA's fits are pickled under ~/.result_caching

from brainscore_vision.model_helpers.activations import pca as layer_pca  # noqa: E402

LAYER = "layer"


class RecordedExtractor:
    """Stands in for Brain-Score's activations extractor: returns the recorded reference activations, read
    the two ways LayerPCA reads its extractor's output (``['layer']`` and ``.sel(layer=...).values``)."""

    identifier = "memprobe-recorded-activations"

    def __init__(self, reference: np.ndarray):
        self.reference = reference

    def __call__(self, stimuli_paths, layers):
        assert len(stimuli_paths) == len(self.reference), (len(stimuli_paths), len(self.reference))
        assert list(layers) == [LAYER]
        return self

    def __getitem__(self, coordinate):
        assert coordinate == "layer"
        return np.array([LAYER])

    def sel(self, layer):
        assert layer == LAYER
        return SimpleNamespace(values=self.reference)


def main(reference_path: str, target_path: str, out_path: str, n_components: int) -> None:
    reference = np.load(reference_path, mmap_mode="c")
    target = np.load(target_path, mmap_mode="c")
    layer_pca._get_imagenet_val = lambda num_images: [f"imagenet-{i}" for i in range(num_images)]
    hook = layer_pca.LayerPCA(RecordedExtractor(reference), n_components=n_components)
    hook.handle = SimpleNamespace(disable=lambda: None, enable=lambda: None)
    projected = hook({LAYER: target})[LAYER]
    fitted = hook._layer_pcas[LAYER]
    variance = fitted.explained_variance_ if fitted is not None else np.zeros(0)
    np.savez(out_path, projected=np.asarray(projected), explained_variance=variance)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    print(json.dumps({"peak_rss_kb": int(status["VmHWM"].split()[0])}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
