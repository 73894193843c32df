"""Reading and shaping result tables: region rule, penultimate layer, table kinds, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import IT, MEMORABILITY, score_rows, zoo_tables

from memprobe.analysis.regions import benchmark_region, parse_overrides
from memprobe.analysis.tables import layer_matrix, load_results, penultimate_layers, score_values
from memprobe.errors import DataError


@pytest.mark.parametrize(
    ("identifier", "region"),
    [
        ("cowley_v4.V4-pls", "V4"),
        ("MajajHong2015public.IT-pls", "IT"),
        ("MajajHong2015public.V4-pls", "V4"),
        ("FreemanZiemba2013public.V1-pls", "V1"),
        ("FreemanZiemba2013public.V2-pls", "V2"),
        ("rsa92.IT-monkey-rsa", "IT (RSA)"),
        ("rsa92.IT-human-rsa", "human IT (RSA)"),
        ("lnsim.memorability-pls", "memorability"),
        ("lamem.memorability-pls", "memorability"),
        ("imagenet.top1", None),
        ("cowley_v4.pls", None),  # the data-set prefix alone does not name the region
    ],
)
def test_benchmark_region_rule(identifier, region):
    assert benchmark_region(identifier) == region


def test_region_overrides():
    overrides = parse_overrides(["cowley_v4.pls=V4"])
    assert benchmark_region("cowley_v4.pls", overrides) == "V4"
    with pytest.raises(ValueError, match="BENCHMARK=REGION"):
        parse_overrides(["V4"])


def test_penultimate_layer_is_the_classifier_input():
    depth = np.linspace(0, 1, 6)
    with_classifier = score_rows("a", depth, {IT: np.arange(6.0)}, units=[9000, 9000, 9000, 2048, 1000, 1000])
    without = score_rows("b", depth, {IT: np.arange(6.0)}, units=[9000, 9000, 9000, 9000, 4096, 2048])
    background = score_rows("c", depth, {IT: np.arange(6.0)}, units=[9000, 9000, 9000, 9000, 1280, 1001])
    layers = penultimate_layers(pd.concat([with_classifier, without, background]))
    assert layers["a"] == "layer3"  # before fc and its softmax (both 1000 wide)
    assert layers["b"] == "layer5"  # swept without its classifier
    assert layers["c"] == "layer4"  # a TFLite MobileNet's logits have a background class first
    assert penultimate_layers(with_classifier, {"a": "layer2"})["a"] == "layer2"
    with pytest.raises(DataError, match="not in the score table"):
        penultimate_layers(with_classifier, {"a": "fc"})


def test_score_values_auto_uses_raw_for_memorability_and_ceiled_for_brain():
    rows = score_rows("a", np.linspace(0, 1, 3), {MEMORABILITY: [0.1, 0.2, 0.3], IT: [0.4, 0.4, 0.8]})
    values = score_values(rows).to_numpy()
    assert values[:3] == pytest.approx([0.1, 0.2, 0.3])
    assert values[3:] == pytest.approx([0.5, 0.5, 1.0])  # raw / 0.8
    wide = layer_matrix(rows, [MEMORABILITY, IT])
    assert list(wide.columns) == ["model", "layer", "relative_depth", MEMORABILITY, IT]
    assert len(wide) == 3


def test_load_results_sorts_tables_by_columns(tmp_path):
    scores, finetune, top1 = zoo_tables(n_models=4)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    scores.assign(split=0).to_csv(tmp_path / "scores_per_split.csv", index=False)
    (tmp_path / "ft").mkdir()
    summary_rows = pd.DataFrame({"model": "toy:zoo0", "fold": ["mean", "overall"], "spearman": 0.9})
    pd.concat([finetune, summary_rows]).to_csv(tmp_path / "ft" / "folds.csv", index=False)
    top1.to_csv(tmp_path / "top1.csv", index=False)
    pd.DataFrame({"unrelated": [1]}).to_csv(tmp_path / "notes.csv", index=False)
    results = load_results([tmp_path])
    assert len(results.scores) == len(scores)  # the per-split table is not mixed in
    assert results.finetune["model"].nunique() == 4
    assert len(results.finetune) == len(finetune)  # the folds only, without the summary rows
    assert results.top1.index.tolist() == top1["model"].tolist()
    assert results.sources["finetune"] == [str(tmp_path / "ft" / "folds.csv")]


def test_bad_tables_are_reported_with_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_results([tmp_path / "missing.csv"])
    scores, _, _ = zoo_tables(n_models=2)
    path = tmp_path / "scores.csv"
    pd.concat([scores, scores.head(1)]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"scores\.csv repeats score rows \(model=toy:zoo0, layer=layer0"):
        load_results([path])
    (tmp_path / "again").mkdir()
    scores.to_csv(path, index=False)
    scores.to_csv(tmp_path / "again" / "scores.csv", index=False)
    with pytest.raises(DataError, match=r"appear in .*again/scores\.csv and .*scores\.csv: separate runs"):
        load_results([tmp_path])


def test_a_run_folder_is_read_through_its_collected_table_not_its_tasks(tmp_path):
    rows = score_rows("a", np.linspace(0, 1, 3), {IT: [0.1, 0.2, 0.3]})
    run = tmp_path / "results" / "offline"
    task = run / "tasks" / "sweep" / "a" / "v4"
    (task / "work" / "a").mkdir(parents=True)
    for table in (task / "scores.csv", task / "work" / "a" / "scores.csv", run / "sweep_scores.csv"):
        rows.to_csv(table, index=False)
    with pytest.raises(DataError, match="separate runs of the same model"):
        load_results([tmp_path])  # without run.yaml these are three runs
    (run / "run.yaml").write_text("name: offline\n")
    assert load_results([tmp_path]).sources["scores"] == [str(run / "sweep_scores.csv")]
    assert load_results([task / "scores.csv"]).sources["scores"] == [str(task / "scores.csv")]
