"""The access gate: with ACCESS_PASSWORD set, chatting needs that password once per browser.

Every view needs it except the ones marked @public (shared links) and static files. The
session remembers a keyed digest of the password, so changing ACCESS_PASSWORD (or
SECRET_KEY) asks everyone again. Wrong passwords are rate limited per IP address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from htmx_flask import make_response

from .limits import slow_down_sentence, tries_password

bp = Blueprint("gate", __name__)


def public(view):
    """Mark a view as reachable without the access password (a shared link)."""
    view.public = True
    return view


def _pass_token(password: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, password.encode(), hashlib.sha256).hexdigest()


def has_access() -> bool:
    """True when no password is set or this browser has entered it."""
    password = current_app.config["ACCESS_PASSWORD"]
    return not password or hmac.compare_digest(str(session.get("access", "")),
                                               _pass_token(password))


# Browsers drop tabs and newlines from a URL and read a backslash as a slash, so a target
# holding any of them (or any other control character) could lead off this site. Targets
# are the gate's own percent-encoded paths, so anything not ASCII is refused too.
UNSAFE_IN_TARGET = re.compile(r"[\x00-\x1f\x7f\\]")


def _safe_next(target: str | None) -> str:
    """Where to go after the gate: a path on this site only, never another origin."""
    if (target and target.isascii() and target.startswith("/")
            and not target.startswith("//") and not UNSAFE_IN_TARGET.search(target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("chat.index")


def is_public_view() -> bool:
    """True when this request is for a view marked @public (a shared link)."""
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "public", False)


@bp.before_app_request
def require_access():
    """Send a browser without access to the password page (htmx: a full-page redirect)."""
    if request.endpoint in (None, "static") or request.blueprint == "gate" or has_access():
        return None
    if is_public_view():
        return None
    back = request.full_path.rstrip("?") if request.method == "GET" and not request.htmx \
        else None
    target = url_for("gate.access", next=back)
    if request.htmx:
        return make_response("", 200, redirect=target)
    return redirect(target, 303)


@bp.route("/access", methods=["GET", "POST"])
@tries_password
def access():
    """Ask for the access password; the right one is remembered in this browser's session."""
    password = current_app.config["ACCESS_PASSWORD"]
    target = _safe_next(request.values.get("next"))
    if not password or has_access():
        return redirect(target, 303)
    if request.method == "GET":
        return render_template("gate/access.html", next=target)
    typed = request.form.get("password", "")
    if not hmac.compare_digest(typed.encode("utf-8", "replace"), password.encode()):
        return render_template("gate/access.html", next=target,
                               error="That password is not right."), 403
    session["access"] = _pass_token(password)
    session.permanent = True
    return redirect(target, 303)


@bp.errorhandler(429)
def too_many_tries(error):
    """Too many wrong passwords: say how long to wait."""
    return render_template("gate/access.html", next=_safe_next(request.values.get("next")),
                           error=slow_down_sentence("too many wrong passwords")), 429
