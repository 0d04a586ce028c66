"""A plain (non-editable) install ships the templates, static files, sample configuration, message
catalogues (sources only: compiled at start-up) and the demo portal, and works in French and English."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from sso.resources import templates_dir, config_dir, static_dir, translations_dir
assert "site-packages-under-test" in str(templates_dir()), templates_dir()
for path in (templates_dir() / "login.html", templates_dir() / "mail" / "activation.txt",
             templates_dir() / "portal" / "home.html", static_dir() / "reveal.js",
             translations_dir() / "en" / "LC_MESSAGES" / "messages.po",
             config_dir() / "demo.yaml", config_dir() / "demo-directory.ldif", static_dir() / "sso.css"):
    assert path.is_file(), path
assert not list(translations_dir().rglob("*.mo")), "compiled catalogues shipped"
from sso.app import create_app
app = create_app(str(config_dir() / "demo.yaml"), start_workers=False)
page = app.test_client().get("/login")
assert page.status_code == 200 and "Se connecter" in page.get_data(as_text=True)
english = app.test_client().get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
assert "Sign in to the ENT" in english, english[:500]
from sso.demo_portal import create_app as create_portal
portal = create_portal(str(config_dir() / "demo.yaml")).test_client().get("/?lang=en").get_data(as_text=True)
assert "Welcome to the demonstration portal" in portal, portal[:500]
import cas  # python-cas: the portal's CAS client is a run-time dependency
print("installed OK")
"""


@pytest.mark.integration
def test_wheel_install_ships_everything(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    target = tmp_path / "site-packages-under-test"
    wheel = next(wheels.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        cwd=tmp_path,
    )
    # the installed copy first; the dependencies from this environment; never the checkout
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    result = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "installed OK" in result.stdout
    cli = subprocess.run(
        [sys.executable, "-c", "from sso.cli import main; main()", "check-config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "OK" in cli.stdout, cli.stderr[-2000:]
    demo = subprocess.run(
        [sys.executable, "-c", "from sso.cli import main; main()", "demo", "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0 and "demo ENT portal" in demo.stdout, demo.stderr[-2000:]
