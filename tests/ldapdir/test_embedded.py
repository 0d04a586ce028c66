"""The embedded directory's own promises: files, persistence, no clear passwords, threads."""

from __future__ import annotations

import json
import logging
import shutil
import stat
import threading
from pathlib import Path

import pytest

from ldapdir import AccountState, PasswordCheck
from ldapdir.embedded import EmbeddedDirectory
from ldapdir.ldif import LdifError
from tests.support.slapd import DEMO_LDIF, directory_settings

SETTINGS = directory_settings()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    copy = tmp_path / "data" / "directory.ldif"
    copy.parent.mkdir()
    shutil.copy(DEMO_LDIF, copy)
    copy.chmod(0o444)
    return copy


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "var" / "directory-state.json"


def open_directory(data_file: Path, state_file: Path | None) -> EmbeddedDirectory:
    return EmbeddedDirectory(SETTINGS, data_file, state_file)


def test_changes_go_to_the_state_file_only(data_file: Path, state_file: Path) -> None:
    original = data_file.read_bytes()
    with open_directory(data_file, state_file) as directory:
        account = directory.find("lpetit")
        assert account is not None
        directory.set_password(account, "Premier-Envol-2026")
        directory.update(account, {"displayName": ["Léa P."]})
    assert data_file.read_bytes() == original
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["format"] == 1
    changed = state["entries"]["uid=lpetit,ou=people,dc=univ-demo,dc=fr"]
    assert changed["displayName"] == ["Léa P."]
    assert changed["userPassword"][0].startswith("{SSHA}")
    assert "Premier-Envol-2026" not in state_file.read_text(encoding="utf-8")
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert [path.name for path in state_file.parent.iterdir()] == [state_file.name]  # no temporary left


def test_without_a_state_file_changes_stay_in_memory(data_file: Path, tmp_path: Path) -> None:
    with open_directory(data_file, None) as directory:
        account = directory.find("lpetit")
        assert account is not None
        directory.set_password(account, "Premier-Envol-2026")
        assert directory.check_password(account, "Premier-Envol-2026") is PasswordCheck.VALID
    with open_directory(data_file, None) as directory:
        again = directory.find("lpetit")
        assert again is not None and again.state is AccountState.NEVER_ACTIVATED
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]


def test_instances_do_not_share_data(data_file: Path) -> None:
    # Each instance has its own ldap3 Server (the mock's data lives there).
    with open_directory(data_file, None) as first, open_directory(data_file, None) as second:
        account = first.find("lpetit")
        assert account is not None
        first.set_password(account, "Premier-Envol-2026")
        other = second.find("lpetit")
        assert other is not None and other.state is AccountState.NEVER_ACTIVATED


@pytest.mark.parametrize(
    "content", ["not json", "[]", '{"format": 2, "entries": {}}', '{"format": 1, "entries": []}']
)
def test_an_unreadable_state_file_stops_the_start(data_file: Path, state_file: Path, content: str) -> None:
    state_file.parent.mkdir(parents=True)
    state_file.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="state file"):
        open_directory(data_file, state_file)


def test_changes_to_vanished_entries_are_skipped(
    data_file: Path, state_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file.parent.mkdir(parents=True)
    state_file.write_text(
        json.dumps(
            {
                "format": 1,
                "entries": {
                    "uid=gone,ou=people,dc=univ-demo,dc=fr": {"displayName": ["Gone"]},
                    "uid=cdurand,ou=people,dc=univ-demo,dc=fr": {"displayName": ["Camille D."]},
                },
            }
        ),
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING), open_directory(data_file, state_file) as directory:
        account = directory.find("cdurand")
        assert account is not None and account.first("displayName") == "Camille D."
    assert "uid=gone" in caplog.text


def test_clear_text_passwords_in_the_data_never_work(tmp_path: Path) -> None:
    data = tmp_path / "clear.ldif"
    data.write_text(
        "dn: uid=clair,ou=people,dc=univ-demo,dc=fr\nobjectClass: inetOrgPerson\nuid: clair\ncn: C\nsn: C\n"
        "userPassword: secret-en-clair\n\n"
        "dn: uid=brut,ou=people,dc=univ-demo,dc=fr\nobjectClass: inetOrgPerson\nuid: brut\ncn: B\nsn: B\n"
        "userPassword: {CLEARTEXT}secret-en-clair\n",
        encoding="utf-8",
    )
    with open_directory(data, None) as directory:
        for user in ("clair", "brut"):
            account = directory.find(user)
            assert account is not None
            assert directory.check_password(account, "secret-en-clair") is PasswordCheck.INVALID


def test_bad_ldif_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "bad.ldif"
    data.write_text("dn: uid=a,dc=x\nchangetype: delete\n", encoding="utf-8")
    with pytest.raises(LdifError):
        open_directory(data, None)


def test_concurrent_use(data_file: Path, state_file: Path) -> None:
    directory = open_directory(data_file, state_file)
    errors: list[BaseException] = []
    users = {"cdurand": "Soleil-Vert-2026", "jdupont": "Marche-Bleu-2026", "xss": "Chevron-Test-2026"}

    def work(worker: int) -> None:
        try:
            for round_ in range(20):
                for user, password in users.items():
                    account = directory.find(user)
                    assert account is not None and account.user == user
                    assert directory.check_password(account, password) is PasswordCheck.VALID
                if worker == 0:
                    target = directory.find("lpetit")
                    assert target is not None
                    directory.update(target, {"displayName": [f"Léa {round_}"]})
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    directory.close()
    assert errors == []
    with open_directory(data_file, state_file) as reopened:
        account = reopened.find("lpetit")
        assert account is not None and account.first("displayName") == "Léa 19"
