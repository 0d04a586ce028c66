"""Signing in and out (CAS 3.0 §2.1–2.3): thin views over :mod:`sso.cas` and :mod:`sso.signin`.

Ticket validation is in :mod:`sso.web.validation`.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale, ngettext
from flask_babel import gettext as _

from ldapdir import Account, AccountState, Authentication, PasswordCheck
from sso.activation.tokens import Purpose
from sso.cas import login as cas_login
from sso.cas import params
from sso.cas.errors import CasError
from sso.cas.logout import slo_targets
from sso.signin import Attempt, Verdict
from sso.signin import decide as decide_attempt
from sso.tickets.ids import redact
from sso.tickets.model import ServiceTicket
from sso.tickets.registry import RegistryUnavailable
from sso.web.forms import LoginForm, csrf_token
from sso.web.pages import message_page
from sso.web.runtime import runtime
from sso.web.security import client_address, throttle_failed_logins
from sso.web.session import clear_tgc, current_tgt, set_tgc

bp = Blueprint("cas", __name__)
log = logging.getLogger(__name__)

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


def _args() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


def _bad_request() -> Response:
    return message_page(
        _("Requête invalide"), _("Le lien que vous avez suivi est incomplet ou mal formé."), 400
    )


@bp.get("/login")
def login() -> Response:
    """Sign-in page, or SSO straight to the service (CAS 3.0 §2.1)."""
    rt = runtime()
    try:
        req = params.parse_login(_args())
    except CasError:
        return _bad_request()
    decision = cas_login.decide(
        req, current_tgt(), rt.services, rt.tickets, rt.settings.tickets.lifetimes, rt.clock()
    )
    return _render_decision(decision)


@bp.post("/login")
@throttle_failed_logins
def login_post() -> Response:
    """Check the credentials (CAS 3.0 §2.2), open a fresh session and go on to the service."""
    rt = runtime()
    try:
        req = params.parse_login(_args())
    except CasError:
        return _bad_request()
    form = LoginForm()
    service = rt.services.match(req.service) if req.service else None
    if req.service and service is None:
        return _render_decision(cas_login.UnknownService(req.service), form)
    if not form.validate_on_submit():
        return _login_page(form, service, req, status=400)
    attempt = _attempt(form)
    if attempt.verdict is Verdict.OK:
        return _open_session(attempt, req)
    if attempt.verdict is Verdict.MUST_CHANGE:
        return _must_change(attempt)
    return _login_page(form, service, req, status=401, error=_refusal(attempt))


def _attempt(form: LoginForm) -> Attempt:
    """Look the account up and check the password; an unknown identifier still costs one bind
    (against a DN that does not exist), so both refusals take the same time."""
    rt = runtime()
    identifier, password = form.username.data or "", form.password.data or ""
    account = rt.directory.find(identifier)  # today in the directory's time zone
    if account is None:
        auth = rt.directory.authenticate(rt.decoy, password)
    elif account.state is AccountState.NEVER_ACTIVATED:
        auth = Authentication(PasswordCheck.INVALID)
    else:
        auth = rt.directory.authenticate(account, password)
    attempt = decide_attempt(account, auth)
    if attempt.verdict is not Verdict.OK:  # a success is recorded with the ticket it leads to
        rt.audit(
            "login.failure",
            user=account.user if account else None,
            reason=attempt.verdict.value,
            ip=client_address(),
        )
    return attempt


def _refusal(attempt: Attempt) -> str:
    """The words of a refused sign-in."""
    if attempt.verdict is Verdict.NEVER_ACTIVATED:
        return _("Votre compte n'est pas encore activé. Utilisez « 1ère connexion » pour l'activer.")
    if attempt.verdict is Verdict.LOCKED:
        return _("Votre compte est verrouillé. Contactez l'assistance informatique.")
    if attempt.verdict is Verdict.EXPIRED and attempt.account is not None:
        expires = attempt.account.expires
        when = format_date(expires, "short") if expires else ""
        return _("Votre compte a expiré le %(date)s : il ne permet plus d'accéder à l'ENT.", date=when)
    return _("Identifiant ou mot de passe incorrect.")


def _change_link(account: Account) -> str:
    """A fresh link to the password page, for a person who just proved the current password."""
    rt = runtime()
    token = rt.signer.make(account, Purpose.RESET, datetime.fromtimestamp(rt.clock(), UTC))
    return url_for("account.link", t=token.token)


def _must_change(attempt: Attempt) -> Response:
    """Expired or administrator-reset password: straight to the reset page, no e-mail needed."""
    assert attempt.account is not None
    if attempt.grace_remaining is not None:
        text = ngettext(
            "Votre mot de passe a expiré. Choisissez-en un nouveau maintenant (il vous reste %(num)d connexion de secours).",
            "Votre mot de passe a expiré. Choisissez-en un nouveau maintenant (il vous reste %(num)d connexions de secours).",
            attempt.grace_remaining,
        )
    else:
        text = _(
            "Votre mot de passe a expiré ou a été réinitialisé : choisissez-en un nouveau pour continuer."
        )
    link = (_change_link(attempt.account), _("Choisir un nouveau mot de passe"))
    return message_page(_("Changement de mot de passe obligatoire"), text, 200, link=link)


def _open_session(attempt: Attempt, req: params.LoginRequest) -> Response:
    """A fresh TGT at every sign-in (no fixation); the previous session, if any, is ended."""
    rt = runtime()
    account = attempt.account
    assert account is not None
    now = rt.clock()
    previous = current_tgt()
    if previous is not None:
        _end_session(previous.id)
    tgt = cas_login.new_session(account.user, account.attributes, rt.settings.tickets.lifetimes, now)
    issued: ServiceTicket | None = None
    if attempt.expires_in is not None:
        rt.tickets.add(tgt)
        response = _expiry_warning(attempt, req)  # no ticket yet: it would expire while they read
    else:
        lifetimes = rt.settings.tickets.lifetimes
        decision = cas_login.after_authentication(
            req, tgt, rt.services, rt.tickets, lifetimes, now, store_session=True
        )
        if isinstance(decision, cas_login.IssueTicket):
            issued = decision.ticket
            response = _send_ticket(decision)
        elif isinstance(decision, cas_login.ShowSignedIn):
            response = redirect(url_for("cas.login"), 303)
        else:
            response = _render_decision(decision)
    # One line for the sign-in and the ticket it leads to, if any.
    rt.audit(
        "login.success",
        user=account.user,
        service=issued.service_id if issued else None,
        ticket=redact(issued.id) if issued else None,
        ip=client_address(),
    )
    set_tgc(response, tgt)
    return response


def _expiry_warning(attempt: Attempt, req: params.LoginRequest) -> Response:
    """Signed in, but the password expires soon: offer to change it now, or go on (a fresh ticket
    is issued by SSO when the person continues: the one just made would expire while they read)."""
    assert attempt.account is not None and attempt.expires_in is not None
    days = max(1, attempt.expires_in // 86400)
    go_on = url_for("cas.login", service=req.service) if req.service else url_for("cas.login")
    page = render_template(
        "password_expiring.html", days=days, change_url=_change_link(attempt.account), continue_url=go_on
    )
    return make_response(page)


def _render_decision(decision: object, form: LoginForm | None = None) -> Response:
    """The answer to a login decision; the form (and its CSRF token) is only made when shown."""
    rt = runtime()
    match decision:
        case cas_login.ShowForm(service=service, request=req):
            return _login_page(form, service, req)
        case cas_login.Redirect(url=url):
            return redirect(url, 302)
        case cas_login.IssueTicket(ticket=ticket):
            rt.audit("ticket.issued", user=ticket.user, service=ticket.service_id, ticket=redact(ticket.id))
            return _send_ticket(decision)
        case cas_login.ConfirmWarn(service=service, service_url=service_url, continue_request=again):
            extra = {"method": "POST"} if again.method == "POST" else {}
            url = url_for("cas.login", service=service_url, **extra)
            return make_response(render_template("warn.html", service=service, continue_url=url))
        case cas_login.ShowSignedIn(tgt=tgt):
            tiles = [service for service in rt.services if service.show_on_portal]
            return make_response(render_template("signed_in.html", tgt=tgt, services=tiles))
        case cas_login.UnknownService():
            return message_page(
                _("Application non autorisée"),
                _("Cette application n'est pas autorisée à utiliser le service d'authentification de l'ENT."),
                403,
            )
    raise TypeError(f"unexpected login decision {decision!r}")


def _send_ticket(decision: cas_login.IssueTicket) -> Response:
    """Back to the service with the ticket: a redirect, or a self-submitting form (``method=POST``)."""
    if decision.method == "POST":
        ticket = decision.ticket
        return make_response(render_template("post_redirect.html", action=ticket.service, ticket=ticket.id))
    return redirect(decision.url, 302)


#: Stands for the CSRF token in a cached sign-in page.
_TOKEN_MARK = "__sso_csrf_token_8f3b__"


def _login_page(form, service, req, status: int = 200, error: str | None = None) -> Response:  # type: ignore[no-untyped-def]
    """The sign-in page. The blank form (no error, nothing typed; ``form`` may then be ``None``)
    is the same for everyone but its CSRF token: it is rendered once per language and URL and the
    token put in on the way out (no form object is made for it then)."""
    blank = error is None and status == 200 and (form is None or not (form.errors or form.username.data))
    if not blank:
        body = render_template("login.html", form=form, service=service, login_request=req, error=error)
        return make_response(body, status)
    key = (str(get_locale()), request.full_path)
    cached = runtime().form_pages.get(key)
    if cached is not None:
        return make_response(cached.replace(_TOKEN_MARK, csrf_token()))
    form = form or LoginForm()
    token = str(form.csrf_token.current_token)
    body = render_template("login.html", form=form, service=service, login_request=req, error=None)
    runtime().form_pages.put(key, body.replace(token, _TOKEN_MARK))
    return make_response(body)


def throttled_login_page(reset_at: float) -> Response:
    """The sign-in page again, keeping what was typed but the password, with the wait time (429)."""
    rt = runtime()
    try:
        req = params.parse_login(_args())
    except CasError:
        return _bad_request()
    minutes = max(1, math.ceil((reset_at - time.time()) / 60))  # the limiter counts in real time
    rt.audit("login.throttled", ip=client_address())
    error = ngettext(
        "Trop de tentatives infructueuses. Réessayez dans %(num)d minute.",
        "Trop de tentatives infructueuses. Réessayez dans %(num)d minutes.",
        minutes,
    )
    service = rt.services.match(req.service) if req.service else None
    response = _login_page(LoginForm(), service, req, status=429, error=error)
    response.headers["Retry-After"] = str(minutes * 60)
    return response


def _end_session(tgt_id: str) -> None:
    rt = runtime()
    targets = slo_targets(rt.tickets.end_session(tgt_id), rt.services)
    if targets:
        rt.logout.dispatch(targets)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """End the session, notify the services (SLO), then go back to a registered service only (CAS 3.0 §2.3)."""
    rt = runtime()
    try:
        tgt = current_tgt()
        if tgt is not None:
            _end_session(tgt.id)
            rt.audit("logout", user=tgt.user, ip=client_address())
    except RegistryUnavailable:
        # The browser forgets the session at once; the server side ends by its idle expiry.
        response = message_page(
            _("Déconnexion incomplète"),
            _(
                "Le service est momentanément indisponible : votre session sera fermée automatiquement. Fermez votre navigateur pour plus de sécurité."
            ),
            503,
        )
        clear_tgc(response)
        return response
    target = request.args.get("service") or request.args.get("url") or ""
    if target and rt.services.match(target) is not None and len(request.args.getlist("service")) <= 1:
        response = redirect(target, 302)
    else:
        response = message_page(
            _("Déconnexion réussie"),
            _("Vous êtes déconnecté de l'ENT. Pour plus de sécurité, fermez votre navigateur."),
            200,
            link=(url_for("cas.login"), _("Se reconnecter")),
        )
    clear_tgc(response)
    return response
