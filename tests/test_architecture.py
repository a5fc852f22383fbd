"""The architecture as docs/architecture.md states it holds in the code: every module listed
exists and every module is listed, nothing imports upward (tests/import_graph.py's layers), no
function is over 80 lines, and no line count is written by hand (it would go stale)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.import_graph import LAYERS, ROOT, layer_of, modules, upward

DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
LISTED = set(re.findall(r"^\| `(leadprep/[^`]+)`", DOC, re.M))
MAX_FUNCTION_LINES = 80


def _covered(path: Path) -> bool:
    """A module is listed by its own row, or by its package's (``leadprep/store/``)."""
    relative = path.relative_to(ROOT).as_posix()
    return any(
        relative == entry or (entry.endswith("/") and relative.startswith(entry))
        for entry in LISTED
    )


def test_every_module_is_listed_and_every_listed_module_exists():
    entry_points = {"leadprep/__init__.py", "leadprep/__main__.py"}
    unlisted = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "leadprep").rglob("*.py"))
        if p.relative_to(ROOT).as_posix() not in entry_points and not _covered(p)
    ]
    assert unlisted == [], "docs/architecture.md: add a row for each"
    missing = [entry for entry in LISTED if not (ROOT / entry).exists()]
    assert missing == [], "docs/architecture.md lists modules that do not exist"


def test_every_module_is_in_a_layer_and_nothing_imports_upward():
    for name in modules():
        layer_of(name)  # raises for a module in no layer
    assert upward() == [], "an import runs upward: see `make imports`"
    named = [name for name, _ in LAYERS]
    for layer in named:
        assert re.search(rf"^{layer}\s", DOC, re.M), f"docs/architecture.md: layer {layer}"


def test_no_line_counts_written_by_hand():
    assert not re.search(r"\b\d[\d,]* lines\b", DOC)


def _functions() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted((ROOT / "leadprep").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((path.relative_to(ROOT).as_posix(), node.name, length))
    return found


@pytest.mark.parametrize("limit", [MAX_FUNCTION_LINES])
def test_no_function_is_over_80_lines(limit):
    long = [f"{path}: {name} ({n} lines)" for path, name, n in _functions() if n > limit]
    assert long == []


def test_config_imports_no_connector_and_delivery_nothing_from_connectors():
    from tests.import_graph import graph

    edges = graph()
    assert not [m for m in edges["leadprep.config"] if m.startswith("leadprep.connectors")]
    delivery = [
        m for m in edges if m.startswith(("leadprep.mail", "leadprep.chat", "leadprep.outbox"))
    ]
    assert delivery, "the delivery modules moved: update this test"
    for module in delivery:
        assert not [m for m in edges[module] if m.startswith("leadprep.connectors")], module
