"""Figure functions and the paper figures: files written, numbers equal to direct computations."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_synthetic import IT, MEMORABILITY, V4, one_model_table, zoo_tables
from scipy import stats

from memprobe.analysis import layer_profile, memorability_vs_brain
from memprobe.analysis.paper import Options, figure3, figure4, figure_s1, table_s2
from memprobe.analysis.tables import Results
from memprobe.errors import DataError


def assert_png_and_pdf(stem):
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000


@pytest.fixture(scope="module")
def zoo():
    scores, finetune, top1 = zoo_tables(n_models=12)
    return Results(scores=scores, finetune=finetune, top1=top1.set_index("model")["top1"])


def test_probe_figures_write_png_and_pdf(tmp_path):
    table = one_model_table(n_layers=40)
    figure = layer_profile(table, out=tmp_path / "profile")
    assert {line.get_label() for line in figure.axes[0].get_legend().get_lines()} >= {f"{IT} (IT)"}
    assert_png_and_pdf(tmp_path / "profile")
    figure = memorability_vs_brain(
        table, MEMORABILITY, [V4, IT], n_boot=200, n_perm=200, out=tmp_path / "scatter"
    )
    titles = [axis.get_title() for axis in figure.axes[:2]]
    assert titles[1].startswith(f"{IT} (IT), 40 layers\nρ = ") and "paper (IT): ρ = 0.82" in titles[1]
    assert_png_and_pdf(tmp_path / "scatter")


def test_figure3_correlates_penultimate_it_with_finetuned_accuracy(zoo, tmp_path):
    result = figure3(zoo, tmp_path, Options(n_boot=300, n_perm=300))
    penultimate = zoo.scores[(zoo.scores["layer"] == "layer10") & (zoo.scores["benchmark"] == IT)]
    it = penultimate.set_index("model")["ceiled"]
    finetuned = zoo.finetune.groupby("model")["spearman"].mean()
    row = result.statistics.iloc[0]
    assert row["rho"] == pytest.approx(stats.spearmanr(it, finetuned.loc[it.index]).statistic)
    assert row["paper_rho"] == 0.56 and row["n"] == 12
    assert_png_and_pdf(tmp_path / "figure3_finetuned_vs_it")


def test_figure4_and_s1_against_scipy(zoo, tmp_path):
    result = figure4(zoo, tmp_path, Options(n_boot=300, n_perm=300)).statistics.set_index("figure")
    it = zoo.scores[zoo.scores["benchmark"] == IT]
    best = it.groupby("model")["ceiled"].max()
    assert result.loc["4B", "rho"] == pytest.approx(stats.spearmanr(zoo.top1.loc[best.index], best).statistic)
    assert result.loc["4A", "rho"] < -0.9  # by construction top-1 falls as penultimate IT similarity rises
    assert result.loc["4A", "paper_rho"] == -0.39 and result.loc["4B", "paper_rho"] == 0.57
    s1 = figure_s1(zoo, tmp_path, Options(n_boot=300, n_perm=300)).statistics.iloc[0]
    assert s1["rho"] < -0.9 and s1["paper_rho"] == 0.46
    for stem in ("figure4a_top1_vs_it_penultimate", "figure4b_top1_vs_it_best", "figureS1_top1_vs_finetuned"):
        assert_png_and_pdf(tmp_path / stem)


def test_table_s2_lists_ours_beside_published(zoo, tmp_path):
    table = table_s2(zoo, tmp_path).statistics
    published = table[table["source"].str.startswith("published")].set_index("model")["spearman"]
    assert published["AMNet"] == 0.677 and published["MemNet"] == 0.64 and len(published) == 7
    assert table["spearman"].is_monotonic_decreasing
    assert (table["source"] == "memprobe fine-tuned").sum() == 12
    written = pd.read_csv(tmp_path / "tableS2.csv")
    assert len(written) == 19
    assert_png_and_pdf(tmp_path / "tableS2")


def test_missing_inputs_say_what_is_needed(zoo):
    with pytest.raises(DataError, match=r"Figure 3 needs a fine-tune table \(CSV with columns model, fold"):
        figure3(Results(scores=zoo.scores), None)
    with pytest.raises(DataError, match="Figure 4 needs ImageNet top-1 per model"):
        figure4(Results(scores=zoo.scores), None)
    few = Results(scores=zoo.scores, top1=zoo.top1.head(3))
    with pytest.raises(DataError, match="at least 4 models; 3 model"):
        figure4(few, None)
