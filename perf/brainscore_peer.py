"""Brain-Score's own ``pls`` metric on given features and responses: the peer memprobe is checked against.

Runs inside the Brain-Score side environment (``.venv-brainscore``, made by scripts/setup_test_env.sh),
which pins numpy < 2 and an old xarray, so memprobe never imports it: data come in as files.

    .venv-brainscore/bin/python perf/brainscore_peer.py INPUT.npz [REPEATS]  →  JSON on stdout

INPUT.npz holds ``features`` (stimuli × units), ``responses`` (stimuli × neuroids), ``stimulus_id``,
``neuroid_id`` and optionally ``object_name`` (then the splits are stratified by it, as Brain-Score's
default; otherwise ``stratification_coord=None``). Prints the raw score (mean over splits of the median
over neuroids of Pearson r), the per-split values and the seconds the metric call took (the fastest
of REPEATS calls, default 1).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
from brainscore_vision import load_metric


def assembly(values, stimulus_ids, neuroid_ids, region, object_names=None) -> NeuroidAssembly:
    # each dimension needs at least two coordinates, or Brain-Score's xarray stacking fails
    presentation = {"stimulus_id": ("presentation", stimulus_ids),
                    "image_index": ("presentation", np.arange(len(stimulus_ids)))}
    if object_names is not None:
        presentation["object_name"] = ("presentation", object_names)
    neuroid = {"neuroid_id": ("neuroid", neuroid_ids), "region": ("neuroid", [region] * len(neuroid_ids))}
    return NeuroidAssembly(values, coords={**presentation, **neuroid}, dims=["presentation", "neuroid"])


def main(path: str, repeats: int = 1) -> None:
    data = np.load(path, allow_pickle=False)
    ids = [str(i) for i in data["stimulus_id"]]
    objects = [str(o) for o in data["object_name"]] if "object_name" in data else None
    units = data["features"].shape[1]
    source = assembly(data["features"], ids, [f"unit{i}" for i in range(units)], "model", objects)
    target = assembly(data["responses"], ids, [str(n) for n in data["neuroid_id"]], "brain", objects)
    kwargs = {} if objects is not None else {"crossvalidation_kwargs": {"stratification_coord": None}}
    times = []
    for _ in range(repeats):  # the fastest of `repeats` calls: the first one also pays one-time set-up
        metric = load_metric("pls", **kwargs)
        start = time.perf_counter()
        score = metric(source, target)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    raw = score.attrs["raw"]  # split × neuroid Pearson r
    per_split = raw.median("neuroid").values.tolist()
    print(json.dumps({"raw": float(score.values), "per_split": per_split, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
