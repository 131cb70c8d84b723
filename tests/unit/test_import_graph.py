"""The package's layers point down only: built from the code's own imports with `ast`, the graph of sagejax modules
has no cycle, no library module imports a command (sagejax.tools, sagejax.main, sagejax.cli), and the primitives
under sagejax/train import no method, evaluator or trainer."""

import ast
import functools
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parents[2] / "sagejax"
COMMANDS = ("sagejax.tools", "sagejax.main", "sagejax.cli")
# Layers, lowest first: a module may import its own layer and those below, never one above.
LAYERS = [
    ("sagejax.errors", "sagejax.storage"),
    ("sagejax.losses", "sagejax.models", "sagejax.augment", "sagejax.report"),
    ("sagejax.data",),
    ("sagejax.train",),
    ("sagejax.methods",),
    ("sagejax.evaluate",),
    ("sagejax.trainer", "sagejax.labeling"),
    ("sagejax.runs", "sagejax.api", "sagejax.configs", "sagejax.benchmarking", "sagejax.panel_columns"),
    ("sagejax.comparisons", "sagejax.sweeps", "sagejax.loao_protocol", "sagejax.robustness_tables"),
    ("sagejax.pad_benchmark",),
    ("sagejax.retrieval_tables", "sagejax.student_comparisons"),
    COMMANDS,
]


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _resolve(name: str, modules) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """{module: the sagejax modules it imports} (imports inside functions count too)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parents + ([base] if base else []))
                # `from a import b` imports a.b when b is a module, else only a
                targets.update(
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                )
        graph[name] = {
            resolved
            for target in targets
            if target.split(".")[0] == "sagejax" and (resolved := _resolve(target, modules)) not in (None, name)
        }
    return graph


def _layer(name: str) -> int:
    if name == "sagejax":  # the package root re-exports the API
        return _layer("sagejax.api")
    for level, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{name} is in no layer of this test; add it to LAYERS")


def _cycle(graph) -> list[str] | None:
    """One import cycle of `graph` (package __init__ re-exports of their own submodules aside), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if node.startswith(child + "."):  # a submodule importing its own package's __init__
                continue
            if state.get(child) == "open":
                return stack[stack.index(child) :] + [child]
            if child not in state and (found := visit(child)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_is_found():
    graph = import_graph()
    assert "sagejax.trainer" in graph["sagejax.main"] and "sagejax.losses" in graph["sagejax.methods.sage"]
    assert len(graph) > 60


def test_no_import_cycle():
    assert _cycle(import_graph()) is None


def test_a_cycle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_imports_point_down(module):
    upward = sorted(t for t in import_graph()[module] if _layer(t) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward} from a layer above"
