"""`memprobe analyze`: files written, statistics CSV, and clear errors for what a figure lacks."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_synthetic import IT, depth_confounded_table, zoo_tables

from memprobe.cli import main

FAST = ["--n-boot", "200", "--n-perm", "200"]


@pytest.fixture(scope="module")
def zoo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    scores, finetune, top1 = zoo_tables(n_models=8)
    scores.to_csv(folder / "scores.csv", index=False)
    finetune.to_csv(folder / "finetune.csv", index=False)
    top1.to_csv(folder / "imagenet_top1.csv", index=False)
    return folder


def test_analyze_all_writes_every_figure_and_the_statistics(zoo_folder, tmp_path, capsys):
    assert main(["analyze", str(zoo_folder), "--out", str(tmp_path), *FAST]) == 0
    written = {path.name for path in tmp_path.iterdir()}
    for stem in (
        "figure2_memorability_vs_brain",
        "figure2_layer_profile",
        "figure3_finetuned_vs_it",
        "figure4a_top1_vs_it_penultimate",
        "figure4b_top1_vs_it_best",
        "figureS1_top1_vs_finetuned",
        "tableS2",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= written
    statistics = pd.read_csv(tmp_path / "statistics.csv", dtype={"figure": str})
    assert statistics["figure"].tolist() == ["2", "3", "4A", "4B", "S1"]
    assert statistics["paper_rho"].tolist() == [0.82, 0.56, -0.39, 0.57, 0.46]
    assert (statistics["ci_low"] <= statistics["rho"]).all() and (
        statistics["rho"] <= statistics["ci_high"]
    ).all()
    assert "paper_rho" in capsys.readouterr().out
    # Redrawing one figure replaces its rows and keeps the others.
    assert (
        main(["analyze", str(zoo_folder), "--figure", "3", "--out", str(tmp_path), "--seed", "1", *FAST]) == 0
    )
    again = pd.read_csv(tmp_path / "statistics.csv", dtype={"figure": str})
    assert again["figure"].tolist() == ["2", "3", "4A", "4B", "S1"]
    assert again.loc[1, "seed"] == 1 and again.loc[0, "seed"] == 0


def test_analyze_all_skips_what_the_tables_cannot_support(tmp_path, capsys):
    depth_confounded_table(n_models=3, n_layers=20).to_csv(tmp_path / "scores.csv", index=False)
    assert main(["analyze", str(tmp_path / "scores.csv"), "--out", str(tmp_path / "out"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "skipped Figure 3: Figure 3 needs a fine-tune table" in out
    statistics = pd.read_csv(tmp_path / "out" / "statistics.csv")
    assert set(statistics["y"]) == {"FreemanZiemba2013public.V1-pls", IT, "rsa92.IT-monkey-rsa"}


def test_analyze_errors_name_what_is_missing(zoo_folder, tmp_path, capsys):
    scores_only = str(zoo_folder / "scores.csv")
    assert main(["analyze", scores_only, "--figure", "3", "--out", str(tmp_path), *FAST]) == 1
    assert (
        "Figure 3 needs a fine-tune table (CSV with columns model, fold, spearman" in capsys.readouterr().err
    )
    assert main(["analyze", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 1
    assert "nowhere does not exist" in capsys.readouterr().err
    assert main(["analyze", scores_only, "--figure", "2", "--memorability", "lnsim.memorability-pls"]) == 1
    assert "needs benchmark(s) lnsim.memorability-pls" in capsys.readouterr().err
    assert main(["analyze", scores_only, "--region", "V4", "--out", str(tmp_path)]) == 1
    assert "--region expects BENCHMARK=REGION" in capsys.readouterr().err
    folds = str(zoo_folder / "finetune.csv")
    assert main(["analyze", scores_only, "--top1", folds, "--figure", "4", "--out", str(tmp_path)]) == 1
    assert "has no columns model, top1" in capsys.readouterr().err


def test_analyze_can_leave_models_out(zoo_folder, tmp_path, capsys):
    assert main(["analyze", str(zoo_folder), "--figure", "S1", "--exclude", "toy:zoo[0-2]",
                 "--out", str(tmp_path), *FAST]) == 0
    assert "without toy:zoo[0-2]" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "statistics.csv")["n"].tolist() == [5]  # 8 models, 3 left out
    assert main(["analyze", str(zoo_folder), "--exclude", "resmem:*", "--out", str(tmp_path), *FAST]) == 1
    assert "resmem:* matches none of the models (toy:zoo0, toy:zoo1" in capsys.readouterr().err
