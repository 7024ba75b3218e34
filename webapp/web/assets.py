"""Versioned URLs for static files, so they can be cached for a year."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Response, current_app, request, url_for
from markupsafe import Markup


@lru_cache(maxsize=64)
def _digest(path: str, mtime: float) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def asset_url(filename: str) -> str:
    """The URL of a static file with a content hash, e.g. /static/app.css?v=3f2a..."""
    path = Path(current_app.static_folder) / filename
    return url_for("static", filename=filename, v=_digest(str(path), path.stat().st_mtime))


def icon(name: str) -> Markup:
    """An icon from the sprite static/icons.svg (built by scripts/icons), hidden from screen readers.

    The control around it carries the name people hear (its text or an aria-label).
    """
    return Markup('<svg class="icon" aria-hidden="true" focusable="false">'
                  '<use href="{}#{}"></use></svg>').format(asset_url("icons.svg"), name)


def cache_static(response: Response) -> Response:
    """Versioned static URLs are immutable for a year; unversioned ones revalidate.

    A file is read whole (they are small) so that flask-compress, which leaves streamed
    responses alone, compresses it, and the file is closed with the response.
    """
    if request.endpoint == "static" and response.status_code in (200, 304):
        if response.status_code == 200:
            response.direct_passthrough = False
            response.make_sequence()
        if request.args.get("v"):
            response.cache_control.immutable = True
        else:
            response.cache_control.max_age = None
            response.cache_control.no_cache = True
    return response
