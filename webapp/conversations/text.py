"""Plain text as the app keeps it: control characters removed, shortened, made into a title,
fenced as a code block, Markdown taken out."""

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


def fenced(text: str, language: str = "") -> str:
    """Text as a Markdown code block, with a fence longer than any backtick run inside."""
    longest = run = 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def title_from(text: str, words: int = 8, limit: int = 80) -> str:
    """A title made of the first words of a message."""
    return shortened(" ".join(text.split()[:words]), limit)


# Markdown syntax and what replaces it, in order: whole constructs first (fences, links,
# paired emphasis), then markers at the start of a line, then strays left by a cut.
_MARKDOWN = [
    (re.compile(r"(`{3,}|~{3,})[^\s`~]*"), " "),                    # code fences, language
    (re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)"), r"\1"),          # images and links
    (re.compile(r"(\*{1,3}|(?<!\w)_{1,3}|~~)(?=\S)(.+?)(?<=\S)\1(?!\w)"), r"\2"),  # emphasis
    (re.compile(r"`+([^`]*)`+"), r"\1"),                             # code spans
    (re.compile(r"^[ \t]*(#{1,6}|>[> ]*|[-*+]|\d{1,9}[.)])[ \t]+", re.M), ""),  # line markers
    (re.compile(r"^[ \t|:-]*-{3,}[ \t|:-]*$", re.M), " "),            # rules, table rules
    (re.compile(r"\*{2,}|(?<!\w)_{2,}|_{2,}(?!\w)|~~|`+|\|"), " "),   # strays and table cells
]


def plain_markdown(text: str) -> str:
    """Markdown's text without its syntax, on one line (for snippets): no fences, stars,
    backticks, link targets, heading or list markers, or table pipes."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())
