"""The layering and size rules of the house (DESIGN.md): compute never imports views, Jupyter or the benchmarks;
modules and functions stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("ipywidgets", "IPython", "plotly", "ipykernel", "jupyter_client", "voila", "widgets", "benchmarks",
             "captum", "lime", "quantus", "ray")


def _sources(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def test_importing_every_workbench_package_pulls_in_no_view_jupyter_or_optional_module():
    code = ("import sys, workbench, workbench.relabel, workbench.whitening, workbench.stdt, workbench.horkd, "
            "workbench.tracking, workbench.evaluation, workbench.batch, workbench.explainers, workbench.data, "
            "workbench.distributed, workbench.__main__\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_the_library_never_imports_widgets_or_benchmarks():
    offenders = []
    for path in _sources("workbench"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            layers = [n for n in names if n.split(".")[0] in ("widgets", "benchmarks")]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in layers]
    assert not offenders


@pytest.mark.parametrize("root", ["workbench", "widgets"])
def test_no_long_functions(root):
    long = [f"{p.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p in _sources(root) for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno + 1 > 80]
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_no_long_library_modules():
    long = [f"{p.relative_to(REPO)} ({p.read_text().count(chr(10))} lines)" for p in _sources("workbench")
            if p.read_text().count("\n") > 400]
    assert not long, "modules over 400 lines: " + "; ".join(long)
