"""The service registry: whole-URL matching, hostile URLs, configuration errors."""

from __future__ import annotations

import pydantic
import pytest

from sso.services import ServiceRegistry, ServiceSettings, parse_safe_url

ENT = ServiceSettings(id="ent", name="ENT", url_pattern=r"https://ent\.univ-demo\.fr/.*")
MOODLE = ServiceSettings(
    id="moodle",
    name="Cours en ligne",
    url_pattern=r"https://moodle\.univ-demo\.fr(/.*)?",
    attributes=("uid", "mail"),
)
CATCH_ALL = ServiceSettings(
    id="any-univ", name="Any", url_pattern=r"https://[a-z0-9.-]+\.univ-demo\.fr(/.*)?"
)


@pytest.fixture
def registry() -> ServiceRegistry:
    return ServiceRegistry([ENT, MOODLE, CATCH_ALL])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ent.univ-demo.fr/", "ent"),
        ("https://ent.univ-demo.fr/portail?x=1&y=%2F#frag", "ent"),
        ("https://moodle.univ-demo.fr", "moodle"),
        ("https://moodle.univ-demo.fr/login/index.php?authCAS=CAS", "moodle"),
        ("https://moodle.univ-demo.fr/x", "moodle"),  # the catch-all matches too: first wins
        ("https://notes.univ-demo.fr/", "any-univ"),
        ("https://ent.univ-demo.fr/%2e%2e/admin", "ent"),  # encoded path: the service's own business
    ],
)
def test_match(registry: ServiceRegistry, url: str, expected: str) -> None:
    service = registry.match(url)
    assert service is not None and service.id == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://ent.univ-demo.fr.attacker.example/",
        "https://ent.univ-demo.fr.attacker.example",
        "https://attacker.example/https://ent.univ-demo.fr/",
        "https://attacker.example/?https://ent.univ-demo.fr/",
        "https://ent.univ-demo.fr@attacker.example/",
        "https://user:pass@ent.univ-demo.fr/",
        "https://attacker.example%2F@ent.univ-demo.fr/",
        "https://ent%2Euniv-demo.fr/",
        "https://ent.univ-demo.fr%40attacker.example/",
        "https://ent.univ-demo.fr\\@attacker.example/",
        "https:\\\\ent.univ-demo.fr/",
        "https:/\\attacker.example/",
        "//ent.univ-demo.fr/",
        "https:///ent.univ-demo.fr/",
        "javascript:alert(1)//https://ent.univ-demo.fr/",
        "JAVASCRIPT://ent.univ-demo.fr/%0aalert(1)",
        "data:text/html,https://ent.univ-demo.fr/",
        "ftp://ent.univ-demo.fr/",
        "https://ent.univ-demo.fr/\nLocation: https://attacker.example/",
        "https://ent.univ-demo.fr/\r\n",
        "https://ent.univ-demo.fr/ x",
        "https://ent.univ-demo.fr/\x00",
        "https://ent.univ-demo.fr/\t",
        "https://ent.univ-demo.fr/\u2028",
        " https://ent.univ-demo.fr/",
        "https://ént.univ-demo.fr/",
        "https://ent.univ-dеmo.fr/",  # Cyrillic e
        "https://ent.univ-demo.fr:99999/",
        "https://ent.univ-demo.fr:abc/",
        "https://ent.univ-demo.fr/" + "a" * 2048,
        "",
        "https://",
    ],
)
def test_hostile_urls_never_match(registry: ServiceRegistry, url: str) -> None:
    assert registry.match(url) is None


def test_pattern_must_match_the_whole_url() -> None:
    registry = ServiceRegistry(
        [ServiceSettings(id="s", name="S", url_pattern=r"https://s\.example\.org/app")]
    )
    assert registry.match("https://s.example.org/app") is not None
    assert registry.match("https://s.example.org/app/extra") is None
    assert registry.match("https://s.example.org/appendix") is None
    assert registry.match("https://evil.example/?https://s.example.org/app") is None


def test_get_iter_len(registry: ServiceRegistry) -> None:
    assert registry.get("moodle") is not None
    assert registry.get("moodle").attributes == ("uid", "mail")  # type: ignore[union-attr]
    assert registry.get("nope") is None
    assert [s.id for s in registry] == ["ent", "moodle", "any-univ"]
    assert len(registry) == 3


def test_duplicate_ids_refused() -> None:
    with pytest.raises(ValueError, match="'ent' is used twice"):
        ServiceRegistry([ENT, ServiceSettings(id="ent", name="Other", url_pattern="https://x/")])


def test_ipv6_and_ports() -> None:
    registry = ServiceRegistry([ServiceSettings(id="v6", name="V6", url_pattern=r"https://\[::1\]:8443/.*")])
    assert registry.match("https://[::1]:8443/app") is not None
    assert parse_safe_url("https://[::1]/") is not None
    assert parse_safe_url("https://[zz]/") is None


def test_callback_pattern() -> None:
    registry = ServiceRegistry(
        [
            ServiceSettings(
                id="portail",
                name="Portail",
                url_pattern=r"https://portail\.univ-demo\.fr/.*",
                proxy=True,
                proxy_callback_pattern=r"https://portail\.univ-demo\.fr/pgt",
            )
        ]
    )
    service = registry.get("portail")
    assert service is not None
    assert service.accepts_callback("https://portail.univ-demo.fr/pgt")
    assert not service.accepts_callback("https://portail.univ-demo.fr/pgtx")
    assert registry.get("portail") is not None and ENT.proxy_callback_pattern == ""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url_pattern": "https://(unclosed"}, "url_pattern is not a valid regular expression"),
        ({"proxy_callback_pattern": "[a-"}, "proxy_callback_pattern is not a valid regular expression"),
        ({"url_pattern": ""}, "url_pattern must not be empty"),
        ({"id": "Bad Id"}, "must be 1 to 63 characters"),
        ({"id": ""}, "must be 1 to 63 characters"),
        ({"name": "  "}, "name must not be empty"),
        ({"attributes": ("mail", "<script>")}, "attribute name '<script>' is not allowed"),
        ({"attributes": ("1abc",)}, "attribute name '1abc' is not allowed"),
        ({"home_url": "javascript:alert(1)"}, "home_url must be an absolute http"),
        ({"logout_url": "ftp://x/"}, "logout_url must be an absolute http"),
    ],
)
def test_bad_settings(fields: dict, message: str) -> None:
    values = {"id": "svc", "name": "Service", "url_pattern": r"https://svc\.example\.org/.*"} | fields
    with pytest.raises(ValueError, match=message):
        ServiceSettings(**values)


def test_settings_validate_through_pydantic() -> None:
    adapter = pydantic.TypeAdapter(tuple[ServiceSettings, ...])
    services = adapter.validate_python(
        [{"id": "mail", "name": "Mail", "url_pattern": r"https://mail\.x\.fr(/.*)?", "attributes": ["uid"]}]
    )
    assert services[0].attributes == ("uid",)
    with pytest.raises(pydantic.ValidationError, match="not a valid regular expression"):
        adapter.validate_python([{"id": "mail", "name": "Mail", "url_pattern": "("}])
    with pytest.raises(pydantic.ValidationError, match="extra|Extra|unexpected"):
        adapter.validate_python([{"id": "mail", "name": "Mail", "url_pattern": "x", "colour": "red"}])
