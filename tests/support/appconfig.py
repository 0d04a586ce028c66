"""Build test configurations from the bundled demo one, through the real YAML loader."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from sso.config import Settings, load_settings
from sso.resources import config_dir


def demo_data() -> dict[str, Any]:
    """The demo configuration as a plain mapping."""
    return yaml.safe_load((config_dir() / "demo.yaml").read_text(encoding="utf-8"))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (a ``None`` value deletes the key)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_config(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Write a demo-based configuration into ``folder`` (state under ``folder/var``); return its path."""
    data = merge(demo_data(), overrides or {})
    data["var_folder"] = str(folder / "var")
    if "embedded_directory" in data:
        data["embedded_directory"]["data"] = str(config_dir() / "demo-directory.ldif")
    path = folder / "sso.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def demo_settings(folder: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Load a demo-based configuration written into ``folder``."""
    return load_settings(write_config(folder, overrides))


class FakeClock:
    """A POSIX clock the tests move by hand."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
