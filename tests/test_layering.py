"""Imports go one way only (ARCHITECTURE.md, "Layers"): a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "josef"

# layer -> the josef packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "protocol": {
        "records", "storage", "coordinator", "cluster", "broker", "client", "streams",
        "admin", "metrics", "cli", "testing",
    },
    "records": {
        "storage", "coordinator", "cluster", "broker", "client", "streams", "admin",
        "metrics", "cli", "testing",
    },
    "storage": {"coordinator", "cluster", "broker", "client", "streams", "cli", "testing"},
    "coordinator": {"broker", "client", "streams", "cli", "testing"},
    "cluster": {"broker", "client", "streams", "cli", "testing"},
    "client": {"broker", "storage", "coordinator", "cluster", "streams", "cli", "testing"},
    "streams": {"broker", "storage", "coordinator", "cluster", "cli", "testing"},
}


def _josef_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "josef" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_lower_layers_do_not_import_higher_ones() -> None:
    violations = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((SRC / layer).rglob("*.py")) if (SRC / layer).exists() else []:
            bad = _josef_imports(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(SRC)} imports josef.{sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_no_relative_imports_escape_a_layer() -> None:
    # `from ..broker import x` would dodge the check above; the project uses absolute imports.
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.level > 1 for n in ast.walk(tree)):
            offenders.append(str(path.relative_to(SRC)))
    assert not offenders, offenders
