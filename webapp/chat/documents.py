"""Documents attached to messages: their text shown to whoever may see the conversation,
and a document read before sending, for its chip in the message box."""

from __future__ import annotations

from flask import abort, current_app, jsonify, request, url_for

from ..conversations.context import estimate_tokens
from ..conversations.models import Document
from ..web.limits import checks_documents
from ..web.pages import owned_part, render_page
from . import bp, forms


@bp.get("/c/<public_id>/documents/<id:document_id>")
def document(public_id: str, document_id: int):
    """The text of a document of the owner's conversation, as it was sent, or a 404."""
    conversation, found = owned_part(public_id, Document.text, document_id,
                                     "This document does not exist.")
    return render_page("chat/document.html", document=found, conversation=conversation,
                       back_url=url_for("chat.show", public_id=public_id,
                                        _anchor=f"m-{found.message_id}"))


@bp.post("/documents/check")
@checks_documents
def check_document():
    """Read one chosen document as a send would: its size and estimated tokens, or the
    sentence that refuses it (JSON, for the chip the message box shows before sending;
    a refusal is an answer too, so it comes with 200)."""
    file = request.files.get("document")
    if file is None or not file.filename:
        abort(400, "Choose a document.")
    try:
        read = forms.document(file, current_app.config["MAX_DOCUMENT_BYTES"])
    except forms.Invalid as error:
        return jsonify(error=str(error))
    return jsonify(name=read.name, size=read.byte_size, chars=len(read.text),
                   tokens=estimate_tokens(len(read.text)))
