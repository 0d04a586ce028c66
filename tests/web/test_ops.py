"""/health, /metrics and the audit lines, through the Flask client (dependencies failed on purpose)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from ldapdir import DirectoryUnavailable
from sso import metrics
from sso.audit import Audit
from sso.metrics import MeteredRegistry, observe_audit
from sso.tickets.memory import MemoryRegistry
from sso.tickets.model import Lifetimes
from sso.tickets.registry import RegistryUnavailable
from tests.web.conftest import sign_in
from tests.web.test_login import PORTAL, STUDENT, ticket_of

UNAVAILABLE = "Service momentanément indisponible"


def sample(name: str, **labels: str) -> float:
    """The current value of a metric sample (0 when it has not been created yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fail(error: type[Exception]):  # type: ignore[no-untyped-def]
    def raiser(*args: object, **kwargs: object) -> None:
        raise error("down for the test")

    return raiser


@pytest.fixture
def audit_lines() -> Iterator[list[dict]]:
    """The audit log's JSON lines written during the test."""
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logger = logging.getLogger("sso.audit")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


# /health


def test_ready_when_everything_answers(client) -> None:
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200
        body = response.get_json()
        assert body["ready"] is True and body["live"] is True
        assert body["checks"] == {"directory": "ok", "tickets": "ok"}
        assert set(body["ms"]) == {"directory", "tickets"}
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("down", "expected"),
    [
        (("directory",), {"directory": "unavailable", "tickets": "ok"}),
        (("tickets",), {"directory": "ok", "tickets": "unavailable"}),
        (("directory", "tickets"), {"directory": "unavailable", "tickets": "unavailable"}),
    ],
)
def test_not_ready_names_what_is_down_but_stays_live(client, rt, monkeypatch, down, expected) -> None:
    if "directory" in down:
        monkeypatch.setattr(rt.directory, "ping", fail(DirectoryUnavailable))
    if "tickets" in down:
        monkeypatch.setattr(rt.tickets.inner, "ping", fail(RegistryUnavailable))
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "unavailable" and body["ready"] is False
        assert body["checks"] == expected
    live = client.get("/health/live")
    assert live.status_code == 200 and live.get_json()["live"] is True


def test_an_unexpected_error_in_a_check_is_not_reported_as_ready(app, client, rt, monkeypatch) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error page, not the exception
    monkeypatch.setattr(rt.tickets.inner, "ping", fail(RuntimeError))
    response = client.get("/health")
    assert response.status_code == 500
    assert "Traceback" not in response.get_data(as_text=True)


# Dependencies down: 503 for people, INTERNAL_ERROR for services, never a 500


def test_ticket_store_down_gives_people_a_503_page(client, rt, monkeypatch) -> None:
    monkeypatch.setattr(rt.tickets.inner, "add", fail(RegistryUnavailable))
    errors = sample("sso_ticket_store_errors_total", operation="add")
    response = sign_in(client, *STUDENT, query=f"?service={PORTAL}")
    assert response.status_code == 503
    assert UNAVAILABLE in response.get_data(as_text=True)
    assert response.headers["Retry-After"]
    assert sample("sso_ticket_store_errors_total", operation="add") == errors + 1


def test_ticket_store_down_gives_services_internal_error(client, rt, monkeypatch) -> None:
    ticket = ticket_of(sign_in(client, *STUDENT, query=f"?service={PORTAL}"))
    monkeypatch.setattr(rt.tickets.inner, "take", fail(RegistryUnavailable))
    before = sample("sso_validations_total", endpoint="p3/serviceValidate", outcome="INTERNAL_ERROR")
    response = client.get(f"/p3/serviceValidate?ticket={ticket}&service={PORTAL}")
    assert response.status_code == 200
    assert 'code="INTERNAL_ERROR"' in response.get_data(as_text=True)
    after = sample("sso_validations_total", endpoint="p3/serviceValidate", outcome="INTERNAL_ERROR")
    assert after == before + 1


def test_directory_down_gives_people_a_503_page(client, rt, monkeypatch) -> None:
    monkeypatch.setattr(rt.directory, "find", fail(DirectoryUnavailable))
    response = sign_in(client, *STUDENT, query=f"?service={PORTAL}")
    assert response.status_code == 503
    assert UNAVAILABLE in response.get_data(as_text=True)


# /metrics


def test_metrics_is_prometheus_text(client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for family in ("sso_logins_total", "sso_validations_total", "sso_request_duration_seconds_bucket"):
        assert family in text or family.removesuffix("_bucket") in text


def test_counters_move_with_sign_ins_validations_and_logouts(client) -> None:
    before = {
        "success": sample("sso_logins_total", outcome="success"),
        "invalid": sample("sso_logins_total", outcome="invalid"),
        "never": sample("sso_logins_total", outcome="never_activated"),
        "tgt": sample("sso_tickets_issued_total", kind="TGT"),
        "st": sample("sso_tickets_issued_total", kind="ST"),
        "ok": sample("sso_validations_total", endpoint="serviceValidate", outcome="success"),
        "bad": sample("sso_validations_total", endpoint="serviceValidate", outcome="INVALID_TICKET"),
        "logouts": sample("sso_logouts_total"),
        "posts": sample("sso_request_duration_seconds_count", endpoint="cas.login_post", method="POST"),
        "401": sample("sso_responses_total", endpoint="cas.login_post", status="401"),
    }
    assert sign_in(client, STUDENT[0], "wrong-password").status_code == 401
    assert sign_in(client, "lea.petit@etu.univ-demo.fr", "anything").status_code == 401
    ticket = ticket_of(sign_in(client, *STUDENT, query=f"?service={PORTAL}"))
    for _ in range(2):  # once valid, then already used
        client.get(f"/serviceValidate?ticket={ticket}&service={PORTAL}")
    client.get("/logout")

    assert sample("sso_logins_total", outcome="success") == before["success"] + 1
    assert sample("sso_logins_total", outcome="invalid") == before["invalid"] + 1
    assert sample("sso_logins_total", outcome="never_activated") == before["never"] + 1
    assert sample("sso_tickets_issued_total", kind="TGT") == before["tgt"] + 1
    assert sample("sso_tickets_issued_total", kind="ST") == before["st"] + 1
    assert sample("sso_validations_total", endpoint="serviceValidate", outcome="success") == before["ok"] + 1
    assert (
        sample("sso_validations_total", endpoint="serviceValidate", outcome="INVALID_TICKET")
        == before["bad"] + 1
    )
    assert sample("sso_logouts_total") == before["logouts"] + 1
    posts = sample("sso_request_duration_seconds_count", endpoint="cas.login_post", method="POST")
    assert posts == before["posts"] + 3
    assert sample("sso_responses_total", endpoint="cas.login_post", status="401") == before["401"] + 2
    text = client.get("/metrics").get_data(as_text=True)
    assert 'sso_logins_total{outcome="success"}' in text


@pytest.mark.parametrize(
    ("event", "fields", "name", "labels"),
    [
        ("login.failure", {"reason": "x" * 500}, "sso_logins_total", {"outcome": "other"}),
        ("login.failure", {"reason": 'a"}\n{b'}, "sso_logins_total", {"outcome": "other"}),
        (
            "validate.failure",
            {"endpoint": "../../etc", "code": "<script>"},
            "sso_validations_total",
            {"endpoint": "other", "outcome": "other"},
        ),  # fmt: skip
        ("activation.Évil label", {}, "sso_account_events_total", {"event": "other"}),
        ("activation.password_set", {}, "sso_account_events_total", {"event": "password_set"}),
    ],
)
def test_label_values_come_from_fixed_sets(event, fields, name, labels) -> None:
    before = sample(name, **labels)
    observe_audit(event, {"event": event, **fields})
    assert sample(name, **labels) == before + 1


def test_metered_registry_counts_and_passes_errors_on() -> None:
    inner = MemoryRegistry(Lifetimes())
    store = MeteredRegistry(inner)
    before = sample("sso_ticket_store_duration_seconds_count", operation="ping")
    store.ping()
    assert sample("sso_ticket_store_duration_seconds_count", operation="ping") == before + 1
    inner.ping = fail(RegistryUnavailable)  # type: ignore[method-assign]
    errors = sample("sso_ticket_store_errors_total", operation="ping")
    with pytest.raises(RegistryUnavailable):
        store.ping()
    assert sample("sso_ticket_store_errors_total", operation="ping") == errors + 1
    store.close()


def test_multiprocess_mode_adds_up_the_worker_processes(tmp_path, monkeypatch) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, each worker process writes its values in the folder, and
    /metrics (any worker) adds them up: what gunicorn's workers do."""
    worker = "import sso.metrics as m; m.LOGINS.labels('success').inc(2); m.LOGINS.labels('invalid').inc()"
    environment = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=environment, check=True, timeout=60)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'sso_logins_total{outcome="success"} 4.0' in text
    assert 'sso_logins_total{outcome="invalid"} 2.0' in text


# Audit lines


def test_every_audit_line_of_a_request_has_the_client_address(client, audit_lines) -> None:
    ticket = ticket_of(sign_in(client, *STUDENT, query=f"?service={PORTAL}"))
    client.get(f"/p3/serviceValidate?ticket={ticket}&service={PORTAL}")
    again = ticket_of(client.get(f"/login?service={PORTAL}"))  # from the session
    client.get("/logout")
    events = [line["event"] for line in audit_lines]
    # The sign-in and the ticket it leads to make one line; a ticket from the session, its own.
    assert events == ["login.success", "validate.success", "ticket.issued", "logout"]
    for line in audit_lines:
        assert line["ip"] == "127.0.0.1"
        assert isinstance(line["ts"], float)
        assert line["user"] == "cdurand"
    assert audit_lines[0]["service"] == audit_lines[1]["service"] == audit_lines[2]["service"] == "portail"
    assert audit_lines[0]["ticket"] == ticket[:7] + "…" and audit_lines[2]["ticket"] == again[:7] + "…"
    text = json.dumps(audit_lines)
    assert STUDENT[1] not in text, "never a password"
    assert ticket not in text and ticket[:7] in text, "ticket ids cut to their prefix"


def test_audit_context_never_overrides_what_the_caller_gave() -> None:
    audit = Audit(lambda: 1.0)
    seen: list[tuple[str, dict]] = []
    audit.add_observer(lambda event, record: seen.append((event, dict(record))))
    audit.use_context(lambda: {"ip": "10.0.0.1", "service": "ctx"})
    audit("login.failure", ip="192.0.2.7", service=None, reason="invalid")
    assert seen == [
        (
            "login.failure",
            {"ts": 1.0, "event": "login.failure", "ip": "192.0.2.7", "service": "ctx", "reason": "invalid"},
        )
    ]
    with pytest.raises(ValueError, match="secret"):
        audit("login.failure", password="x")


def test_audit_file_gets_one_json_line_per_event_with_or_without_other_handlers(tmp_path) -> None:
    """The audit's own handler takes lines directly; a handler added by someone else (a test, an
    operator's logging setup) still gets every event as a record, and the file misses none."""
    from sso.audit import configure

    path = tmp_path / "audit.log"
    logger = logging.getLogger("sso.audit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure(str(path))
        audit = Audit(lambda: 1.5)
        audit("login.success", user="cdurand", service="portail", ticket="ST-0123456789")
        seen: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record.getMessage())

        extra = Collect()
        logger.addHandler(extra)
        audit("logout", user="cdurand")
        logger.removeHandler(extra)
        audit("validate.failure", endpoint="validate", code="INVALID_TICKET")
        for handler in logger.handlers:
            handler.close()
        audit("logout", user="after-close")  # a closed file: logged the usual way, no error
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [line["event"] for line in lines][:3] == ["login.success", "logout", "validate.failure"]
        assert lines[0] == {
            "ts": 1.5,
            "event": "login.success",
            "user": "cdurand",
            "service": "portail",
            "ticket": "ST-0123…",
        }
        assert [json.loads(text)["event"] for text in seen] == ["logout"]
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
