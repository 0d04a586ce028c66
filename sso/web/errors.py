"""Error pages: French, no stack trace, the right 4xx/5xx. The CAS endpoints answer their own failures."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ldapdir import DirectoryUnavailable
from sso.tickets.registry import RegistryUnavailable
from sso.web.pages import message_page

log = logging.getLogger(__name__)


def _unavailable(error: Exception) -> Response:
    log.error("dependency unavailable on %s: %s", request.endpoint, type(error).__name__)
    response = message_page(
        _("Service momentanément indisponible"),
        _(
            "Le service d'authentification ne peut pas répondre pour le moment. Réessayez dans quelques minutes."
        ),
        503,
    )
    response.headers["Retry-After"] = "30"
    return response


def _csrf(error: CSRFError) -> Response:
    return message_page(
        _("Page expirée"),
        _(
            "Cette page a expiré ou a été ouverte dans un autre onglet. Revenez en arrière, rechargez la page et réessayez."
        ),
        400,
    )


def _http(error: HTTPException) -> Response:
    titles = {
        400: _("Requête invalide"),
        404: _("Page introuvable"),
        405: _("Méthode non autorisée"),
        413: _("Requête trop volumineuse"),
        429: _("Trop de requêtes"),
    }
    if error.response is not None:  # a page already made for this error (e.g. the throttled sign-in form)
        return error.response  # type: ignore[return-value]
    status = error.code or 500
    if status >= 500:
        return _internal(error)
    title = titles.get(status, _("Requête refusée"))
    return message_page(title, _("Votre demande n'a pas pu être traitée."), status)


def _internal(error: Exception) -> Response:
    log.exception("unexpected error on %s", request.endpoint, exc_info=error)
    return message_page(
        _("Erreur interne"), _("Une erreur inattendue s'est produite. Réessayez plus tard."), 500
    )


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(DirectoryUnavailable, _unavailable)
    app.register_error_handler(RegistryUnavailable, _unavailable)
    app.register_error_handler(CSRFError, _csrf)
    app.register_error_handler(HTTPException, _http)
