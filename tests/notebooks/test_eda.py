"""The EDA notebook runs top to bottom on the real data, and is committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "1.0-eda.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits the environment: draw inline as Jupyter does, even when an earlier
    # test (or the user's shell) set MPLBACKEND=Agg, which would swallow every figure.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # "python3" is ipykernel's spec in the venv's prefix; jupyter_client starts it with this
    # interpreter (sys.executable), so the kernel sees the installed package.
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # distributions, geography, correlations
    assert "fetch_california_housing (20640, 9)" in outputs[0]["text"]
