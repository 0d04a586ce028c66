"""Where the bundled templates/ and config/ are: in an installed wheel or a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def _root() -> Path:
    bundled = _PACKAGE / "_data"  # wheel: force-included by pyproject
    if (bundled / "templates").is_dir():
        return bundled
    return _PACKAGE.parent  # checkout or editable install


def templates_dir() -> Path:
    """The default templates folder."""
    return _root() / "templates"


def config_dir() -> Path:
    """The folder of the sample configurations and the demo directory."""
    return _root() / "config"


def static_dir() -> Path:
    """CSS and the small scripts served by the app."""
    return _PACKAGE / "static"


def translations_dir() -> Path:
    """Babel message catalogues (French is the source language; ``en`` translates it)."""
    return _PACKAGE / "translations"
