"""The persistent mail queue: send, retry after a delay, survive restarts, never send twice."""

from __future__ import annotations

import fcntl
import json
import smtplib
import stat
import threading
from collections import Counter
from pathlib import Path

import pytest

from sso.mailqueue import MailQueue, Message, describe_error

BODY = "Bonjour, voici votre lien : https://sso.univ.fr/cas/compte/lien?t=SECRET-TOKEN"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Mailer:
    """A ``send`` that records deliveries (thread-safe); ``errors`` are raised first, in order."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.sent: list[Message] = []
        self.lock = threading.Lock()
        self.during_send = None

    def __call__(self, message: Message) -> None:
        if self.errors:
            raise self.errors.pop(0)
        if self.during_send is not None:
            self.during_send(message)
        with self.lock:
            self.sent.append(message)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(folder: Path, mailer: Mailer, clock: Clock, **kwargs) -> MailQueue:
    return MailQueue(folder, mailer, retry_delays=(10, 60), max_attempts=3, clock=clock, **kwargs)


def test_put_then_send(tmp_path, clock):
    mailer = Mailer()
    queue = make(tmp_path, mailer, clock)
    message_id = queue.put("jean@gmail.com", "Votre lien", BODY, "<p>lien</p>")
    (path,) = (tmp_path / "queue").iterdir()
    assert path.name == f"{message_id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list((tmp_path / "tmp").iterdir()) == []
    (pending,) = queue.pending()
    assert (pending.to, pending.subject, pending.text, pending.html, pending.attempts) == (
        "jean@gmail.com",
        "Votre lien",
        BODY,
        "<p>lien</p>",
        0,
    )
    assert queue.run_once() == (1, 0)
    assert [m.id for m in mailer.sent] == [message_id]
    assert queue.pending() == [] and list((tmp_path / "queue").iterdir()) == []
    assert queue.run_once() == (0, 0)


def test_messages_go_in_creation_order(tmp_path, clock):
    mailer = Mailer()
    queue = make(tmp_path, mailer, clock)
    ids = []
    for n in range(5):
        clock.now += 0.001
        ids.append(queue.put("a@b.fr", f"n{n}", "x"))
    queue.run_once()
    assert [m.id for m in mailer.sent] == ids


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPDataError(451, b"try again later"),
        smtplib.SMTPRecipientsRefused({"jean@gmail.com": (450, b"mailbox busy")}),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
)
def test_failure_then_retry_after_the_delay(tmp_path, clock, error):
    mailer = Mailer(error)
    queue = make(tmp_path, mailer, clock)
    queue.put("jean@gmail.com", "s", BODY)
    assert queue.run_once() == (0, 1)
    (waiting,) = queue.pending()
    assert (waiting.attempts, waiting.next_try) == (1, clock.now + 10)
    assert waiting.last_error.startswith(type(error).__name__)
    assert queue.run_once(now=clock.now + 9.9) == (0, 0)
    assert queue.run_once(now=clock.now + 10) == (1, 0)
    assert mailer.sent[0].attempts == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (smtplib.SMTPDataError(554, b"5.7.1 message rejected"), "SMTPDataError 554 5.7.1 message rejected"),
        (
            smtplib.SMTPRecipientsRefused({"a@b": (550, b"no"), "c@d": (551, b"no")}),
            "SMTPRecipientsRefused 550 551",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "ConnectionRefusedError errno=111 Connection refused",
        ),
        (OSError(f"could not send {BODY}"), "OSError"),
        (smtplib.SMTPException(f"bad {BODY}"), "SMTPException"),
        (smtplib.SMTPServerDisconnected("line1\nline2"), "SMTPServerDisconnected line1 line2"),
    ],
)
def test_last_error_never_holds_the_body(error, expected):
    message = Message(id="1", to="a@b.fr", subject="s", text=BODY, html=None, created=0.0)
    described = describe_error(error, message)
    assert described == expected
    assert "SECRET-TOKEN" not in described


def test_max_attempts_then_failed_and_retry_failed(tmp_path, clock):
    errors = [smtplib.SMTPServerDisconnected("down")] * 3
    mailer = Mailer(*errors)
    queue = make(tmp_path, mailer, clock)
    queue.put("jean@gmail.com", "s", BODY)
    for delay in (0, 10, 60):
        clock.now += delay
        assert queue.run_once() == (0, 1)
    assert queue.pending() == []
    (failed,) = queue.failed()
    assert failed.attempts == 3 and "SECRET-TOKEN" not in failed.last_error
    assert queue.run_once(now=clock.now + 10_000) == (0, 0)
    assert queue.retry_failed() == 1
    assert queue.failed() == [] and queue.pending()[0].attempts == 0
    assert queue.run_once() == (1, 0)


def test_the_queue_survives_a_restart(tmp_path, clock):
    first = make(tmp_path, Mailer(smtplib.SMTPServerDisconnected("down")), clock)
    first.put("jean@gmail.com", "s1", BODY)
    first.put("marie@free.fr", "s2", BODY)
    assert first.run_once() == (1, 1)
    mailer = Mailer()
    second = make(tmp_path, mailer, clock)  # a new process on the same folder
    (waiting,) = second.pending()
    assert waiting.attempts == 1
    assert second.run_once(now=clock.now + 10) == (1, 0)
    assert [m.subject for m in mailer.sent] == ["s1"]


def test_a_message_locked_by_another_worker_is_skipped(tmp_path, clock):
    mailer = Mailer()
    queue = make(tmp_path, mailer, clock)
    queue.put("jean@gmail.com", "s", BODY)
    (path,) = (tmp_path / "queue").iterdir()
    with open(path, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another process sending it would
        assert queue.run_once() == (0, 0)
    assert queue.run_once() == (1, 0)


def test_a_second_queue_during_a_send_does_not_send_it_again(tmp_path, clock):
    mailer_a, mailer_b = Mailer(), Mailer()
    queue_a, queue_b = make(tmp_path, mailer_a, clock), make(tmp_path, mailer_b, clock)
    for n in range(3):
        queue_a.put("jean@gmail.com", f"s{n}", BODY)
    # While A is in the middle of sending its first message, B runs: the worst moment.
    mailer_a.during_send = lambda message: (setattr(mailer_a, "during_send", None), queue_b.run_once())
    queue_a.run_once()
    queue_b.run_once()
    subjects = [m.subject for m in mailer_a.sent + mailer_b.sent]
    assert sorted(subjects) == ["s0", "s1", "s2"]
    assert [m.subject for m in mailer_a.sent][0] == "s0" and "s0" not in [m.subject for m in mailer_b.sent]


def test_two_queues_in_threads_never_send_twice(tmp_path, clock):
    mailer = Mailer()
    queues = [make(tmp_path, mailer, clock) for _ in range(2)]
    ids = {queues[0].put("jean@gmail.com", f"s{n}", BODY) for n in range(60)}
    barrier = threading.Barrier(len(queues) * 2)

    def work(queue: MailQueue) -> None:
        barrier.wait()
        while queue.pending():
            queue.run_once()

    threads = [threading.Thread(target=work, args=(q,)) for q in queues * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(m.id for m in mailer.sent)
    assert set(counts) == ids
    assert max(counts.values()) == 1


def test_keep_sent(tmp_path, clock):
    queue = make(tmp_path, Mailer(), clock, keep_sent=True)
    message_id = queue.put("jean@gmail.com", "s", BODY)
    queue.run_once()
    assert [m.id for m in queue.sent()] == [message_id]
    assert queue.pending() == []


def test_an_unreadable_file_is_set_aside(tmp_path, clock):
    mailer = Mailer()
    queue = make(tmp_path, mailer, clock)
    (tmp_path / "queue" / "0000000000001-bad.json").write_text("{not json")
    (tmp_path / "queue" / "0000000000002-bad.json").write_text(json.dumps({"id": 1}))
    queue.put("jean@gmail.com", "s", BODY)
    assert queue.run_once() == (1, 0)
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == [
        "0000000000001-bad.json",
        "0000000000002-bad.json",
    ]
    assert queue.failed() == []  # unreadable: not listed as messages


def test_a_bug_in_send_counts_as_an_attempt_and_propagates(tmp_path, clock):
    queue = make(tmp_path, Mailer(ValueError("bug")), clock)
    queue.put("jean@gmail.com", "s", BODY)
    with pytest.raises(ValueError):
        queue.run_once()
    (waiting,) = queue.pending()
    assert (waiting.attempts, waiting.last_error) == (1, "ValueError")


def test_background_worker_sends_on_put(tmp_path):
    delivered = threading.Event()
    sent: list[Message] = []

    def send(message: Message) -> None:
        sent.append(message)
        delivered.set()

    queue = MailQueue(tmp_path, send)
    queue.start(interval=3600)  # only a put can wake it this soon
    try:
        queue.start()  # idempotent
        queue.put("jean@gmail.com", "s", BODY)
        assert delivered.wait(10)
    finally:
        queue.shutdown()
    assert [m.subject for m in sent] == ["s"]


def test_background_worker_survives_a_bug(tmp_path, caplog):
    delivered = threading.Event()
    calls: list[str] = []

    def send(message: Message) -> None:
        calls.append(message.subject)
        if message.subject == "bug":
            raise KeyError("bug")
        delivered.set()

    queue = MailQueue(tmp_path, send, retry_delays=(3600,))
    queue.put("jean@gmail.com", "bug", BODY)
    queue.start(interval=3600)
    try:
        queue.put("jean@gmail.com", "ok", BODY)
        assert delivered.wait(10)
    finally:
        queue.shutdown()
    assert "ok" in calls and "unexpected error" in caplog.text


def test_settings_are_checked(tmp_path):
    with pytest.raises(ValueError):
        MailQueue(tmp_path, Mailer(), retry_delays=())
    with pytest.raises(ValueError):
        MailQueue(tmp_path, Mailer(), max_attempts=0)
