"""benchbox's modules import one way: no cycle between them, imports inside functions included.

The graph is read from the source with ``ast``, not by importing anything. Its nodes are
benchbox's modules; a package's ``__init__.py`` is a node of its own, named after the package
(``benchbox.sweep``). Every ``import`` and ``from ... import`` statement counts, wherever it
stands (module level, inside a function, under ``if TYPE_CHECKING``). An edge goes to the most
specific benchbox module the statement names, and to each package above it:

- ``import benchbox.a.b`` and ``from benchbox.a.b import c`` (c not a module) give edges to
  ``benchbox.a.b`` and to the package ``benchbox.a``, because Python runs ``benchbox/a/__init__.py``
  before ``benchbox.a.b``: a package ``__init__`` that imports a module which imports back into
  the package is a cycle at run time, whichever submodule the statement names;
- ``from benchbox.a import b`` gives edges to ``benchbox.a.b`` when ``b`` is a module, and to
  ``benchbox.a``;
- relative imports are resolved against the importing module's package first.

The implicit edge to a module's own enclosing package is not counted (``benchbox.sweep.runner``
importing ``benchbox.sweep.plan`` gives only the edge to ``benchbox.sweep.plan``): that package
is already being imported when the module runs, so a package ``__init__`` may re-export its
submodules. An explicit ``from benchbox.sweep import name`` (name not a module) does count: it
reads the ``__init__`` itself. The root package ``benchbox`` encloses every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import benchbox

ROOT = Path(benchbox.__file__).resolve().parent


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Map every benchbox module's dotted name to its file."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("benchbox",) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(base: str, names: dict[str, Path]) -> str | None:
    """The longest prefix of ``base`` that is a benchbox module."""
    parts = base.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in names:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, names: dict[str, Path]) -> set[str]:
    """The benchbox modules that ``module`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "benchbox" or alias.name.startswith("benchbox."):
                    target = _resolve(alias.name, names)
                    if target is not None:
                        targets.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(module, path).split(".")
                keep = len(package) - (node.level - 1)
                base = ".".join(package[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != "benchbox" and not base.startswith("benchbox."):
                continue
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", names)
                if target is not None:
                    targets.add(target)
    enclosing = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    implicit = {p for p in _packages_above(targets) if p not in enclosing}
    return (targets | implicit) - {module}


def _packages_above(targets: set[str]) -> set[str]:
    """The packages whose ``__init__`` runs before each target module."""
    return {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 1)}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Every benchbox module mapped to the benchbox modules it imports."""
    names = module_names(root)
    return {module: imports_of(module, path, names) for module, path in names.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        # iterative Tarjan: (node, iterator over its successors)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "benchbox"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from benchbox.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "sub" / "b.py").write_text("import benchbox.a\nfrom . import c\nthing = 1\n")
    (pkg / "sub" / "c.py").write_text("")
    graph = import_graph(pkg)
    assert graph["benchbox.a"] == {"benchbox.sub", "benchbox.sub.b"}
    assert graph["benchbox.sub"] == {"benchbox.sub.b"}
    assert graph["benchbox.sub.b"] == {"benchbox.a", "benchbox.sub.c"}
    assert find_cycles(graph) == [["benchbox.a", "benchbox.sub", "benchbox.sub.b"]]


def test_a_package_init_is_a_node_that_a_submodule_import_runs_first(tmp_path):
    pkg = tmp_path / "benchbox"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from benchbox.low.spec import x\n")
    (pkg / "low" / "__init__.py").write_text("from benchbox.low.spec import x\n")
    (pkg / "low" / "spec.py").write_text("x = 1\n")
    (pkg / "low" / "top.py").write_text("import benchbox.high\n")
    assert find_cycles(import_graph(pkg)) == []
    (pkg / "low" / "__init__.py").write_text("from benchbox.low import spec, top\n")
    assert find_cycles(import_graph(pkg)) == [["benchbox.high", "benchbox.low", "benchbox.low.top"]]


def test_no_import_cycle_between_benchbox_modules():
    graph = import_graph()
    assert "benchbox.schema" in graph and len(graph) > 30
    assert "benchbox.commands" in graph["benchbox.cli"]  # imported inside main()
    assert {"benchbox.devices", "benchbox.devices.nvml"} <= graph["benchbox.measure.power"]
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles between benchbox modules: " + "; ".join(
        " <-> ".join(component) for component in cycles
    )


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between top-level rooms: ``benchbox.sweep.runner`` belongs to
    ``benchbox.sweep``, ``benchbox.verdict`` is a room of one file, and the root package is none."""

    def room(module: str) -> str | None:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else None

    rooms: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = room(module)
        if source is None:
            continue
        rooms.setdefault(source, set())
        for target in targets:
            other = room(target)
            if other is not None and other != source:
                rooms[source].add(other)
    return rooms


def test_a_loop_between_folders_is_found_where_every_file_imports_one_way(tmp_path):
    pkg = tmp_path / "benchbox"
    for room in ("low", "high"):
        (pkg / room).mkdir(parents=True)
        (pkg / room / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "store.py").write_text("x = 1\n")
    (pkg / "high" / "view.py").write_text("from benchbox.low.store import x\n")
    (pkg / "low" / "stage.py").write_text("from benchbox.high.view import x\n")
    graph = import_graph(pkg)
    assert find_cycles(graph) == []
    assert find_cycles(room_graph(graph)) == [["benchbox.high", "benchbox.low"]]


def test_no_import_cycle_between_top_level_rooms():
    rooms = room_graph(import_graph())
    assert {"benchbox.report", "benchbox.sweep", "benchbox.measure"} <= rooms.keys()
    assert "benchbox.store" in rooms["benchbox.sweep"]  # the file store sits below the stages
    cycles = find_cycles(rooms)
    assert cycles == [], "import cycles between benchbox's top-level rooms: " + "; ".join(
        " <-> ".join(component) for component in cycles
    )
