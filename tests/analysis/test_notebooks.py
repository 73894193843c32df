"""The figure notebooks execute top to bottom (nbclient): on the committed results, and on tables that let
every figure be drawn."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from analysis_synthetic import zoo_tables
from nbclient import NotebookClient

from memprobe.analysis.tables import load_results

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["figure2.ipynb", "figure3.ipynb", "figure4.ipynb", "figureS1.ipynb", "tableS2.ipynb"]


def execute(name: str) -> list[dict]:
    """Run a notebook in its folder; returns all cell outputs. A failing cell raises CellExecutionError."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def text_of(outputs: list[dict]) -> str:
    return "".join(output.get("text", "") for output in outputs if output["output_type"] == "stream")


def images_in(outputs: list[dict]) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs)


def test_all_figure_notebooks_are_tested():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_committed_study(name, monkeypatch):
    monkeypatch.delenv("MEMPROBE_RESULTS", raising=False)
    outputs = execute(name)
    text = text_of(outputs)
    study = load_results([NOTEBOOKS.parent / "results" / "offline"])
    assert f"../results/offline: {study.describe()}" in text
    # Either it draws, or it says what the committed tables lack.
    assert images_in(outputs) > 0 or "Not drawable from ../results/offline yet." in text


@pytest.mark.slow
def test_notebooks_draw_every_figure_from_complete_tables(tmp_path, monkeypatch):
    scores, finetune, top1 = zoo_tables(n_models=8)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    finetune.to_csv(tmp_path / "finetune.csv", index=False)
    top1.to_csv(tmp_path / "top1.csv", index=False)
    monkeypatch.setenv("MEMPROBE_RESULTS", str(tmp_path))
    monkeypatch.setenv("MEMPROBE_N_BOOT", "200")
    expected_images = {
        "figure2.ipynb": 2,
        "figure3.ipynb": 1,
        "figure4.ipynb": 2,
        "figureS1.ipynb": 1,
        "tableS2.ipynb": 1,
    }
    for name in NAMES:
        outputs = execute(name)
        assert "Not drawable" not in text_of(outputs), name
        assert images_in(outputs) == expected_images[name], name
        tables = [output for output in outputs if "text/html" in output.get("data", {})]
        assert any(
            "rho" in table["data"]["text/html"] or "spearman" in table["data"]["text/html"]
            for table in tables
        )
