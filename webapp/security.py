"""HTTP hardening: CSRF tokens, security headers, proxy trust, session cookie flags.

Every state-changing request carries the session's CSRF token (Flask-WTF): forms post a
hidden csrf_token field (csrf_field() in templates), and htmx sends it in the X-CSRFToken
header (static/js/app.js). A request without it gets a 400 that says to reload the page.
One form is exempt: Continue on a public shared page, so that viewing a link sets no
cookie. It only copies a public snapshot into the list of whoever posts it, and the
SameSite=Lax cookie is not sent with a cross-site POST, so a forged one acts as a new,
empty browser and changes nothing of the victim's.

The Content-Security-Policy allows scripts, styles and connections from this origin only:
no inline scripts or styles (htmx is told not to inject its indicator styles, see
base.html) and no third-party origins. Pages can't be framed, and the Referrer-Policy keeps
conversation and share URLs from reaching other sites (links in rendered Markdown also
carry rel="noopener noreferrer nofollow", see rendering.py).
"""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, generate_csrf
from htmx_flask import make_response
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import csrf

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


class SessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def add_security_headers(response: Response) -> Response:
    """Set the security headers a view did not set itself."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
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
