"""The imports blueprint: a person's chats from ChatGPT, Open WebUI, LibreChat or this app."""

from flask import Blueprint

bp = Blueprint("imports", __name__)

from . import views  # noqa: E402,F401  (registers the routes)
