"""Activation store: keys, atomic finalisation, resume after a failure or a SIGKILL at any point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from extract_fixtures import CountingNet, image_set, tiny_model

import memprobe.features.store
from memprobe.features import extract, store_key
from memprobe.features.reducers import get_reducer
from memprobe.features.store import ActivationStore

LAYERS = ["conv", "relu@1", "conv2"]
SUPPORT = Path(__file__).resolve().parents[1] / "support"


class FailingNet(CountingNet):
    """Raises on the ``fail_at``-th forward call (counting the layer-listing dummy pass)."""

    def __init__(self, fail_at: int | None):
        super().__init__()
        self.fail_at = fail_at

    def forward(self, x):
        if self.fail_at is not None and self.forward_calls + 1 == self.fail_at:
            self.forward_calls += 1
            raise RuntimeError("injected failure")
        return super().forward(x)


def _run(model, stimuli, store, layers=LAYERS, **options):
    return extract(
        model, stimuli, layers, "srp", store, batch_size=3, num_workers=0, progress=False, **options
    )


def _reference(tmp_path, stimuli):
    return {
        k: v.values.copy() for k, v in _run(tiny_model(), stimuli, ActivationStore(tmp_path / "ref")).items()
    }


def test_failure_after_some_batches_resumes_without_recomputing_them(tmp_path):
    """The default store commits progress every 30 s, and on the way out of an error."""
    stimuli = image_set(tmp_path / "images", 11)  # 4 batches of 3, the last one short
    reference = _reference(tmp_path, stimuli)
    network = FailingNet(fail_at=4)  # dummy pass, batches 0 and 1, then batch 2 fails
    store = ActivationStore(tmp_path / "s")
    with pytest.raises(RuntimeError, match="injected"):
        _run(tiny_model(network), stimuli, store)
    key = store_key(tiny_model(), stimuli, get_reducer("srp"))
    progress = json.loads((store.directory(key) / "progress.json").read_text())
    assert all(sorted(entry["done"]) == [0, 1] for entry in progress["layers"].values())
    assert not any(store.has(key, layer) for layer in LAYERS)  # nothing final before all batches are done
    network.fail_at, network.forward_calls = None, 0
    resumed = _run(tiny_model(network), stimuli, store)
    assert network.forward_calls == 1 + 2  # the dummy pass and batches 2 and 3 only
    for layer in LAYERS:
        np.testing.assert_array_equal(resumed[layer].values, reference[layer])
        assert store.has(key, layer) and not store.layer_path(key, layer, partial=True).exists()


def test_rows_written_but_not_recorded_are_redone(tmp_path, monkeypatch):
    """A kill between writing a batch's rows and recording it: the batch is simply recomputed."""
    stimuli = image_set(tmp_path / "images", 9)
    reference = _reference(tmp_path, stimuli)
    store = ActivationStore(tmp_path / "s", commit_interval_s=0)  # record every batch
    real_write = memprobe.features.store.write_json
    recorded = []

    def dies_on_second_progress_record(path, payload, **options):
        if path.name == "progress.json":
            recorded.append(path)
            if len(recorded) >= 2:  # the process is dead from here on: nothing more gets recorded
                raise KeyboardInterrupt("killed before the progress record of batch 1")
        real_write(path, payload, **options)

    monkeypatch.setattr(memprobe.features.store, "write_json", dies_on_second_progress_record)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_model(), stimuli, store)
    monkeypatch.setattr(memprobe.features.store, "write_json", real_write)
    network = CountingNet()
    resumed = _run(tiny_model(network), stimuli, store)
    assert network.forward_calls == 1 + 2  # batch 0 was recorded; batches 1 and 2 are recomputed
    for layer in LAYERS:
        np.testing.assert_array_equal(resumed[layer].values, reference[layer])


def test_sigkill_mid_run_then_rerun_gives_identical_arrays(tmp_path):
    stimuli = image_set(tmp_path / "images", 30)
    reference = _reference(tmp_path, stimuli)
    store_root = tmp_path / "s"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(SUPPORT)!r})
        from extract_fixtures import CountingNet, image_set, tiny_model
        from memprobe.features import extract
        from memprobe.features.store import ActivationStore

        class SlowNet(CountingNet):
            def forward(self, x):
                time.sleep(0.15)
                return super().forward(x)

        stimuli = image_set(Path({str(tmp_path / "images")!r}), 30)
        store = ActivationStore({str(store_root)!r}, commit_interval_s=0)
        extract(tiny_model(SlowNet()), stimuli, {LAYERS!r}, "srp", store, batch_size=3, num_workers=0,
                progress=False)
    """)
    key = store_key(tiny_model(), stimuli, get_reducer("srp"))
    progress_path = ActivationStore(store_root).directory(key) / "progress.json"
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while time.time() < deadline:
        if (
            progress_path.is_file()
            and len(json.loads(progress_path.read_text())["layers"]["conv"]["done"]) >= 3
        ):
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done = len(json.loads(progress_path.read_text())["layers"]["conv"]["done"])
    assert 3 <= done < 10, "the child should have been killed mid-run"
    network = CountingNet()
    resumed = _run(tiny_model(network), stimuli, ActivationStore(store_root))
    assert network.forward_calls == 1 + (10 - done)
    for layer in LAYERS:
        np.testing.assert_array_equal(resumed[layer].values, reference[layer])


def test_key_separates_everything_that_changes_the_numbers(tmp_path):
    stimuli = image_set(tmp_path / "images", 4)
    base = store_key(tiny_model(), stimuli, get_reducer("srp"))
    variants = [
        store_key(tiny_model(id="test:other"), stimuli, get_reducer("srp")),
        store_key(tiny_model(weights_id="pretrained-abc"), stimuli, get_reducer("srp")),
        store_key(tiny_model(), stimuli.subset(ids=stimuli.ids[:3]), get_reducer("srp")),
        store_key(tiny_model(), stimuli, get_reducer("srp", dim=128)),
        store_key(tiny_model(), stimuli, get_reducer("srp", seed=1)),
        store_key(tiny_model(), stimuli, get_reducer("pool")),
    ]
    digests = {base.digest(), *(variant.digest() for variant in variants)}
    assert len(digests) == 1 + len(variants)


def test_a_second_run_with_more_layers_only_computes_the_new_ones(tmp_path):
    stimuli = image_set(tmp_path / "images", 6)
    store = ActivationStore(tmp_path / "s")
    first = _run(tiny_model(), stimuli, store, layers=["conv"])
    before = os.stat(store.layer_path(first.key, "conv")).st_mtime_ns
    network = CountingNet()
    both = _run(tiny_model(network), stimuli, store, layers=["conv", "conv2"])
    assert network.forward_calls == 1 + 2
    assert os.stat(store.layer_path(first.key, "conv")).st_mtime_ns == before
    assert both["conv2"].shape == (6, 4096)
