"""The benchmark keeps working: ``python -m bench --smoke`` completes with no failed flow and prints
its table. No timing is asserted: numbers on a shared CI machine mean nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.slapd import REQUIRE_ENV, require_slapd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def require_load_generator() -> None:
    """aiohttp comes with the ``bench`` extra: skip without it locally, fail in CI."""
    if importlib.util.find_spec("aiohttp") is not None:
        return
    reason = "aiohttp is not installed (pip install -e '.[bench]')"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason + f" and {REQUIRE_ENV}=1")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    require_slapd()
    require_load_generator()
    results = tmp_path_factory.mktemp("bench-results")
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return completed, results


def test_smoke_run_completes_without_errors(smoke):
    completed, _ = smoke
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]


@pytest.mark.parametrize(
    ("target", "scenario"),
    [
        ("ldap3-floor", "search+bind"),
        ("bare-flask", "bare"),
        ("ceiling", "cold-login"),
        ("ceiling", "validate"),
        ("sso", "cold-login"),
        ("sso", "sso-login"),
        ("sso", "validate"),
        ("sso", "link-request"),
    ],
)
def test_the_table_has_every_target_and_scenario(smoke, target, scenario):
    completed, _ = smoke
    assert completed.stdout.splitlines()[0].split()[:4] == ["target", "scenario", "conc", "flows/s"]
    rows = [line.split() for line in completed.stdout.splitlines()[2:] if line.strip()]
    matching = [row for row in rows if row[:3] == [target, scenario, "8"]]
    assert matching, completed.stdout
    flows_per_second, errors = float(matching[0][3]), int(matching[0][7])
    assert flows_per_second > 0 and errors == 0, completed.stdout


def test_results_are_kept_as_json(smoke):
    _, results = smoke
    runs = [folder for folder in results.iterdir() if folder.is_dir()]
    assert len(runs) == 1
    data = json.loads((runs[0] / "results.json").read_text(encoding="utf-8"))
    assert {row["target"] for row in data["rows"]} == {"ldap3-floor", "bare-flask", "ceiling", "sso"}
    assert all(row["errors"] == {} for row in data["rows"])
    assert {memory["target"] for memory in data["memory"]} == {"bare-flask", "ceiling", "sso"}
    assert (results / "latest.txt").read_text(encoding="utf-8").startswith("target")
