"""WTForms forms (Flask-WTF: CSRF on every one). Labels and messages are French msgids for Babel."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

#: Longest identifier accepted (a full address is far shorter).
MAX_IDENTIFIER = 256
#: Longest password accepted at sign-in (policy allows 128; leave room for old ones).
MAX_PASSWORD = 512


class LoginForm(FlaskForm):
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


class IdentifierForm(FlaskForm):
    """« Identifiant (Nom de connexion) » / « Suivant »."""

    username = StringField(
        _l("Identifiant (Nom de connexion)"),
        validators=[
            InputRequired(_l("Saisissez votre identifiant.")),
            Length(max=MAX_IDENTIFIER, message=_l("Cet identifiant est trop long.")),
        ],
    )


class PasswordForm(FlaskForm):
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
