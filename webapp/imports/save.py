"""An Imported conversation written to the database for its owner, its tree whole.

Text is cleaned as everything the app stores (clean_text, storable) and rendered through
the one sanitizing Markdown path; images are prepared as uploaded ones are, within the
same limits, and one that is missing or refused leaves a short note in its message, as
does a document past the limits of a message sent here (MAX_DOCUMENTS,
MAX_DOCUMENT_CHARS, MAX_DOCUMENT_CHARS_PER_MESSAGE). A conversation imported before by
the same owner (same format and id) is not added again. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..conversations import tree
from ..conversations.images import ImagePreparer, NotAnImage, TooManyPixels
from ..conversations.models import Attachment, Conversation, Document, utcnow
from ..conversations.rendering import render_markdown
from ..conversations.text import clean_text, shortened, title_from
from ..extensions import db
from ..upstream.storable import storable
from .common import Imported, Skipped, Turn, newest_leaf

UNTITLED = "Imported chat"


@dataclass(frozen=True)
class SaveSettings:
    """The app's limits and defaults an import follows."""

    default_model: str
    max_title_chars: int
    max_images: int
    max_image_bytes: int
    images: ImagePreparer
    max_document_chars: int = 400_000
    max_documents: int = 5
    max_document_chars_per_message: int = 500_000


def stored_text(raw: str) -> str:
    """Text as the app stores it."""
    return storable(clean_text(raw))


def import_key(imported: Imported) -> str | None:
    """What identifies the conversation among its owner's imports, when the export ids it."""
    if not imported.source_id:
        return None
    return shortened(f"{imported.source}:{stored_text(imported.source_id)}", 200)


def already_imported(imported: Imported, owner_id: str) -> Conversation | None:
    """The owner's conversation made by importing this one before, if any."""
    key = import_key(imported)
    if key is None:
        return None
    return db.session.scalar(select(Conversation).where(
        Conversation.owner_id == owner_id, Conversation.import_key == key))


def save(imported: Imported, owner_id: str, settings: SaveSettings) -> Conversation:
    """Add the conversation, every branch of it, showing the export's shown branch."""
    if not imported.turns:
        raise Skipped("It has no messages.")
    times = [turn.created_at for turn in imported.turns if turn.created_at]
    created = imported.created_at or min(times, default=None) or utcnow()
    updated = imported.updated_at or max(times, default=None) or created
    title = shortened(" ".join(stored_text(imported.title).split()), settings.max_title_chars)
    first_user = next((turn.content for turn in imported.turns if turn.role == "user"), "")
    conversation = Conversation(
        owner_id=owner_id, import_key=import_key(imported),
        title=title or title_from(stored_text(first_user)) or UNTITLED, title_is_custom=True,
        model=shortened(stored_text(imported.model or "") or settings.default_model, 200),
        params=imported.params, created_at=created, updated_at=updated)
    db.session.add(conversation)
    root = None
    if imported.system_prompt.strip():
        root = tree.insert(conversation, None, "system", stored_text(imported.system_prompt),
                           created_at=created).id
    inserted = tree.insert_tree(conversation, root, (
        tree.NewMessage(turn.key, turn.parent, turn.role, *_text_and_fields(turn, settings,
                                                                           created))
        for turn in imported.turns))
    shown = imported.current if imported.current in inserted else newest_leaf(imported.turns)
    conversation.current_leaf_id = inserted[shown].id
    return conversation


def _text_and_fields(turn: Turn, settings: SaveSettings, created) -> tuple[str, dict]:
    """A turn's stored text and the other fields of its message."""
    attachments, notes = _attachments(turn, settings)
    documents = _documents(turn, settings, notes)
    content = stored_text("\n\n".join([turn.content] + [f"_({note})_" for note in notes]))
    content = content.strip("\n")
    fields = {"reasoning": stored_text(turn.reasoning), "status": turn.status,
              "model": shortened(stored_text(turn.model), 200) if turn.model else None,
              "finish_reason": stored_text(turn.finish_reason or "")[:32] or None,
              "error": stored_text(turn.error) if turn.error else None,
              "created_at": turn.created_at or created, "attachments": attachments,
              "documents": documents}
    if turn.usage and "total_tokens" in turn.usage:
        fields.update(turn.usage)
    if turn.role == "assistant":
        fields["content_html"] = str(render_markdown(content))
    return content, fields


def _documents(turn: Turn, settings: SaveSettings, notes: list[str]) -> list[Document]:
    """The turn's documents as stored, cleaned, within the limits of a message sent here
    (count, characters each and together); a note for each one left out."""
    documents, total = [], 0
    for document in turn.documents:
        name = shortened(" ".join(stored_text(document.name).split()), 200) or "document"
        text = stored_text(document.text)
        if len(text) > settings.max_document_chars:
            notes.append(f"{name} was left out: its text is over "
                         f"{settings.max_document_chars:,} characters")
        elif len(documents) >= settings.max_documents:
            notes.append(f"{name} was left out: a message holds at most "
                         f"{settings.max_documents} documents")
        elif total + len(text) > settings.max_document_chars_per_message:
            notes.append(f"{name} was left out: the documents of a message hold at most "
                         f"{settings.max_document_chars_per_message:,} characters together")
        else:
            total += len(text)
            documents.append(Document(name=name, kind=document.kind,
                                      byte_size=document.byte_size, chars=len(text),
                                      text=text))
    return documents


def _attachments(turn: Turn, settings: SaveSettings) -> tuple[list[Attachment], list[str]]:
    """The turn's images prepared for storing, and a note for each one left out."""
    attachments, notes = [], []
    for image in turn.images:
        if image.data is None:
            notes.append(f"{image.name} was left out")
        elif len(image.data) > settings.max_image_bytes:
            notes.append(f"an image over {settings.max_image_bytes / 2**20:g} MB was left out")
        elif len(attachments) >= settings.max_images:
            notes.append(f"an image was left out: a message holds at most "
                         f"{settings.max_images}")
        else:
            try:
                prepared = settings.images.prepare(image.data)
            except (NotAnImage, TooManyPixels):
                notes.append("an image that could not be read was left out")
                continue
            attachments.append(Attachment(
                content_type=prepared.content_type, data=prepared.data,
                width=prepared.width, height=prepared.height, byte_size=len(prepared.data)))
    return attachments, notes
