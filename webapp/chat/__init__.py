"""The chat blueprint: conversations, messages and the reply stream."""

from flask import Blueprint

from ..conversations.context import estimate_tokens, marker_on
from ..conversations.costs import money
from ..replies.updates import part_id

bp = Blueprint("chat", __name__)
bp.add_app_template_global(part_id)
bp.add_app_template_global(money)
bp.add_app_template_global(estimate_tokens)
bp.add_app_template_global(marker_on, "first_sent_on")

from . import (attachments, compare, documents, left_out, settings,  # noqa: E402,F401  (routes)
               views)
