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


@pytest.mark.parametrize("root", ["workbench", "widgets"])
def test_no_long_modules(root):
    long = [f"{p.relative_to(REPO)} ({p.read_text().count(chr(10))} lines)" for p in _sources(root)
            if p.read_text().count("\n") > 400]
    assert not long, "modules over 400 lines: " + "; ".join(long)


#: attributes that hold a network in the views; a view that calls one (or its encoder / decoder) computes
MODEL_ATTRS = {"model", "models", "classifier", "vae", "teacher", "student", "detector", "net", "tracker"}
MODEL_METHODS = {"encode", "decode", "forward"}


def model_calls(tree: ast.AST) -> list[str]:
    """Calls of a network held by ``self``: ``self.model(x)``, ``self.vae.encode(x)``, ``self.model.forward(x)``
    (what a view must leave to the library: ``workbench`` computes, ``widgets`` draws)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        held = func.value if func.attr in MODEL_METHODS else func
        if (isinstance(held, ast.Attribute) and held.attr in MODEL_ATTRS and isinstance(held.value, ast.Name)
                and held.value.id == "self" and (held is not func or func.attr in MODEL_ATTRS)):
            found.append(f"{node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_no_view_calls_a_model():
    calls = [f"{p.relative_to(REPO)}:{c}" for p in _sources("widgets") for c in model_calls(ast.parse(p.read_text()))]
    assert not calls, "views that run a network themselves (move it to workbench): " + "; ".join(calls)


def test_the_model_call_rule_sees_a_planted_call():
    planted = ast.parse("class V:\n    def f(self, x):\n        self.vae.decode(x)\n        return self.model(x)\n"
                        "    def g(self, s):\n        return s.encode('utf-8'), self.label.encode('utf-8')\n")
    assert [c.split(": ")[1] for c in model_calls(planted)] == ["self.vae.decode(...)", "self.model(...)"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The workbench/widgets modules ``name`` imports anywhere (module or function level, relative imports resolved;
    ``if TYPE_CHECKING:`` blocks never run, so they are left out)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for stmt in block.body
               for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in _sources("workbench", "widgets")}
    return {name: _imported(name, path, set(paths)) for name, path in paths.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_no_import_circle_in_workbench_or_widgets():
    cycle = _find_cycle(_import_graph())
    assert not cycle, "import circle: " + " -> ".join(cycle)


def test_the_import_graph_sees_a_planted_circle():
    graph = _import_graph()
    graph["workbench.runtime"] = graph["workbench.runtime"] | {"workbench.train"}
    assert "workbench.runtime" in _find_cycle(graph)


def test_the_runtime_floor_imports_nothing_of_the_workbench():
    assert _import_graph()["workbench.runtime"] == set()


def test_relabel_distillation_takes_one_config_not_a_flag_per_setting():
    """RLD's settings live in one frozen ``RelabelConfig`` of strategies; the constructor stays short (issue 25)."""
    import inspect

    from workbench.relabel import RelabelDistillation

    params = inspect.signature(RelabelDistillation.__init__).parameters
    assert len(params) <= 8, f"RelabelDistillation.__init__ takes {len(params)} parameters: {list(params)}"
