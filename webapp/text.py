"""Plain text as the app keeps it: control characters removed, shortened, made into a title."""

from __future__ import annotations

import re

# Control characters other than tab, newline and carriage return, and NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(raw: str | None) -> str:
    """Text without control characters, with newlines normalised."""
    return _CONTROL.sub("", (raw or "").replace("\r\n", "\n"))


def shortened(text: str, limit: int) -> str:
    """The text, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title_from(text: str, words: int = 8, limit: int = 80) -> str:
    """A title made of the first words of a message."""
    return shortened(" ".join(text.split()[:words]), limit)
