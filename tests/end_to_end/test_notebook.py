"""notebooks/walkthrough.ipynb: committed without outputs, and it runs headless in quick mode."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "walkthrough.ipynb"
# Cells whose output must include a figure, found by what they plot.
FIGURES = ("Fine-tuning loss", "plt.subplots(1, len(models)", "Precision-recall")


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow  # the whole pipeline once more (about 2 minutes): make test-slow, and CI
def test_notebook_runs_in_quick_mode(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QQP_TFX_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("QQP_TFX_NOTEBOOK_ROOT", str(tmp_path / "notebook"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # A fresh kernel; any cell error raises CellExecutionError and fails the test.
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    for cell in _code_cells(notebook):
        assert cell.outputs, f"no output from the cell starting {cell.source[:60]!r}"
        assert not [out for out in cell.outputs if out.output_type == "error"]
        if any(marker in cell.source for marker in FIGURES):
            assert any("image/png" in out.get("data", {}) for out in cell.outputs), \
                cell.source[:60]
    assert (tmp_path / "notebook" / "metadata.sqlite").is_file()
