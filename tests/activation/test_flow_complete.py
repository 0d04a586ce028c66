"""Opening and completing a link: nothing changes on opening; one write on success; then USED."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from ldapdir.errors import DirectoryUnavailable
from sso.activation.flow import Completed, InviteRefused, LinkOutcome, Step, StepError
from sso.activation.policy import rules_for_display
from sso.activation.settings import ActivationSettings
from sso.activation.tokens import LinkSigner, Purpose, TokenError, TokenProblem

from .conftest import KEY

PARIS = ZoneInfo("Europe/Paris")
GOOD = "Kx9#mP2$vL7q"
OTHER = "lPq8rTz3Wm5nYv"


@pytest.fixture
def link(flow, outbox):
    """Send a link to an account by user name; return its token."""

    def send(user: str) -> str:
        assert flow.request_link_sync(user, Purpose.RESET, "fr") is LinkOutcome.SENT
        return parse_qs(urlsplit(outbox.notices[-1].link).query)["t"][0]

    return send


def problem(call) -> TokenError:
    with pytest.raises(TokenError) as info:
        call()
    return info.value


def refused(call) -> tuple[str, ...]:
    with pytest.raises(StepError) as info:
        call()
    return info.value.problems


def test_opening_changes_nothing(flow, link, directory):
    token = link("mmartin")
    first = flow.open_link(token)
    second = flow.open_link(token)
    assert first == second
    assert directory.writes == 0
    assert first.steps == (Step.CHARTER, Step.CONSENT, Step.PASSWORD)
    assert (first.purpose, first.first_activation, first.account.user) == (
        Purpose.ACTIVATION,
        True,
        "mmartin",
    )
    assert first.rules == tuple(rules_for_display(ActivationSettings().policy))
    assert {"marie", "martin", "mmartin"} <= set(first.personal)


def test_a_reset_has_only_the_password_step(flow, link):
    view = flow.open_link(link("jdupont"))
    assert (view.purpose, view.first_activation, view.steps) == (Purpose.RESET, False, (Step.PASSWORD,))


def test_without_charter_or_consent_configured_activation_is_only_the_password(make_flow, link, outbox):
    flow = make_flow(ActivationSettings())
    flow.request_link_sync("mmartin", Purpose.ACTIVATION, "fr")
    token = parse_qs(urlsplit(outbox.notices[-1].link).query)["t"][0]
    assert flow.open_link(token).steps == (Step.PASSWORD,)


def test_successful_activation(flow, link, directory, outbox, audit, clock):
    token = link("mmartin")
    done = flow.complete(token, GOOD, GOOD, charter_accepted=True, consent=True, locale="en")
    assert done == Completed(
        user="mmartin",
        purpose=Purpose.ACTIVATION,
        first_activation=True,
        at=datetime(2026, 6, 15, 12, 0, tzinfo=PARIS),
        attributes_written=True,
    )
    assert directory.password_writes == [("mmartin", GOOD)]
    assert directory.updates == [
        (
            "mmartin",
            {
                "univActivationDate": ["20260615100000Z"],
                "supannRessourceEtatDate": ["{COMPTE}A:SupannActif::20260615"],
                "univCharte": ["2025-09;20260615100000Z"],
                "univConsentAnnuaire": ["TRUE"],
            },
        )
    ]
    confirmation = outbox.notices[-1]
    assert (confirmation.kind, confirmation.to, confirmation.link, confirmation.locale) == (
        "password_changed",
        "marie.martin@free.fr",
        None,
        "en",
    )
    (event,) = audit.named("activation.password_set")
    assert event == {
        "user": "mmartin",
        "purpose": "activation",
        "first_activation": "yes",
        "charter_version": "2025-09",
        "consent": "yes",
    }
    # The same link no longer works: the password state changed.
    assert problem(lambda: flow.complete(token, OTHER, OTHER, True, True)).reason is TokenProblem.USED
    assert problem(lambda: flow.open_link(token)).reason is TokenProblem.USED
    assert len(directory.password_writes) == 1


def test_successful_reset_writes_only_the_password(flow, link, directory, outbox):
    token = link("jdupont")
    done = flow.complete(token, GOOD, GOOD, charter_accepted=False, consent=None)
    assert (done.purpose, done.first_activation, done.attributes_written) == (Purpose.RESET, False, True)
    assert directory.password_writes == [("jdupont", GOOD)]
    assert directory.updates == []
    assert outbox.kinds()[-1] == ("password_changed", "jdupont")


def test_refusing_consent_writes_no_consent(flow, link, directory):
    flow.complete(link("mmartin"), GOOD, GOOD, charter_accepted=True, consent=False)
    (_, changes) = directory.updates[0]
    assert "univConsentAnnuaire" not in changes


@pytest.mark.parametrize(
    ("password", "confirm", "charter", "problems"),
    [
        (GOOD, OTHER, True, ("mismatch",)),
        (GOOD, GOOD, False, ("charter_required",)),
        ("azerty", "azerty", True, ("length", "classes", "not_common", "strength")),
        ("Marie.Martin.2024!", "Marie.Martin.2024!", True, ("not_personal",)),
        ("", "", False, ("charter_required", "length", "classes", "not_common", "not_personal", "strength")),
        (GOOD, GOOD + "\x00", True, ("mismatch",)),
        ("x" * 129, "x" * 129, True, ("max_length", "strength")),
    ],
)
def test_refusals_keep_the_link_usable(flow, link, directory, audit, password, confirm, charter, problems):
    token = link("mmartin")
    assert refused(lambda: flow.complete(token, password, confirm, charter, True)) == problems
    assert directory.writes == 0
    assert audit.named("activation.refused")[0]["problems"] == ",".join(problems)
    assert flow.open_link(token).account.user == "mmartin"
    flow.complete(token, GOOD, GOOD, True, True)
    assert directory.password_writes == [("mmartin", GOOD)]


def test_a_directory_refusal_keeps_the_link_usable(flow, link, directory):
    token = link("jdupont")
    directory.reject = "in_history"
    assert refused(lambda: flow.complete(token, GOOD, GOOD, False, None)) == ("directory_refused:in_history",)
    assert directory.writes == 0
    directory.reject = None
    flow.complete(token, GOOD, GOOD, False, None)
    assert directory.password_writes == [("jdupont", GOOD)]


def test_an_unavailable_directory_propagates_and_keeps_the_link(flow, link, directory):
    token = link("jdupont")
    directory.down = True
    with pytest.raises(DirectoryUnavailable):
        flow.complete(token, GOOD, GOOD, False, None)
    with pytest.raises(DirectoryUnavailable):
        flow.open_link(token)
    directory.down = False
    flow.complete(token, GOOD, GOOD, False, None)
    assert len(directory.password_writes) == 1


def test_attributes_failing_after_the_password_is_reported_not_raised(flow, link, directory, audit):
    token = link("mmartin")
    directory.fail_update = True
    done = flow.complete(token, GOOD, GOOD, True, True)
    assert done.attributes_written is False
    assert directory.password_writes == [("mmartin", GOOD)]
    assert audit.named("activation.attributes_failed")[0]["user"] == "mmartin"


def test_expired_link(flow, link, clock):
    token = link("jdupont")
    clock.advance(hours=12)  # 00:00 the next day in Paris
    error = problem(lambda: flow.open_link(token))
    assert (error.reason, error.purpose) == (TokenProblem.EXPIRED, Purpose.RESET)
    assert problem(lambda: flow.complete(token, GOOD, GOOD, False, None)).reason is TokenProblem.EXPIRED


@pytest.mark.parametrize("change", ["expired", "locked", "gone", "renamed"])
def test_the_account_closed_since_the_link_was_sent(flow, link, directory, change):
    from ldapdir.model import AccountState

    token = link("jdupont")
    current = directory.accounts["jdupont"]
    if change == "gone":
        del directory.accounts["jdupont"]
    elif change == "renamed":
        del directory.accounts["jdupont"]
        directory.add(replace(current, user="jdupont2"))
    else:
        directory.add(replace(current, state=AccountState(change)))
    error = problem(lambda: flow.open_link(token))
    assert (error.reason, error.purpose) == (TokenProblem.ACCOUNT_CLOSED, Purpose.RESET)
    assert directory.writes == 0


def test_a_password_changed_elsewhere_makes_the_link_used(flow, link, directory):
    token = link("jdupont")
    directory.set_password(directory.accounts["jdupont"], OTHER)  # e.g. changed by an administrator
    assert problem(lambda: flow.open_link(token)).reason is TokenProblem.USED


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "x" * 5000])
def test_bad_tokens(flow, token):
    assert problem(lambda: flow.open_link(token)).reason is TokenProblem.INVALID


def test_a_link_signed_with_another_key_is_invalid(flow, directory, settings, clock):
    foreign = LinkSigner(["another-server-key" * 2], settings).make(
        directory.accounts["jdupont"], Purpose.RESET, clock()
    )
    assert problem(lambda: flow.open_link(foreign.token)).reason is TokenProblem.INVALID


def test_concurrent_completions_write_once(flow, link, directory):
    token = link("jdupont")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def submit() -> None:
        barrier.wait()
        try:
            flow.complete(token, GOOD, GOOD, False, None)
            outcomes.append("done")
        except TokenError as error:
            outcomes.append(error.reason.value)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["done", "used", "used", "used"]
    assert len(directory.password_writes) == 1


def test_no_password_in_logs_or_audit(flow, link, audit, caplog, directory):
    caplog.set_level(logging.DEBUG)
    token = link("mmartin")
    with pytest.raises(StepError):
        flow.complete(token, GOOD, GOOD + "x", True, True)
    directory.fail_update = True
    flow.complete(token, GOOD, GOOD, True, True)
    for secret in (GOOD, token):
        assert secret not in caplog.text
        assert secret not in str(audit.events)


def test_invitation(flow, directory, outbox, clock):
    link = flow.invite(directory.accounts["mmartin"], "fr")
    assert (link.purpose, link.user) == (Purpose.INVITATION, "mmartin")
    assert link.expires == datetime(2026, 6, 16, 23, 59, 59, tzinfo=PARIS)
    notice = outbox.notices[-1]
    assert (notice.kind, notice.expires, notice.link) == (
        "invitation",
        link.expires,
        flow.link_url(link.token),
    )
    view = flow.open_link(link.token)
    assert (view.purpose, view.steps) == (Purpose.INVITATION, (Step.CHARTER, Step.CONSENT, Step.PASSWORD))
    assert flow.complete(link.token, GOOD, GOOD, True, None).first_activation is True
    assert len(directory.updates) == 1


def test_invitation_without_sending(flow, directory, outbox):
    link = flow.invite(directory.accounts["nomail"], "fr", send=False)
    assert outbox.notices == []
    assert flow.open_link(link.token).account.user == "nomail"


@pytest.mark.parametrize(
    ("user", "outcome"),
    [("pold", LinkOutcome.EXPIRED), ("locked", LinkOutcome.LOCKED), ("nomail", LinkOutcome.NO_MAIL)],
)
def test_invitation_refused(flow, directory, user, outcome):
    with pytest.raises(InviteRefused) as info:
        flow.invite(directory.accounts[user], "fr")
    assert info.value.outcome is outcome


def test_key_rotation_keeps_sent_links_working(make_flow, settings, link, directory):
    token = link("jdupont")  # signed with KEY
    rotated = make_flow(settings, signer=LinkSigner(["a-brand-new-key-" * 2, KEY], settings))
    rotated.complete(token, GOOD, GOOD, False, None)
    assert directory.password_writes == [("jdupont", GOOD)]
