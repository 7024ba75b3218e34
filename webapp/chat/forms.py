"""Validation of what people send: messages, images, documents, titles, system prompts,
model names."""

from __future__ import annotations

import logging

from flask import current_app, request
from werkzeug.datastructures import FileStorage

from ..conversations.catalog import model_choices
from ..conversations.comparisons import MAX_MODELS
from ..conversations.documents import ExtractedDocument, TooLarge, Unreadable
from ..conversations.images import NotAnImage, PreparedImage, TooManyPixels
from ..conversations.text import (clean_text, shortened,  # noqa: F401  (title_from: for views)
                                  title_from)

log = logging.getLogger(__name__)


class Invalid(ValueError):
    """The input was refused; str(self) is the sentence to show."""


def message_text(raw: str | None) -> str:
    """A message to send: not blank and within MAX_MESSAGE_CHARS."""
    text = clean_text(raw)
    if not text.strip():
        raise Invalid("Type a message before sending.")
    _within(text, current_app.config["MAX_MESSAGE_CHARS"], "The message")
    return text


def images(files: list[FileStorage]) -> list[PreparedImage]:
    """The images attached to a message, decoded, scaled and stripped of metadata.

    At most MAX_IMAGES, each a PNG, JPEG, WebP or GIF (whatever its name says) within
    MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS.
    """
    chosen = [file for file in files if file.filename]
    limit, max_bytes = current_app.config["MAX_IMAGES"], current_app.config["MAX_IMAGE_BYTES"]
    if chosen and not limit:
        raise Invalid("Images are turned off on this server; remove them to send.")
    if len(chosen) > limit:
        raise Invalid(f"A message can carry at most {limit} images; you attached "
                      f"{len(chosen)}. Remove some and send again.")
    prepared = []
    preparer = current_app.extensions["images"]
    for file in chosen:
        name = "“" + shortened(clean_text(file.filename), 60) + "”"
        raw = file.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise Invalid(f"{name} is larger than {size_text(max_bytes)}, the limit for "
                          "one image. Pick a smaller image.")
        try:
            prepared.append(preparer.prepare(raw))
        except TooManyPixels as error:
            log.info("refused attachment %s: %s", name, error)
            raise Invalid(f"{name} has more than {preparer.max_pixels / 1e6:.3g} megapixels, "
                          "the limit for one image. Scale it down and send it again.") from None
        except NotAnImage as error:
            log.info("refused attachment %s: %s", name, error)
            raise Invalid(f"{name} is not an image that can be sent: use PNG, JPEG, "
                          "WebP or GIF.") from None
    return prepared


def documents(files: list[FileStorage]) -> list[ExtractedDocument]:
    """The documents attached to a message, their text read (in the order attached).

    At most MAX_DOCUMENTS, each within MAX_DOCUMENT_BYTES and MAX_DOCUMENT_CHARS, all of
    them within MAX_DOCUMENT_CHARS_PER_MESSAGE.
    """
    chosen = [file for file in files if file.filename]
    config = current_app.config
    limit, max_bytes = config["MAX_DOCUMENTS"], config["MAX_DOCUMENT_BYTES"]
    if chosen and not limit:
        raise Invalid("Documents are turned off on this server; remove them to send.")
    if len(chosen) > limit:
        raise Invalid(f"A message can carry at most {limit} documents; you attached "
                      f"{len(chosen)}. Remove some and send again.")
    read, total = [], 0
    for file in chosen:
        read.append(document(file, max_bytes))
        total += len(read[-1].text)
    if total > config["MAX_DOCUMENT_CHARS_PER_MESSAGE"]:
        raise Invalid(f"The documents hold {total:,} characters of text together; the "
                      f"limit for one message is {config['MAX_DOCUMENT_CHARS_PER_MESSAGE']:,}. "
                      "Send some of them with the next message.")
    return read


def document(file: FileStorage, max_bytes: int) -> ExtractedDocument:
    """One attached document's text, or Invalid with a sentence naming it."""
    name = shortened(" ".join(clean_text(file.filename).split()), 200) or "document"
    try:
        return current_app.extensions["documents"].read(name, file.stream, max_bytes)
    except TooLarge:
        raise Invalid(f"“{name}” is larger than {size_text(max_bytes)}, the limit for "
                      "one document. Attach a smaller part of it.") from None
    except Unreadable as error:
        log.info("refused document: %s", error)
        raise Invalid(str(error)) from None


def size_text(size: int) -> str:
    """A byte count for people: 10 MB, 512 KB."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.3g} MB"
    return f"{size / 1024:.3g} KB"


def system_prompt(raw: str | None) -> str:
    """An optional system prompt within MAX_MESSAGE_CHARS."""
    text = clean_text(raw).strip()
    _within(text, current_app.config["MAX_MESSAGE_CHARS"], "The system prompt")
    return text


def title(raw: str | None) -> str:
    """A conversation title: one line, not blank, within MAX_TITLE_CHARS."""
    text = " ".join(clean_text(raw).split())
    if not text:
        raise Invalid("A title can't be empty.")
    _within(text, current_app.config["MAX_TITLE_CHARS"], "The title")
    return text


def model_name(raw: str | None) -> str:
    """A model id as the upstream names it, or the default of new conversations when blank
    (REGOLO_MODEL, or a served model when the upstream does not serve it)."""
    text = clean_text(raw).strip()
    if len(text) > 200 or any(c.isspace() for c in text):
        raise Invalid("That model name is not valid; pick one from the list.")
    return text or model_choices().default


def models_list(raw: str) -> list[str]:
    """The model ids of a comma-separated list (?models=a,b), cleaned, blanks and ids that
    could not be a model's dropped."""
    names = (clean_text(name).strip() for name in raw.split(","))
    return [name for name in names if name and len(name) <= 200
            and not any(c.isspace() for c in name)]


def models_asked() -> list[str]:
    """The models the posted form names to compare (the "models" fields, each maybe a
    comma-separated list), cleaned; empty for a chat with one model."""
    return models_list(",".join(request.form.getlist("models")))


def replies_asked() -> int:
    """How many replies a new chat's form asks for: one per model to compare (counted at
    most as many as a comparison may have), else one."""
    return min(max(1, len(set(models_asked()))), MAX_MODELS)


def _within(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise Invalid(f"{what} is {len(text):,} characters long; the limit is {limit:,}. "
                      "Shorten it or split it into parts.")
