"""Sampling profiles of the SSO's gunicorn workers under load (py-spy), and their text summary.

:func:`record` attaches ``py-spy record`` to every worker for the length of a scenario (raw,
collapsed stacks; idle threads — those waiting on a socket, LDAP or a lock — are not sampled, so
the shares are shares of the CPU the workers spend). :func:`summarize` reads the stacks and ranks:

- components (the package of the innermost frame: ``ldap3``, ``jinja2``, ``sso.web``…) by self time;
- functions by self time;
- the project's functions (``sso/``, ``ldapdir/``) by inclusive time, which is where fixes go.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: ``func (path/to/file.py:123)``
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
#: Folders of the project whose functions are listed by inclusive time.
OWN = ("/sso/", "/ldapdir/", "/bench/")


class ProfileError(RuntimeError):
    """py-spy is missing or failed."""


def py_spy() -> str:
    """Path of the py-spy binary.

    :raises ProfileError: not installed (``pip install py-spy``).
    """
    path = shutil.which("py-spy")
    if path is None:
        import sys

        candidate = Path(sys.executable).with_name("py-spy")
        if candidate.exists():
            return str(candidate)
        raise ProfileError("py-spy is not installed (pip install py-spy)")
    return path


def start(
    pids: Iterable[int], seconds: float, folder: Path, name: str, rate: int = 200, gil: bool = True
) -> list[subprocess.Popen[bytes]]:
    """Start one ``py-spy record`` per pid (raw stacks into ``folder/name-<pid>.txt``); see :func:`finish`.

    :param gil: sample only the thread holding the GIL (the Python CPU work; C code that releases
        the GIL, such as an SQLite statement, is not seen), else every thread py-spy thinks active.
    """
    binary = py_spy()
    folder.mkdir(parents=True, exist_ok=True)
    processes = []
    for pid in pids:
        output = folder / f"{name}-{pid}.txt"
        command = [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--full-filenames",
            "--output",
            str(output),
        ]
        if gil:
            command.append("--gil")
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    return processes


def finish(processes: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> list[Path]:
    """Wait for the recorders; return the stack files written.

    :raises ProfileError: a recorder failed (its message).
    """
    written = []
    for process in processes:
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        args = [str(arg) for arg in process.args]  # type: ignore[union-attr]
        output = Path(args[args.index("--output") + 1])
        if process.returncode != 0 or not output.exists():
            raise ProfileError(f"py-spy failed ({process.returncode}): {err.decode(errors='replace')[-500:]}")
        written.append(output)
    return written


def _component(path: str) -> str:
    """The package a frame's file belongs to: ``flask``, ``sso.web``, ``ldapdir.ldap``, ``stdlib:logging``…"""
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        return rest.split("/", 1)[0].removesuffix(".py")
    for own in OWN:
        if own in path:
            parts = path.split(own, 1)[1].split("/")
            package = own.strip("/")
            if len(parts) == 1 and package == "sso":
                return package
            return f"{package}.{parts[0].removesuffix('.py')}"
    if "/templates/" in path or path.endswith(".html"):
        return "templates"
    if "/lib/python" in path:
        module = path.split("/lib/python", 1)[1].split("/", 1)[-1]
        return "stdlib:" + module.split("/", 1)[0].removesuffix(".py")
    return path or "?"


#: Where a sample's CPU goes: the first frame from the innermost outwards whose component is
#: listed here names its layer. Components not listed (``stdlib:typing``, ``stdlib:email``…) are
#: helpers: the sample goes to whoever called them.
LAYERS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ldap3",
            "pyasn1",
            "ldapdir.ldap",
            "ldapdir.connections",
            "ldapdir.entry",
            "ldapdir.state",
            "ldapdir.query",
            "ldapdir.ppolicy",
            "ldapdir.passwords",
            "ldapdir.wire",
            "ldapdir.reader",
        ),
        "directory (ldapdir, ldap3, pyasn1)",
    ),
    **dict.fromkeys(
        (
            "jinja2",
            "markupsafe",
            "flask_babel",
            "babel",
            "templates",
            "sso.web.theme",
            "sso.web.i18n",
            "sso.web.pages",
            "stdlib:gettext",
        ),
        "pages (Jinja2 templates, Babel)",
    ),
    **dict.fromkeys(("wtforms", "flask_wtf", "sso.web.forms"), "forms + CSRF (WTForms, Flask-WTF)"),
    **dict.fromkeys(
        ("itsdangerous", "stdlib:hmac", "stdlib:hashlib", "sso.web.session"),
        "signing, cookies (itsdangerous)",
    ),
    **dict.fromkeys(("sso.tickets", "stdlib:sqlite3", "redis"), "ticket store"),
    **dict.fromkeys(("limits", "sso.throttle", "sso.web.security"), "throttling (limits)"),
    **dict.fromkeys(("sso.web.edge",), "WSGI edge (headers, request metrics)"),
    **dict.fromkeys(("prometheus_client", "sso.metrics", "sso.web.ops"), "metrics"),
    **dict.fromkeys(("sso.audit", "stdlib:logging"), "audit + logging"),
    **dict.fromkeys(("sso.cas", "stdlib:xml"), "CAS protocol + XML (sso.cas)"),
    **dict.fromkeys(("flask", "werkzeug", "blinker"), "Flask + Werkzeug"),
    **dict.fromkeys(
        (
            "gunicorn",
            "stdlib:selectors",
            "stdlib:concurrent",
            "stdlib:threading",
            "stdlib:socket",
            "stdlib:ssl",
            "stdlib:queue",
        ),
        "gunicorn (HTTP, poller, threads)",
    ),
}


def _layer(components: list[str]) -> str:
    for component in reversed(components):
        if component in LAYERS:
            return LAYERS[component]
        if component.startswith(("sso", "ldapdir")):
            return f"other project code ({component})"
    return "other"


def _key(frame: str) -> tuple[str, str]:
    """(function label, component) of a raw frame."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), "?"
    path = match.group("file")
    short = path.split("site-packages/", 1)[-1]
    for own in OWN:
        if own in short:
            short = own.strip("/") + "/" + short.split(own, 1)[1]
            break
    else:
        if "/lib/python" in short:
            short = short.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{match.group('func')} ({short})", _component(path)


def read_stacks(paths: Iterable[Path]) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (outermost first) and their sample counts, summed over files."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def summarize(paths: Iterable[Path], title: str, top: int = 25) -> str:
    """A text report of the stacks in ``paths``."""
    stacks = read_stacks(paths)
    total = sum(stacks.values())
    if not total:
        return f"== {title}: no samples\n"
    layers: Counter[str] = Counter()
    components: Counter[str] = Counter()
    components_inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks.items():
        keys = [_key(frame) for frame in frames]
        label, component = keys[-1]
        layers[_layer([component for _, component in keys])] += count
        components[component] += count
        self_time[label] += count
        for name in {component for _, component in keys}:
            components_inclusive[name] += count
        for label in {label for label, component in keys if component.startswith(("sso", "ldapdir"))}:
            inclusive[label] += count

    def pct(count: int) -> str:
        return f"{100.0 * count / total:5.1f} %"

    lines = [
        f"== {title}: {total} samples",
        "",
        "-- layers (each sample once, to the innermost layer it is in)",
    ]
    lines += [f"{pct(count)}  {name}" for name, count in layers.most_common()]
    lines += ["", "-- components (self time)"]
    lines += [f"{pct(count)}  {name}" for name, count in components.most_common(top)]
    lines += ["", "-- components (inclusive time: the component or anything it calls)"]
    lines += [f"{pct(count)}  {name}" for name, count in components_inclusive.most_common(top)]
    lines += ["", "-- functions (self time)"]
    lines += [f"{pct(count)}  {name}" for name, count in self_time.most_common(top)]
    lines += ["", "-- the project's functions (inclusive time)"]
    lines += [f"{pct(count)}  {name}" for name, count in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"
