"""The chat blueprint: conversations, messages and the reply stream."""

from flask import Blueprint

from ..updates import part_id

bp = Blueprint("chat", __name__)
bp.add_app_template_global(part_id)

from . import attachments, settings, views  # noqa: E402,F401  (registers the routes)
