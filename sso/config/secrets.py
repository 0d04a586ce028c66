"""Secrets out of the YAML: ``<key>_file`` reads a file, ``<key>_env`` an environment variable.

``bind_password_file: /run/secrets/ldap`` sets ``bind_password`` from that file (trailing
newline removed); ``bind_password_env: SSO_LDAP_PASSWORD`` from the environment. This works for
every string key of every section, so operators never have to put a secret in the YAML.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Settings whose own name ends in ``_file``/``_env``: plain values, never secret references.
LITERAL_KEYS = frozenset({"tls_ca_file"})


class SecretError(Exception):
    """A secret reference cannot be resolved."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem, self.fix = key, problem, fix


def resolve(data: Any, base: Path, environ: Mapping[str, str] | None = None, path: str = "") -> Any:
    """Return ``data`` with every ``*_file`` / ``*_env`` key replaced by the secret it names.

    :param base: folder relative ``*_file`` paths are resolved against (the YAML's folder).
    :raises SecretError: missing file or variable, or both the value and a reference given.
    """
    environ = os.environ if environ is None else environ
    if isinstance(data, list):
        return [resolve(item, base, environ, f"{path}[{i}]") for i, item in enumerate(data)]
    if not isinstance(data, dict):
        return data
    out: dict[Any, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        reference = isinstance(key, str) and key.endswith(("_file", "_env")) and key not in LITERAL_KEYS
        if reference and isinstance(value, str):
            target = key.rsplit("_", 1)[0]
            if target in data:
                raise SecretError(where, f"both '{target}' and '{key}' are set", "keep only one of them")
            out[target] = _read(where, key.endswith("_file"), value, base, environ)
        else:
            out[key] = resolve(value, base, environ, where)
    return out


def _read(where: str, is_file: bool, ref: str, base: Path, environ: Mapping[str, str]) -> str:
    if is_file:
        file = (base / ref).expanduser()
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(
                where, f"cannot read {file}: {exc.strerror}", "check the path and its permissions"
            ) from None
    if ref not in environ:
        raise SecretError(where, f"environment variable {ref} is not set", f"export {ref}=… before starting")
    return environ[ref]
