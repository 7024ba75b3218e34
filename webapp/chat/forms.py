"""Validation of what people type: messages, titles, system prompts, model names."""

from __future__ import annotations

import re

from flask import current_app

# Control characters other than tab, newline and carriage return, and NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Invalid(ValueError):
    """The input was refused; str(self) is the sentence to show."""


def clean_text(raw: str | None) -> str:
    """Text without control characters, with newlines normalised."""
    return _CONTROL.sub("", (raw or "").replace("\r\n", "\n"))


def message_text(raw: str | None) -> str:
    """A message to send: not blank and within MAX_MESSAGE_CHARS."""
    text = clean_text(raw)
    if not text.strip():
        raise Invalid("Type a message before sending.")
    _within(text, current_app.config["MAX_MESSAGE_CHARS"], "The message")
    return text


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
    """A model id as the upstream names it, or the configured default when blank."""
    text = clean_text(raw).strip()
    if len(text) > 200 or any(c.isspace() for c in text):
        raise Invalid("That model name is not valid; pick one from the list.")
    return text or current_app.config["REGOLO_MODEL"]


def title_from(text: str, words: int = 8, limit: int = 80) -> str:
    """A title made of the first words of a message."""
    title_text = " ".join(text.split()[:words])
    return title_text if len(title_text) <= limit else title_text[: limit - 1] + "…"


def _within(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise Invalid(f"{what} is {len(text):,} characters long; the limit is {limit:,}. "
                      "Shorten it or split it into parts.")
