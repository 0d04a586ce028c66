"""« 1ère connexion » and « Problème de connexion »: the identifier page, the page behind the
link, and the live password check. Thin views over :class:`sso.activation.flow.ActivationFlow`."""

from __future__ import annotations

import functools
from datetime import datetime

from flask import Blueprint, Response, abort, jsonify, make_response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from sso.activation import policy
from sso.activation.flow import LinkView, Step, StepError
from sso.activation.tokens import Purpose, TokenError, TokenProblem
from sso.web.forms import IdentifierForm, PasswordForm
from sso.web.runtime import runtime
from sso.web.security import address_unless_exempt, client_address, identifier_key, throttle_requests

bp = Blueprint("account", __name__, url_prefix="/compte")

#: The two doors into one mechanism (URL part -> purpose of the wording).
WORDINGS = {"activation": Purpose.ACTIVATION, "reset": Purpose.RESET}

#: Rules of the password policy, as the page words them (ids from :mod:`sso.activation.policy`).
RULES = {
    "length": _l("Au moins %(min)s caractères"),
    "classes": _l(
        "Des minuscules, des majuscules, des chiffres et des caractères spéciaux — ou %(relaxed_length)s caractères "
        "de trois de ces sortes — ou une phrase de passe d'au moins %(passphrase_length)s caractères"
    ),
    "max_length": _l("Au plus %(max)s caractères"),
    "printable": _l("Pas de caractères invisibles ou de contrôle"),
    "not_common": _l("Pas un mot de passe courant (azerty, motdepasse, 123456…)"),
    "not_personal": _l("Ni votre nom, ni votre prénom, ni votre identifiant"),
    "strength": _l("Difficile à deviner (évitez les suites, les dates, les répétitions)"),
}

PROBLEMS = {
    "charter_required": _l("Vous devez accepter la charte informatique pour activer votre compte."),
    "mismatch": _l("Les deux mots de passe saisis ne sont pas identiques."),
    "directory_refused:too_short": _l("L'annuaire a refusé ce mot de passe : il est trop court."),
    "directory_refused:in_history": _l(
        "L'annuaire a refusé ce mot de passe : vous l'avez déjà utilisé récemment."
    ),
    "directory_refused:too_young": _l(
        "L'annuaire a refusé le changement : votre mot de passe a été changé il y a trop peu de temps."
    ),
    "directory_refused:quality": _l("L'annuaire a refusé ce mot de passe : il n'est pas assez robuste."),
    "directory_refused:insufficient_access": _l(
        "L'annuaire a refusé le changement. Contactez l'assistance informatique."
    ),
    "directory_refused:other": _l("L'annuaire a refusé ce mot de passe. Essayez-en un autre."),
}

LINK_PROBLEMS = {
    TokenProblem.EXPIRED: (
        _l("Ce lien a expiré"),
        _l(
            "Les liens ne sont valables que jusqu'à l'heure indiquée dans le message. Demandez un nouveau lien."
        ),
    ),
    TokenProblem.USED: (
        _l("Ce lien a déjà été utilisé"),
        _l(
            "Un mot de passe a déjà été choisi avec ce lien. Connectez-vous avec ce mot de passe, ou demandez un nouveau lien si vous l'avez oublié."
        ),
    ),
    TokenProblem.INVALID: (
        _l("Ce lien n'est pas valide"),
        _l(
            "Le lien est incomplet ou a été modifié. Copiez-le en entier depuis le message, ou demandez un nouveau lien."
        ),
    ),
    TokenProblem.WRONG_PURPOSE: (
        _l("Ce lien n'est pas valide"),
        _l("Ce lien ne correspond pas à cette page. Demandez un nouveau lien."),
    ),
    TokenProblem.ACCOUNT_CLOSED: (
        _l("Ce compte ne peut plus être activé"),
        _l("Ce compte a expiré ou est verrouillé. Contactez l'assistance informatique."),
    ),
}


def _rule_texts(rules) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(rule, str(RULES[rule]) % dict(params)) for rule, params in rules if rule in RULES]


def _purpose_or_404(purpose: str) -> Purpose:
    if purpose not in WORDINGS:
        abort(404)
    return WORDINGS[purpose]


@bp.get("/<purpose>")
def start(purpose: str) -> Response:
    """The identifier page, in the wording of the door used."""
    wording = _purpose_or_404(purpose)
    return make_response(
        render_template("account/identifier.html", form=IdentifierForm(), purpose=wording.value)
    )


@bp.post("/<purpose>")
@throttle_requests(
    ("link-address", "link_per_address", address_unless_exempt),
    ("link-id", "link_per_identifier", functools.partial(identifier_key, "link")),
)
def request_link(purpose: str) -> Response:
    """« Suivant »: the same answer whatever the identifier (the work happens in the background)."""
    wording = _purpose_or_404(purpose)
    form = IdentifierForm()
    if not form.validate_on_submit():
        page = render_template("account/identifier.html", form=form, purpose=wording.value)
        return make_response(page, 400)
    result = runtime().activation.request_link(form.username.data or "", wording, str(get_locale() or "fr"))
    runtime().audit("activation.link_requested", wording=wording.value, ip=client_address())
    today = datetime.fromtimestamp(runtime().clock(), result.deadline.tzinfo).date()
    page = render_template(
        "account/sent.html",
        purpose=wording.value,
        deadline=result.deadline,
        same_day=result.deadline.date() == today,
        hint=result.hint,
        demo_outbox=runtime().settings.mail.outbox is not None,
    )
    return make_response(page)


def _token() -> str:
    return request.args.get("t", "")[:2048]


def _invalid_link(error: TokenError) -> Response:
    title, text = LINK_PROBLEMS[error.reason]
    purpose = "activation" if error.purpose in (Purpose.ACTIVATION, Purpose.INVITATION) else "reset"
    status = 410 if error.reason in (TokenProblem.EXPIRED, TokenProblem.USED) else 400
    page = render_template(
        "account/invalid_link.html",
        title=title,
        text=text,
        purpose=purpose,
        can_retry=error.reason is not TokenProblem.ACCOUNT_CLOSED,
    )
    return make_response(page, status)


def _password_page(
    view: LinkView, form: PasswordForm, problems: tuple[str, ...] = (), status: int = 200
) -> Response:
    messages = [str(PROBLEMS.get(code, RULES.get(code, code))) for code in problems if code not in RULES]
    failed_rules = [code for code in problems if code in RULES]
    page = render_template(
        "account/password.html",
        form=form,
        view=view,
        steps=[step.value for step in view.steps],
        rules=_rule_texts(view.rules),
        failed_rules=failed_rules,
        messages=messages,
        charter_url=runtime().settings.activation.charter_url,
        token=_token(),
    )
    response = make_response(page, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/lien")
def link() -> Response:
    """The page behind the e-mailed link: checks it, changes nothing (mail scanners open links)."""
    try:
        view = runtime().activation.open_link(_token())
    except TokenError as error:
        return _invalid_link(error)
    return _password_page(view, PasswordForm())


@bp.post("/lien")
def link_submit() -> Response:
    """Charter, consent and the new password; the link stays usable after any refusal."""
    rt = runtime()
    form = PasswordForm()
    try:
        view = rt.activation.open_link(_token())
        if not form.validate_on_submit():
            return _password_page(view, form, status=400)
        done = rt.activation.complete(
            _token(),
            form.password.data or "",
            form.confirm.data or "",
            charter_accepted=bool(form.charter.data),
            consent=bool(form.consent.data) if Step.CONSENT in view.steps else None,
            locale=str(get_locale() or "fr"),
        )
    except TokenError as error:
        return _invalid_link(error)
    except StepError as error:
        return _password_page(
            view,
            PasswordForm(charter=form.charter.data, consent=form.consent.data),
            error.problems,
            status=400,
        )
    return make_response(render_template("account/done.html", done=done, login_url=url_for("cas.login")))


@bp.post("/verifier")
@throttle_requests(("password-check", "password_check", client_address))
def check_password() -> Response:
    """Live check of the policy as the person types (progressive enhancement; the server decides)."""
    rt = runtime()
    form = PasswordForm(meta={"csrf": True})
    form.validate()
    if form.csrf_token.errors:
        return make_response(jsonify({"error": "csrf"}), 400)
    try:
        view = rt.activation.open_link(_token())
    except TokenError:
        return make_response(jsonify({"error": "link"}), 400)
    password = (form.password.data or "")[:4096]
    results = policy.evaluate(password, rt.settings.activation.policy, view.personal)
    same = bool(password) and password == (form.confirm.data or "")
    return jsonify(
        {
            "rules": {result.rule: result.met for result in results},
            "confirm": same,
            "ok": policy.acceptable(results) and same,
        }
    )
