"""The devices blueprint: a one-time link that lets another browser use the owner's chats."""

from flask import Blueprint

bp = Blueprint("devices", __name__)

from . import views  # noqa: E402,F401  (registers the routes)
