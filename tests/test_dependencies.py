"""Every module the package imports is declared in pyproject.toml, by the distribution that ships
it: a plain `pip install leadprep` must run every command, whatever the dev extra happens to bring.
(CI also installs the wheel with its dependencies into a clean virtualenv: .ci/smoke.)"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "leadprep"
OPTIONAL = {"pdf"}  # extras whose imports must be lazy, with a message when missing


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        extra: {_name(r) for r in requirements}
        for extra, requirements in project["optional-dependencies"].items()
    }
    return {_name(r) for r in project["dependencies"]}, extras


def imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level third-party module -> (file, imported at module level?) for each import."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        guarded = {  # `if TYPE_CHECKING:` blocks import nothing at run time
            id(inner)
            for node in tree.body
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                module = name.split(".")[0]
                if module == "leadprep" or module in sys.stdlib_module_names:
                    continue
                found.setdefault(module, []).append(
                    (str(path.relative_to(ROOT)), id(node) in top_level)
                )
    return found


def test_every_imported_module_is_a_declared_dependency():
    core, extras = declared()
    shipped_by = packages_distributions()
    missing, eager = [], []
    for module, places in sorted(imports().items()):
        distributions = {d.lower().replace("_", "-") for d in shipped_by.get(module, [])}
        assert distributions, f"{module} (imported in {places[0][0]}) is not installed"
        if distributions & core:
            continue
        optional = [x for x in OPTIONAL if distributions & extras.get(x, set())]
        if not optional:
            missing.append(f"{module} ({sorted(distributions)}, imported in {places[0][0]})")
        eager += [f"{module} in {file}" for file, at_top in places if optional and at_top]
    assert missing == [], "imported but not in [project] dependencies: " + ", ".join(missing)
    assert eager == [], "an optional extra imported at module level: " + ", ".join(eager)


def test_the_scan_sees_what_the_package_imports():
    """The check above is only as good as its scan: it must find the run-time imports we know of,
    and must not count an import made for the type checker alone."""
    found = imports()
    assert {"httpx", "requests", "urllib3", "markupsafe", "jinja2", "typer"} <= set(found)
    assert [at_top for _, at_top in found["weasyprint"]] and not any(
        at_top for _, at_top in found["weasyprint"]
    )
