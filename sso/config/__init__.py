"""Load and check the YAML configuration: :func:`load_settings` or a :class:`ConfigError`.

Relative paths: data files (``embedded_directory.data``, ``site.theme_folder``) are read beside
the YAML file; run-time state (tickets, mail queue, outbox, demo changes) lives under
``var_folder``, itself relative to the working directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sso.config.schema import Settings
from sso.config.secrets import SecretError, resolve

__all__ = ["ConfigError", "Problem", "Settings", "load_settings", "config_path"]

#: Keys whose values are never repeated in an error message.
_SECRET_KEY = re.compile(r"password|secret|key|token|url", re.IGNORECASE)

#: Environment variable naming the configuration file.
ENV_VAR = "SSO_CONFIG"


class Problem:
    """One thing wrong in a configuration file."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key, self.problem, self.fix = key, problem, fix

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}" + (f" (fix: {self.fix})" if self.fix else "")


class ConfigError(Exception):
    """The configuration cannot be used; names the file, and each key with its problem and fix."""

    def __init__(self, file: Path | str, problems: list[Problem]) -> None:
        self.file = str(file)
        self.problems = problems
        super().__init__(self.report())

    def report(self) -> str:
        """Human-readable diagnosis, one line per problem."""
        lines = [f"{self.file}: {len(self.problems)} problem(s) in the configuration"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file: ``explicit``, else ``$SSO_CONFIG``, else the bundled demo."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    from sso.resources import config_dir

    return config_dir() / "demo.yaml"


def load_settings(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Settings:
    """Read, resolve secrets in, validate and anchor the paths of a configuration file.

    :raises ConfigError: with every problem found.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            file, [Problem("(file)", f"cannot read: {exc.strerror}", "check the path given")]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = Problem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}", "fix the syntax")
        raise ConfigError(file, [problem]) from None
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            [
                Problem(
                    "(file)",
                    "the top level must be a mapping of sections",
                    "see config/production.example.yaml",
                )
            ],
        )
    base = file.resolve().parent
    try:
        data = resolve(data, base, environ)
    except SecretError as exc:
        raise ConfigError(file, [Problem(exc.key, exc.problem, exc.fix)]) from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, [_problem(error) for error in exc.errors()]) from None
    return _anchor(settings, base)


def _problem(error: Any) -> Problem:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return Problem(
            key, "unknown key", "remove it or correct its spelling (see config/production.example.yaml)"
        )
    if kind in ("missing", "missing_argument"):
        return Problem(key, "required key is missing", "add it")
    if _SECRET_KEY.search(key):
        return Problem(key, message, "")  # never echo what may be a secret (or a URL holding one)
    return Problem(key, f"{message} (got {error.get('input')!r:.60})", "")


def _anchor(settings: Settings, base: Path) -> Settings:
    """Make relative paths absolute (see module docstring)."""
    var = settings.var_folder if settings.var_folder.is_absolute() else Path.cwd() / settings.var_folder
    updates: dict[str, BaseModel | Path | None] = {"var_folder": var}
    if settings.site.theme_folder is not None:
        updates["site"] = settings.site.model_copy(update={"theme_folder": base / settings.site.theme_folder})
    if settings.embedded_directory is not None:
        emb = settings.embedded_directory
        updates["embedded_directory"] = emb.model_copy(
            update={"data": base / emb.data, "state": var / emb.state}
        )
    mail = settings.mail
    updates["mail"] = mail.model_copy(
        update={"queue": var / mail.queue, "outbox": var / mail.outbox if mail.outbox is not None else None}
    )
    url = settings.tickets.url
    if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
        updates["tickets"] = settings.tickets.model_copy(
            update={"url": f"sqlite://{var / url[len('sqlite:') :]}"}
        )
    return settings.model_copy(update=updates)
