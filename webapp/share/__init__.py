"""The share blueprint: share links, the public read-only view, continuing a copy, export."""

from flask import Blueprint

bp = Blueprint("share", __name__)

from . import views  # noqa: E402,F401  (registers the routes)
