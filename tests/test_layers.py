"""The import layers of DESIGN.md, read from the source with ``ast`` (every import, at any depth).

- DomainBed is imported by ``ldr_plugin/domainbed`` only (and there by ``host`` alone);
- core packages (the metric, records, leaderboard builder ...) import no adapter, flow or edge;
- adapters (one per host) import no flow or edge;
- no import cycle between packages;
- an import of the project's own modules inside a function says why (a comment on it, on the line
  above, on the first line of its import block or on the ``def``): only to defer a heavy library.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ldr_plugin

PACKAGE = Path(ldr_plugin.__file__).resolve().parent
CORE = {"kstar", "latentdr", "results", "leaderboard", "metrics", "datasets", "errors", "plugins", "tomlfile",
        "registry_files", "__init__"}
ADAPTERS = {"domainbed", "sources", "published"}
INFRASTRUCTURE = {"launchers"}  # runs jobs; knows no host and no flow
FLOWS_AND_EDGES = {"scoring", "cli", "demo", "demo_check", "demo_verdict", "check", "testing"}


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to: ``leaderboard``, ``errors`` ..."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports() -> list[tuple[Path, ast.stmt, str, bool]]:
    """(file, node, imported module, inside a function) for every import of every module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        in_function = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function |= {id(sub) for sub in ast.walk(node) if sub is not node}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path, node, alias.name, id(node) in in_function) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" if node.module == "ldr_plugin" else node.module for a in node.names]
                found += [(path, node, name, id(node) in in_function) for name in names]
    return found


def _target(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ldr_plugin" and len(parts) > 1 else None


def _calls(name: str) -> set[tuple[str, str]]:
    """(package, file) of every call of a function or method called ``name``."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == name:
                    found.add((_unit(path), path.name))
    return found


def test_only_the_domainbed_adapter_imports_domainbed():
    static = {(_unit(p), p.name) for p, _, module, _ in _imports() if module.split(".")[0] == "domainbed"}
    assert not static, static  # even inside the adapter, every import goes through host.import_domainbed
    assert {unit for unit, _ in _calls("import_domainbed")} == {"domainbed"}
    assert {name for unit, name in _calls("import_module") if unit == "domainbed"} == {"host.py"}


def test_core_imports_no_adapter_and_adapters_import_no_flow():
    wrong = []
    for path, node, module, _ in _imports():
        unit, target = _unit(path), _target(module)
        if unit in CORE | INFRASTRUCTURE and target in ADAPTERS | FLOWS_AND_EDGES | INFRASTRUCTURE - {unit}:
            wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno} (core) imports {module}")
        if unit in ADAPTERS and target in FLOWS_AND_EDGES:
            wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno} (adapter) imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for path, _, module, _ in _imports():
        unit, target = _unit(path), _target(module)
        if target is not None and target != unit:
            graph[unit].add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph[node]
        return False

    cycles = sorted({tuple(sorted((a, b))) for a in list(graph) for b in graph[a] if reaches(b, a)})
    assert not cycles, cycles


def test_every_in_function_import_of_our_modules_says_why():
    unexplained = []
    for path, node, module, in_function in _imports():
        if not in_function or _target(module) is None and module != "ldr_plugin":
            continue
        lines = path.read_text().splitlines()
        start = node.lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith(("from ", "import ")):
            start -= 1  # the first line of this block of imports
        context = [lines[node.lineno - 1], lines[start], lines[start - 1]]
        def_line = next(lines[i] for i in range(start, -1, -1) if lines[i].lstrip().startswith(("def ", "async def ")))
        if not any("#" in line for line in [*context, def_line]):
            unexplained.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unexplained, "\n".join(unexplained)
