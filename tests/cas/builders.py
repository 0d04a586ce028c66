"""Values the response and SAML tests build on: one service, one validation success."""

from __future__ import annotations

from sso.cas.validation import Success
from sso.services import ServiceRegistry, ServiceSettings
from sso.tickets.model import ServiceTicket

SERVICE_URL = "https://s.example.org/app"
SERVICE = ServiceRegistry([ServiceSettings(id="s", name="S", url_pattern=r"https://s\.example\.org/.*")]).get(
    "s"
)


def make_success(**kw: object) -> Success:
    """A validation success for ``ada`` at :data:`SERVICE`; ``kw`` replaces any field."""
    ticket = ServiceTicket(
        id="ST-abc",
        service=SERVICE_URL,
        service_id="s",
        user="ada",
        attributes={},
        tgt_id="TGT-x",
        primary=True,
        expires=1_700_000_000.0,
        auth_time=1_700_000_000.0 - 60,
        session_expires=1_700_000_000.0 + 8 * 3600,
    )
    values: dict[str, object] = {
        "user": "ada",
        "attributes": {"mail": ("ada@univ-demo.fr",), "eduPersonAffiliation": ("student", "member")},
        "pgt_iou": None,
        "proxies": (),
        "service": SERVICE,
        "primary": True,
        "auth_time": 1_700_000_000.0,
        "ticket": ticket,
    }
    return Success(**(values | kw))  # type: ignore[arg-type]
