"""The CAS protocol as plain functions (no Flask): request checks, login decisions, validation,
proxying, single logout and the XML/JSON/SAML responses. The views in :mod:`sso.web` translate
HTTP to these calls and back.

Modules: :mod:`~sso.cas.params`, :mod:`~sso.cas.login`, :mod:`~sso.cas.validation`,
:mod:`~sso.cas.proxy`, :mod:`~sso.cas.logout`, :mod:`~sso.cas.responses`, :mod:`~sso.cas.saml`,
:mod:`~sso.cas.settings`, :mod:`~sso.cas.errors`.
"""

from sso.cas.errors import CasError, Code

__all__ = ["CasError", "Code"]
