"""The architecture, checked: Flask only in the web glue; ldapdir stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Flask is allowed here (and in sso/web/): the app factory, the command line, the demo portal (a separate app).
GLUE = {"sso/app.py", "sso/demo_portal.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", python_files("ldapdir"), ids=str)
def test_ldapdir_imports_nothing_from_sso_or_flask(path):
    bad = {
        name for name in imports(path) if name.split(".")[0] in {"sso", "flask", "flask_babel", "werkzeug"}
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", python_files("sso"), ids=str)
def test_flask_only_in_the_web_glue(path):
    relative = path.relative_to(ROOT).as_posix()
    if relative in GLUE or relative.startswith(("sso/web/", "sso/cli/")):
        return
    bad = {name for name in imports(path) if name.split(".")[0].startswith(("flask", "werkzeug"))}
    assert not bad, f"{relative} imports {bad}"
