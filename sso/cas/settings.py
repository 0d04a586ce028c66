"""Settings of the CAS protocol (the ``cas`` section of the YAML, typed)."""

from __future__ import annotations

from dataclasses import dataclass

from sso.services import ATTRIBUTE_NAME


@dataclass(frozen=True)
class CasSettings:
    """Protocol choices. A plain dataclass; the YAML loader validates it with pydantic."""

    __pydantic_config__ = {"extra": "forbid"}

    #: Accept ``http://`` proxy callbacks (CAS 3.0 §2.5.4 requires https; for demos only).
    allow_http_proxy_callback: bool = False
    #: Accept proxy callbacks to loopback, private, link-local or otherwise non-public addresses
    #: (host names are resolved and every address is checked). For demos only.
    allow_private_proxy_callback: bool = False
    #: Seconds the proxy callback (``pgtUrl``) has to answer.
    proxy_callback_timeout: float = 5.0
    #: Seconds each back-channel logout request has to answer.
    logout_timeout: float = 5.0
    #: Threads sending back-channel logout requests (per process).
    logout_workers: int = 4
    #: Logout requests waiting to be sent, at most; beyond, new ones are dropped and logged.
    logout_queue_size: int = 1000
    #: Attributes released to a service whose own ``attributes`` list is empty.
    attribute_release_default: tuple[str, ...] = ()
    #: Also release attributes on the CAS 2.0 endpoints (/serviceValidate, /proxyValidate), as
    #: many CAS 2 clients (phpCAS, mod_auth_cas) read them. CAS 3.0 endpoints always do.
    cas2_attributes: bool = False
    #: Longest proxy chain: a PT that already went through this many proxies gets no PGT.
    max_proxy_depth: int = 4
    #: Seconds a SAML 1.1 assertion stays valid (``NotOnOrAfter``), and the clock skew allowed
    #: before ``IssueInstant`` (``NotBefore``).
    saml_assertion_lifetime: float = 30.0

    def __post_init__(self) -> None:
        for key in ("proxy_callback_timeout", "logout_timeout", "saml_assertion_lifetime"):
            value = getattr(self, key)
            if not 0 < value <= 300:
                raise ValueError(f"{key} must be between 0 and 300 seconds, got {value}")
        if not 1 <= self.logout_workers <= 64:
            raise ValueError(f"logout_workers must be between 1 and 64, got {self.logout_workers}")
        if not 1 <= self.logout_queue_size <= 1_000_000:
            raise ValueError(f"logout_queue_size must be between 1 and 1000000, got {self.logout_queue_size}")
        if not 0 <= self.max_proxy_depth <= 16:
            raise ValueError(f"max_proxy_depth must be between 0 and 16, got {self.max_proxy_depth}")
        for name in self.attribute_release_default:
            if not ATTRIBUTE_NAME.match(name):
                raise ValueError(f"attribute_release_default: attribute name {name!r} is not allowed")
