"""Asking for a link: the same answer for every identifier, the mail sent in the background."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from ldapdir.model import Account
from sso.activation.flow import ActivationFlow, LinkOutcome, LinkRequestResult, mask_mail
from sso.activation.tokens import LinkSigner, Purpose

from .conftest import KEY, LINK_BASE

PARIS = ZoneInfo("Europe/Paris")
TONIGHT = datetime(2026, 6, 15, 23, 59, 59, tzinfo=PARIS)
IDENTIFIERS = ["jdupont", "JDupont@etu.univ.fr ", "mmartin", "nobody", "pold", "nomail", "locked"]


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["t"][0]


@pytest.mark.parametrize("wording", [Purpose.ACTIVATION, Purpose.RESET])
def test_every_identifier_gets_the_same_answer(flow, outbox, wording):
    results = {identifier: flow.request_link(identifier, wording, "fr") for identifier in IDENTIFIERS}
    flow.drain()
    assert set(results.values()) == {LinkRequestResult(deadline=TONIGHT, hint=None)}
    # Only existing, usable accounts with a personal address got a mail; the purpose follows the
    # account, not the page.
    assert sorted(outbox.kinds()) == [("activation", "mmartin"), ("reset", "jdupont"), ("reset", "jdupont")]


def test_the_mail_carries_the_promised_deadline_and_a_working_link(flow, outbox, signer, clock):
    result = flow.request_link("mmartin", Purpose.RESET, "en")
    flow.drain()
    (notice,) = outbox.notices
    assert (notice.kind, notice.to, notice.user, notice.locale) == (
        "activation",
        "marie.martin@free.fr",
        "mmartin",
        "en",
    )
    assert notice.display_name == "Marie Martin"
    assert notice.expires == result.deadline == TONIGHT
    assert notice.link.startswith(LINK_BASE + "?t=")
    claims = signer.load(token_of(notice.link), Purpose.ACTIVATION, clock())
    assert (claims.user, claims.expires) == ("mmartin", TONIGHT)


def test_the_answer_does_not_wait_for_the_directory(flow, directory, outbox):
    gate = threading.Event()
    find = directory.find

    def slow_find(identifier, today=None):
        assert gate.wait(10), "the test released the directory"
        return find(identifier, today)

    directory.find = slow_find
    result = flow.request_link("jdupont", Purpose.RESET, "fr")  # returns while the lookup is blocked
    assert result == LinkRequestResult(TONIGHT, None)
    assert outbox.notices == []
    gate.set()
    flow.drain()
    assert outbox.kinds() == [("reset", "jdupont")]


def test_a_failing_directory_or_mailer_changes_nothing_in_the_answer(flow, directory, outbox, audit, caplog):
    directory.down = True
    assert flow.request_link("jdupont", Purpose.RESET, "fr") == LinkRequestResult(TONIGHT, None)
    flow.drain()
    directory.down = False
    outbox.fail = True
    assert flow.request_link("jdupont", Purpose.RESET, "fr") == LinkRequestResult(TONIGHT, None)
    flow.drain()
    assert outbox.notices == []
    reasons = [fields["reason"] for fields in audit.named("activation.link_not_sent")]
    assert reasons == ["directory_unavailable", "not_delivered"]


@pytest.mark.parametrize(
    ("identifier", "outcome"),
    [
        ("jdupont", LinkOutcome.SENT),
        ("mmartin", LinkOutcome.SENT),
        ("pexp", LinkOutcome.SENT),
        ("nobody", LinkOutcome.UNKNOWN),
        ("pold", LinkOutcome.EXPIRED),
        ("nomail", LinkOutcome.NO_MAIL),
        ("locked", LinkOutcome.LOCKED),
    ],
)
def test_outcomes_are_audited(flow, audit, identifier, outcome):
    assert flow.request_link_sync(identifier, Purpose.RESET, "fr") is outcome
    if outcome is LinkOutcome.SENT:
        assert audit.named("activation.link_sent")[0]["user"] == identifier
    else:
        (fields,) = audit.named("activation.link_not_sent")
        assert fields["reason"] == outcome.value
        # An unknown identifier is often a password typed in the wrong field: never recorded.
        assert "nobody" not in str(audit.events)


def test_locked_accounts_may_reset_when_configured(make_flow, settings, outbox):
    flow = make_flow(replace(settings, reset_locked=True))
    assert flow.request_link_sync("locked", Purpose.RESET, "fr") is LinkOutcome.SENT


@pytest.mark.parametrize(
    "identifier",
    ["", "   ", "\x00", "a\nb", "*)(uid=*", "jdupont\r\nBcc: x@evil", "x" * 10_000, "\ud800", "é" * 300],
)
def test_hostile_identifiers(flow, directory, outbox, identifier):
    finds = directory.finds
    assert flow.request_link(identifier, Purpose.RESET, "fr") == LinkRequestResult(TONIGHT, None)
    flow.drain()
    assert outbox.notices == []
    if not identifier.strip() or len(identifier) > 256 or identifier == "\ud800":
        assert directory.finds == finds  # not even looked up


def test_links_per_account_per_hour(flow, outbox, clock, audit):
    outcomes = [
        flow.request_link_sync(identifier, Purpose.RESET, "fr")
        for identifier in ["jdupont", "JDUPONT", "jdupont@etu.univ.fr", "jdupont"]
    ]
    assert outcomes == [LinkOutcome.SENT] * 3 + [LinkOutcome.RATE_LIMITED]
    assert flow.request_link_sync("mmartin", Purpose.RESET, "fr") is LinkOutcome.SENT  # per account
    clock.advance(minutes=59)
    assert flow.request_link_sync("jdupont", Purpose.RESET, "fr") is LinkOutcome.RATE_LIMITED
    clock.advance(minutes=1)
    assert flow.request_link_sync("jdupont", Purpose.RESET, "fr") is LinkOutcome.SENT
    assert len(outbox.notices) == 5


def test_the_mail_hint_is_off_by_default_and_masked_when_on(make_flow, settings, flow):
    assert flow.request_link("jdupont", Purpose.RESET, "fr").hint is None
    hinting = make_flow(replace(settings, show_mail_hint=True))
    assert hinting.request_link("jdupont", Purpose.RESET, "fr").hint == "j•••@gmail.com"
    for identifier in ("nobody", "pold", "nomail"):
        assert hinting.request_link(identifier, Purpose.RESET, "fr").hint is None


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jean.dupont@gmail.com", "j•••@gmail.com"),
        ("jo@free.fr", "•••@free.fr"),
        ("bad", "•••"),
        ("@x.fr", "•••@x.fr"),
    ],
)
def test_mask_mail(address, masked):
    assert mask_mail(address) == masked


def test_the_link_base_comes_from_the_configuration(make_flow, settings, outbox):
    flow = make_flow(settings, link_base="https://ent.univ.fr/cas/compte/lien?lang=fr")
    flow.request_link_sync("jdupont", Purpose.RESET, "fr")
    parts = urlsplit(outbox.notices[0].link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "ent.univ.fr", "/cas/compte/lien")
    assert parse_qs(parts.query)["lang"] == ["fr"]


@pytest.mark.parametrize(
    "base", ["/cas/compte/lien", "ftp://x/y", "https://x/y#frag", "javascript:alert(1)", ""]
)
def test_bad_link_bases_are_refused(directory, settings, outbox, base):
    with pytest.raises(ValueError, match="link_base"):
        ActivationFlow(directory, LinkSigner([KEY], settings), settings, outbox, base)


def test_the_page_may_only_ask_for_activation_or_reset(flow):
    with pytest.raises(ValueError):
        flow.request_link("jdupont", Purpose.INVITATION, "fr")


def test_tokens_never_reach_logs_or_audit(flow, outbox, audit, caplog):
    caplog.set_level(logging.DEBUG)
    flow.request_link("jdupont", Purpose.RESET, "fr")
    flow.drain()
    token = token_of(outbox.notices[0].link)
    assert token not in caplog.text
    assert token not in str(audit.events)


def test_shutdown_finishes_queued_requests(flow, outbox):
    for _ in range(3):
        flow.request_link("jdupont", Purpose.RESET, "fr")
    flow.shutdown()
    assert len(outbox.notices) == 3
    flow.request_link("mmartin", Purpose.RESET, "fr")  # starts again on demand
    flow.drain()
    assert len(outbox.notices) == 4


def test_a_failing_job_does_not_stop_the_worker(flow, directory, outbox, caplog):
    find = directory.find
    calls = []

    def buggy_find(identifier, today=None) -> Account | None:
        calls.append(identifier)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return find(identifier, today)

    directory.find = buggy_find
    flow.request_link("jdupont", Purpose.RESET, "fr")
    flow.request_link("mmartin", Purpose.RESET, "fr")
    flow.drain()
    assert outbox.kinds() == [("activation", "mmartin")]
    assert "link request failed" in caplog.text


def test_a_full_queue_drops_the_request_with_the_same_answer(make_flow, settings, directory, audit):
    gate = threading.Event()
    find = directory.find
    directory.find = lambda identifier, today=None: gate.wait(10) and find(identifier, today)
    flow = make_flow(replace(settings, queue_size=1), workers=1)
    answers = {flow.request_link("jdupont", Purpose.RESET, "fr") for _ in range(5)}
    gate.set()
    flow.drain()
    assert answers == {LinkRequestResult(TONIGHT, None)}
    assert {"reason": "busy"} in audit.named("activation.link_not_sent")


@freeze_time("2026-03-29 21:30:00")  # 23:30 in Paris, the day summer time starts
def test_the_default_clock_is_the_real_time(directory, settings, outbox):
    flow = ActivationFlow(directory, LinkSigner([KEY], settings), settings, outbox, LINK_BASE)
    try:
        result = flow.request_link("jdupont", Purpose.RESET, "fr")
        flow.drain()
    finally:
        flow.shutdown()
    assert result.deadline == datetime(2026, 3, 30, 23, 59, 59, tzinfo=PARIS)  # minimum validity
    assert outbox.notices[0].expires == result.deadline
    assert datetime.now(UTC) == datetime(2026, 3, 29, 21, 30, tzinfo=UTC)
