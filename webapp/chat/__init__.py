"""The chat blueprint: conversations, messages and the reply stream."""

from flask import Blueprint

bp = Blueprint("chat", __name__)

from . import attachments, settings, views  # noqa: E402,F401  (registers the routes)
