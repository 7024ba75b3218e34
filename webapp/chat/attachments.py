"""Serving the images attached to messages, only to whoever may see the conversation."""

from __future__ import annotations

from flask import Response

from ..conversations.models import Attachment
from ..web.pages import owned_part
from . import bp

CACHE_SECONDS = 60 * 60 * 24 * 365  # an attachment never changes


@bp.get("/c/<public_id>/attachments/<id:attachment_id>")
def attachment(public_id: str, attachment_id: int):
    """An image attached to a message of the owner's conversation, or a 404."""
    _, found = owned_part(public_id, Attachment.data, attachment_id,
                          "This image does not exist.")
    return image_response(found)


def image_response(image: Attachment) -> Response:
    """The stored image with its own content type, never sniffed, cached privately."""
    response = Response(image.data, mimetype=image.content_type)
    response.headers["Content-Disposition"] = "inline"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = f"private, max-age={CACHE_SECONDS}, immutable"
    return response
