"""The package's shape: no import cycles between electra_tf modules, no long functions.

Every import of an electra_tf module counts, wherever it is written (module level, inside a
function, under TYPE_CHECKING): an import moved into a function hides a cycle from Python, not
from the next reader.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "electra_tf"


def module_files(root: str) -> dict[str, str]:
    """{dotted module name: path} of every .py file of the package under `root`."""
    out = {}
    for directory, _, files in os.walk(os.path.join(root, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                out[dotted.removesuffix(".__init__")] = path
    return out


def import_graph(root: str) -> dict[str, set[str]]:
    """{module: the package modules it imports}; `from a import b` names module a.b when
    there is one, else a."""
    modules = module_files(root)
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                               else node.module for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first search (empty: the graph is acyclic)."""
    found, done, path = [], set(), []

    def visit(node):
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt in path:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return found


def test_no_import_cycles_between_package_modules():
    graph = import_graph(ROOT)
    assert len(graph) > 30 and graph["electra_tf.finetuning"]  # the package was read
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from electra_tf import b\n")
    (package / "b.py").write_text("def f():\n    from electra_tf.a import x\n")
    (package / "c.py").write_text("import electra_tf.a\n")
    assert cycles(import_graph(str(tmp_path))) == [
        ["electra_tf.a", "electra_tf.b", "electra_tf.a"]]


MAX_FUNCTION_LINES = 80  # a longer function does several things: split it


def long_functions(root: str) -> list[str]:
    """'module:line name (n lines)' for every function of the package over the limit."""
    out = []
    for name, path in module_files(root).items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_in_the_package_is_longer_than_the_limit():
    assert long_functions(ROOT) == []


def test_the_length_check_sees_a_long_function(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (package / "long.py").write_text(f"def f():\n{body}")
    assert long_functions(str(tmp_path)) == [
        f"{PACKAGE}.long:1 f ({MAX_FUNCTION_LINES + 1} lines)"]
