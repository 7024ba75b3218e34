"""Text made storable: what PostgreSQL and SQLite refuse in a text column is taken out.

PostgreSQL refuses NUL in text ("text fields cannot contain NUL"), and neither database
can encode a lone UTF-16 surrogate (JSON may escape half of a pair, `\\ud83d`, without
the other half). Text from the upstream passes through storable() where it enters
(webapp/upstream/llm.py), so every later write, render, search and share sees clean text.
Standard library only.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """The text without NUL characters, and with lone surrogates made U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
