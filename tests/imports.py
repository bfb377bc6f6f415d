"""The import graph of the package, read from the source (every import statement: lazy ones inside
functions and `if TYPE_CHECKING:` ones too), for the layering and cycle tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_imports(package: Path) -> dict[str, set[str]]:
    """Every module under `package` and the modules it names in any import statement.

    `from . import x` names the module `x`, not the package it stands in: importing a sibling
    does not depend on the package's `__init__`.
    """
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from this module's package, `level - 1` packages up
                    base = ".".join([*here[: len(here) - node.level + 1], *([base] if base else [])])
                if node.module:
                    named.add(base)
                named |= {f"{base}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
        imports[name] = named
    return imports


def first_cycle(imports: dict[str, set[str]]) -> list[str] | None:
    """A cycle among the modules of `imports` (as a path that ends where it starts), or None."""
    edges = {module: sorted(t for t in named if t in imports and t != module) for module, named in imports.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        for target in edges[module]:
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in done:
                found = visit(target, [*path, target])
                if found:
                    return found
        done.add(module)
        return None

    for module in sorted(edges):
        found = visit(module, [module])
        if found:
            return found
    return None
