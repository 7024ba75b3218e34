"""Which export format one conversation is in, and its parser."""

from __future__ import annotations

from collections.abc import Callable

from . import chatgpt, librechat, openwebui, own
from .common import Image, Imported, Skipped

# In the order they are tried; each module has recognises(raw) and parse(raw, find_image).
FORMATS = (own, chatgpt, openwebui, librechat)
NOT_A_CONVERSATION = ("It is not a conversation of an export this app reads (ChatGPT, "
                      "Open WebUI, LibreChat or this app's JSON).")


def parse(raw, find_image: Callable[[str], Image]) -> Imported:
    """The conversation in `raw` (one item of an export), or Skipped saying why not."""
    if isinstance(raw, dict):
        for module in FORMATS:
            if module.recognises(raw):
                return module.parse(raw, find_image)
    raise Skipped(NOT_A_CONVERSATION)
