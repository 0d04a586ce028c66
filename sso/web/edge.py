"""The WSGI layer around the Flask app: what every request and response gets, whatever the view.

- the base path: the app is served under the path of ``site.base_url`` (e.g. ``/cas``) whether or
  not the reverse proxy strips it;
- the security headers (CSP, no framing, no sniffing, no referrer, ``Cache-Control: no-store``
  outside static files, HSTS under https), added to the header list as it leaves;
- the request metrics (latency and responses by endpoint), taken when the response starts.

Done here rather than in ``after_request`` hooks: these are the same few list operations for every
response, where hooks cost a Werkzeug ``Headers`` scan per header and a hook call each, on every
request of a storm of sign-ins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from sso import metrics

#: Content-Security-Policy: no inline script or style, no framing (clickjacking of the login form).
#: No ``form-action``: browsers apply it to the redirect that carries the ticket to the service.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

#: Added to every response that does not set them itself.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Tickets travel in URLs: keep them out of Referer headers sent to third parties.
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
NO_STORE = ("Cache-Control", "no-store")

#: Methods kept as a label value; anything else is counted as ``other``.
METHODS = frozenset({"GET", "POST", "HEAD"})

StartResponse = Callable[..., Any]


class Edge:
    """Wrap a WSGI ``app`` (Flask's ``wsgi_app``).

    :param prefix: the path of ``site.base_url`` (``""`` or ``/cas``).
    :param https: the site is served over https (HSTS).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], prefix: str, https: bool) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.headers = (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS
        self._own = frozenset(name.lower() for name, _ in self.headers)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if self.prefix and not environ.get("SCRIPT_NAME"):
            # A request for /cas/login becomes SCRIPT_NAME=/cas, PATH_INFO=/login.
            path = environ.get("PATH_INFO", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = self.prefix

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            request = environ.get("werkzeug.request")
            rule = getattr(request, "url_rule", None)
            endpoint = rule.endpoint if rule is not None else "unmatched"
            self._secure(headers, static=endpoint == "static")
            method = environ.get("REQUEST_METHOD", "")
            metrics.request_seconds(endpoint, method if method in METHODS else "other").observe(
                time.perf_counter() - started
            )
            metrics.responses(endpoint, status[:3]).inc()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _secure(self, headers: list[tuple[str, str]], static: bool) -> None:
        present = {name.lower() for name, _ in headers}
        if present.isdisjoint(self._own):
            headers.extend(self.headers)
        else:
            headers.extend(header for header in self.headers if header[0].lower() not in present)
        if not static:  # static files keep Flask's own caching headers
            if "cache-control" in present:
                headers[:] = [header for header in headers if header[0].lower() != "cache-control"]
            headers.append(NO_STORE)
