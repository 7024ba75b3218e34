"""The search blueprint: full-text search across the owner's conversations."""

from flask import Blueprint

bp = Blueprint("search", __name__)

from . import views  # noqa: E402,F401  (registers the routes)
