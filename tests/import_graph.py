"""The import graph of leadprep, by layer: what imports what, and every import that runs upward.

``make imports`` (``python -m tests.import_graph``) prints it; ``tests/test_architecture.py``
holds the code to it. Imports under ``if TYPE_CHECKING:`` are left out (they never run); an
import inside a function counts like any other: it is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "leadprep"

# Bottom first. A module may import its own layer and the layers below it, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "leadprep",
            "leadprep.settings",
            "leadprep.errors",
            "leadprep.redact",
            "leadprep.sanitize",
            "leadprep.model",
            "leadprep.stages",
            "leadprep.formatting",
            "leadprep.textfiles",
            "leadprep.measures",
            "leadprep.needs",
            "leadprep.http",
            "leadprep.registry",
            "leadprep.tasks",
        ),
    ),
    (
        "domain",
        (
            "leadprep.signals",
            "leadprep.limits",
            "leadprep.hygiene",
            "leadprep.money",
            "leadprep.changes",
            "leadprep.timeline",
        ),
    ),
    ("config", ("leadprep.config",)),
    ("store", ("leadprep.store",)),
    (
        "coaching",
        (
            "leadprep.questions",
            "leadprep.commitments",
            "leadprep.packets",
            "leadprep.history",
            "leadprep.rollup",
            "leadprep.render",
            "leadprep.scope",
        ),
    ),
    ("connectors", ("leadprep.connectors", "leadprep.demo")),  # the demo source's data
    ("channels", ("leadprep.outbox", "leadprep.mail", "leadprep.chat")),
    (
        "app",
        (
            "leadprep.prep",
            "leadprep.doctor",
            "leadprep.review",
            "leadprep.signin",
            "leadprep.schedule",
            "leadprep.send",
            "leadprep.writeback",
            "leadprep.cli",
            "leadprep.__main__",
        ),
    ),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """The layer of a module: the longest prefix listed in LAYERS."""
    best, length = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = name, len(prefix)
    if best is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in tests/import_graph.py")
    return best


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, module: str) -> set[str]:
    """The leadprep modules ``module`` imports when it runs (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("leadprep"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if base.startswith("leadprep"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    known = modules()
    visit(tree)
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    return {name: imports(path, name) for name, path in modules().items()}


def upward(edges: dict[str, set[str]] | None = None) -> list[tuple[str, str]]:
    """Every import from a lower layer of a higher one."""
    order = {name: i for i, (name, _) in enumerate(LAYERS)}
    edges = graph() if edges is None else edges
    return sorted(
        (src, dst)
        for src, targets in edges.items()
        for dst in targets
        if order[layer_of(dst)] > order[layer_of(src)]
    )


def summary() -> str:
    edges = graph()
    by_layer: dict[str, set[str]] = defaultdict(set)
    for src, targets in edges.items():
        for dst in targets:
            if layer_of(dst) != layer_of(src):
                by_layer[layer_of(src)].add(layer_of(dst))
    lines = ["Layers, bottom first; each imports (other layers):"]
    for name, _ in LAYERS:
        lines.append(f"  {name:<11} -> {', '.join(sorted(by_layer[name])) or '(nothing)'}")
    up = upward(edges)
    lines.append(f"Upward imports: {len(up)}")
    lines += [f"  {src} ({layer_of(src)}) -> {dst} ({layer_of(dst)})" for src, dst in up]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())
    sys.exit(0)
