"""No import runs up a floor, and no file loop: the package's import graph, read from its own
source, matches the layer drawing in DEVELOPERS.md ("Layers"), so the drawing cannot drift.

Every `import` counts, at module level, inside functions (a lazy import still couples two
files) and under `if TYPE_CHECKING:` (an import for typing never runs, but it still ties the
two files: the lower one cannot be read, typed or moved without the upper one). An import
of a package means its `__init__.py`; `from package import name` means the submodule
`package.name` when there is one, else the package's `__init__.py`. The parent packages
Python imports on the way are not counted: they are the same edge for every file and say
nothing about layering.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "spark_lakeversion"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: the floors of DEVELOPERS.md's drawing, lowest first: (floor name, module prefixes). A
#: module's floor is the one whose longest prefix matches its dotted name (package-relative);
#: a module may import modules of its own floor and of floors below, never above.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("ground", ("errors",)),
    ("model", ("model",)),
    ("shared rules", ("auth", "limits", "locations", "fileio", "filecache")),
    ("store", ("store",)),
    ("row algorithms", ("rows",)),
    ("format interfaces", ("tableformat",)),
    ("versioning", ("versioning",)),
    ("gc", ("gc",)),
    ("formats", ("formats",)),
    ("checks", ("checks",)),
    ("composition root", ("wiring",)),
    ("server", ("server", "server.ui")),  # server.ui: the web UI, a surface on this floor
    # api: the package of the Python handles (catalog, reference, named, transaction)
    ("surfaces", ("__init__", "api", "runs", "delta", "cli", "spark", "bench", "preflight")),
    ("airflow", ("airflow",)),
]


def module_name(path: Path) -> str:
    """`versioning/gates/gate.py` -> `versioning.gates.gate`; a package's `__init__.py` is
    the package (`versioning`); the root `__init__.py` is `__init__`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def floor_of(module: str) -> int:
    best, best_len = -1, -1
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = number, len(prefix)
    assert best >= 0, f"{module} is on no floor: add it to FLOORS (and DEVELOPERS.md)"
    return best


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, anywhere, `if TYPE_CHECKING:` bodies included."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _relative_base(module: str, path: Path, level: int) -> str:
    parts = module.split(".") if module != "__init__" else []
    if path.name != "__init__.py":
        parts = parts[:-1]
    return ".".join(parts[:len(parts) - (level - 1)] if level > 1 else parts)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The package modules `module` imports, each with the line of its first import."""
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        target = target or "__init__"
        if target in known and target != module:
            found.setdefault(target, line)

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name[len(PACKAGE) + 1:], node.lineno)
            continue
        if node.level:
            base = _relative_base(module, path, node.level)
            target = ".".join(p for p in (base, node.module or "") if p)
        elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
            target = (node.module or "")[len(PACKAGE) + 1:]
        else:
            continue
        for alias in node.names:  # `from pkg import sub` imports the module pkg.sub only
            sub = f"{target}.{alias.name}" if target else alias.name
            add(sub if sub in known else target, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one
    loop through it, so a failure names the files and their order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(_loop(graph, set(component)))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def _loop(graph: dict[str, dict[str, int]], members: set[str]) -> list[str]:
    """One loop inside a strongly connected component: a shortest path back to its start."""
    start = min(members)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return sorted(members)


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        mine = floor_of(module)
        for target, line in sorted(targets.items()):
            theirs = floor_of(target)
            if theirs > mine:
                out.append(f"{module} (line {line}, {FLOORS[mine][0]}) imports {target} "
                           f"({FLOORS[theirs][0]})")
    return out


def test_every_module_is_on_a_floor() -> None:
    for name in modules():
        floor_of(name)


def test_the_graph_reads_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    graph = import_graph()
    assert "api" in graph["__init__"]  # module level
    assert "server.embedded" in graph["spark"]  # inside a function of spark/__init__.py
    # `from spark_lakeversion.versioning.gates.policy import X` is the submodule only
    assert "versioning.gates.policy" in graph["versioning"]
    assert "versioning.gates" not in graph["versioning"]
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from spark_lakeversion.api import Catalog\n"
                      "else:\n    import spark_lakeversion.errors\n"
                      "def later():\n    from spark_lakeversion import locations\n")
    assert imports_of("sample", sample, modules()) == {"api": 3, "errors": 5, "locations": 7}


def test_no_import_loop() -> None:
    loops = cycles(import_graph())
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(loop) for loop in loops)


def test_no_import_runs_up_a_floor() -> None:
    upward = upward_imports(import_graph())
    assert not upward, "imports that run up a floor (DEVELOPERS.md, Layers):\n" + \
        "\n".join(upward)
