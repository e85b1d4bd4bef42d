"""The package's layout rules (CONTRIBUTING.md): no import circle among the modules' top-level imports, and no core
module importing ``analysis/`` or ``train/``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("brf_plugins", "snntorch_ext", "norse_ext")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set:
    """The package modules ``path`` imports when it is imported: module-level statements (and those nested in
    module-level ``if``/``try``, except ``if TYPE_CHECKING:``), not imports inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)   # "from . import kernels"

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph() -> dict:
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # an import of a.b.c also imports its packages a and a.b
        targets = set()
        for imported in _top_level_imports(path):
            parts = imported.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def test_no_import_circle_among_top_level_imports():
    graph = _graph()
    state, cycles = {}, []

    def walk(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_core_module_imports_analysis_or_train():
    graph = _graph()
    upward = {name: sorted(t for t in targets if t.startswith(("brf_plugins.analysis", "brf_plugins.train")))
              for name, targets in graph.items()
              if name.startswith("brf_plugins") and not name.startswith(("brf_plugins.analysis",
                                                                          "brf_plugins.train"))}
    assert not {k: v for k, v in upward.items() if v}


def test_the_import_graph_is_read_correctly():
    """The checks above can fail: the graph sees the known edges (including "from . import kernels")."""
    graph = _graph()
    assert "brf_plugins.kernels" in graph["brf_plugins.neurons"]
    assert "brf_plugins.functional" in graph["brf_plugins.kernels"]
    assert "brf_plugins.kinds" in graph["brf_plugins.kernels"]
    assert "brf_plugins.neurons" not in graph["brf_plugins.kernels"]
    assert "brf_plugins.network" in graph["snntorch_ext.network"]
