"""Every committed notebook is clean: no outputs or execution counts, a python3 kernelspec, and (tutorials) a first
code cell tagged ``parameters`` for papermill. Dashboards live in notebooks/dashboards and need no parameters."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(NOTEBOOKS.rglob("*.ipynb"))
ALL = [p for p in ALL if ".ipynb_checkpoints" not in p.parts]
TUTORIALS = [p for p in ALL if p.parent == NOTEBOOKS]


def _id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


def test_there_are_notebooks_and_dashboards():
    assert TUTORIALS, "no tutorial notebooks found"
    assert (NOTEBOOKS / "dashboards" / "index.ipynb").exists(), "the dashboard gallery index.ipynb is missing"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_notebook_is_committed_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "metadata.kernelspec must name python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count: clear it before committing"


@pytest.mark.parametrize("path", TUTORIALS, ids=_id)
def test_tutorial_first_code_cell_holds_the_parameters(path: Path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assert "SMOKE" in first.source and "DEVICE" in first.source, "the parameters cell must define SMOKE and DEVICE"
