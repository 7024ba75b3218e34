"""HTTP hardening: CSRF tokens, cross-site refusal, headers, proxy trust, cookie flags.

Every state-changing request carries the session's CSRF token (Flask-WTF): forms post a
hidden csrf_token field (csrf_field() in templates), and htmx sends it in the X-CSRFToken
header (static/js/app.js). A request without it gets a 400 that says to reload the page.
Before that, any unsafe request (POST and the like) that the browser says came from
another site (Sec-Fetch-Site, or an Origin naming another host) is refused with a 403.

A browser leaves its SameSite=Lax cookie off a cross-site request that is not a top-level
page load, and the app would see a new, empty browser; a response to such a request never
sets the session cookie, so it can't replace the one that holds a person's chats.

Pages that show a person's own data are marked `Cache-Control: private, no-store`, so no
shared cache keeps them and the browser keeps no copy on disk; public shared pages are
`private, no-cache` (checked again on each visit, so a revoked link stops showing). Over
HTTPS, Strict-Transport-Security tells the browser to use HTTPS from then on.

The Content-Security-Policy allows scripts, styles and connections from this origin only:
no inline scripts or styles (htmx is told not to inject its indicator styles, see
base.html) and no third-party origins. Pages can't be framed, and the Referrer-Policy keeps
conversation and share URLs from reaching other sites (links in rendered Markdown also
carry rel="noopener noreferrer nofollow", see rendering.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, generate_csrf
from htmx_flask import make_response
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix

from ..extensions import csrf
from .gate import is_public_view

STALE_FORM_SENTENCE = ("This page is out of date (its security token is missing or "
                       "expired). Reload the page, then try again.")

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# One year; not includeSubDomains, as the app may live on a domain it does not own.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

CROSS_SITE_SENTENCE = ("This request came from another site, so it was refused. Open this "
                       "app's own page and try again from there.")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cookies_may_be_withheld() -> bool:
    """True when the browser may have left the SameSite=Lax session cookie off this request:
    a cross-site request other than a top-level page load."""
    if request.headers.get("Sec-Fetch-Site") != "cross-site":
        return False
    page_load = (request.method in SAFE_METHODS
                 and request.headers.get("Sec-Fetch-Mode") == "navigate"
                 and request.headers.get("Sec-Fetch-Dest", "document") == "document")
    return not page_load


class SessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, marked Secure whenever the request came over HTTPS, and
    never set in answer to a request that may have come without it."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def should_set_cookie(self, app: Flask, session) -> bool:
        return not cookies_may_be_withheld() and super().should_set_cookie(app, session)


def from_another_site() -> bool:
    """True when the browser says this request was made by a page of another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("cross-site", "same-site")
    origin = request.headers.get("Origin")
    # "null" is what a page with Referrer-Policy: no-referrer sends for its own forms.
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() != request.host.lower()


def refuse_cross_site_changes() -> None:
    """No state changes from another site: an unsafe request from one gets a 403."""
    if request.method not in SAFE_METHODS and from_another_site():
        abort(403, CROSS_SITE_SENTENCE)


def add_security_headers(response: Response) -> Response:
    """Set the security headers a view did not set itself, the cache rules and HSTS."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if request.endpoint == "static":
        return response
    if "Cache-Control" in response.headers:
        response.cache_control.private = True  # a view's own rule, never for shared caches
    elif is_public_view():
        response.headers["Cache-Control"] = "private, no-cache"
    else:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def csrf_field() -> Markup:
    """The hidden field that makes a POST form acceptable (for templates)."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(generate_csrf())


def refused_without_token(error: CSRFError):
    """A POST without a valid token: a 400 with a sentence, inline for htmx."""
    if request.htmx:
        return make_response(render_template("chat/_form_error.html",
                                             error=STALE_FORM_SENTENCE),
                             400, retarget="#form-error", reswap="innerHTML")
    error.description = STALE_FORM_SENTENCE
    return render_template("errors/error.html", error=error, code=400), 400


def init_app(app: Flask) -> None:
    """CSRF protection; trust TRUST_PROXY proxy hops for X-Forwarded-*; harden cookies and
    headers."""
    # A token lives as long as the session: a tab left open for a day still works.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.before_request(refuse_cross_site_changes)  # before the token check: a clearer 403
    csrf.init_app(app)
    app.jinja_env.globals["csrf_field"] = csrf_field
    app.register_error_handler(CSRFError, refused_without_token)
    hops = app.config["TRUST_PROXY"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,
                                x_port=hops, x_prefix=hops)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.session_interface = SessionInterface()
    app.after_request(add_security_headers)
