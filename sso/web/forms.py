"""WTForms forms (Flask-WTF: CSRF on every one). Labels and messages are French msgids for Babel."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flask import current_app, g, session
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import validate_csrf
from markupsafe import Markup, escape
from wtforms import BooleanField, PasswordField, StringField
from wtforms.csrf.core import CSRF
from wtforms.validators import InputRequired, Length

from sso.web.session import signing_serializer

#: Longest identifier accepted (a full address is far shorter).
MAX_IDENTIFIER = 256
#: Longest password accepted at sign-in (policy allows 128; leave room for old ones).
MAX_PASSWORD = 512


#: Flask-WTF's salt for signed CSRF tokens.
_CSRF_SALT = "wtf-csrf-token"


def csrf_token(secret_key: str | bytes | None = None, field_name: str = "csrf_token") -> str:
    """The request's signed CSRF token: Flask-WTF's ``generate_csrf`` (the same token, checked by
    its ``validate_csrf``: a raw token kept in the session, signed with the salt
    ``wtf-csrf-token``), with the signing serializer made once per key instead of at every call."""
    token: str | None = g.get(field_name)
    if token is None:
        if field_name not in session:
            session[field_name] = hashlib.sha1(os.urandom(64)).hexdigest()
        secret = secret_key or current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        token = signing_serializer(secret, _CSRF_SALT).dumps(session[field_name])
        setattr(g, field_name, token)
    return token


class _Token:
    """A form's CSRF token, signed when the form is shown (a submission that succeeds never shows
    its form again: signing a token for it was most of a sign-in form's cost)."""

    __slots__ = ("_meta",)

    def __init__(self, meta: Any) -> None:
        self._meta = meta

    def __str__(self) -> str:
        return csrf_token(self._meta.csrf_secret, self._meta.csrf_field_name or "csrf_token")

    def __html__(self) -> Markup:
        return escape(str(self))


class LazyCSRF(CSRF):
    """Flask-WTF's CSRF for WTForms (the same token in the session, checked by
    :func:`flask_wtf.csrf.validate_csrf`), with the form's own token signed only when shown."""

    def setup_form(self, form: Any) -> Any:
        self.meta = form.meta
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: Any) -> Any:
        return _Token(self.meta)

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        if g.get("csrf_valid", False):  # already checked by Flask-WTF's CSRFProtect
            return
        validate_csrf(field.data, self.meta.csrf_secret, self.meta.csrf_time_limit, self.meta.csrf_field_name)


class Form(FlaskForm):
    """A Flask-WTF form with :class:`LazyCSRF`."""

    class Meta:
        csrf_class = LazyCSRF


class LoginForm(Form):
    """IDENTIFIANT / MOT DE PASSE / SE CONNECTER."""

    username = StringField(
        _l("Identifiant"),
        validators=[
            InputRequired(_l("Saisissez votre identifiant.")),
            Length(max=MAX_IDENTIFIER, message=_l("Cet identifiant est trop long.")),
        ],
    )
    password = PasswordField(
        _l("Mot de passe"),
        validators=[
            InputRequired(_l("Saisissez votre mot de passe.")),
            Length(max=MAX_PASSWORD, message=_l("Ce mot de passe est trop long.")),
        ],
    )


class IdentifierForm(Form):
    """« Identifiant (Nom de connexion) » / « Suivant »."""

    username = StringField(
        _l("Identifiant (Nom de connexion)"),
        validators=[
            InputRequired(_l("Saisissez votre identifiant.")),
            Length(max=MAX_IDENTIFIER, message=_l("Cet identifiant est trop long.")),
        ],
    )


class PasswordForm(Form):
    """The form behind a link: charter, consent, new password typed twice."""

    charter = BooleanField(_l("J'ai lu et j'accepte la charte informatique"))
    consent = BooleanField(_l("J'accepte d'apparaître dans l'annuaire public de l'université"))
    password = PasswordField(
        _l("Nouveau mot de passe"),
        validators=[
            InputRequired(_l("Choisissez un mot de passe.")),
            Length(max=MAX_PASSWORD, message=_l("Ce mot de passe est trop long.")),
        ],
    )
    confirm = PasswordField(
        _l("Confirmez le mot de passe"),
        validators=[InputRequired(_l("Saisissez le mot de passe une seconde fois."))],
    )
