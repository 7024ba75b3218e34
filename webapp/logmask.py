"""Shortens share and device link tokens and conversation ids in logged URLs, so logs don't
grant access.

`/s/<token>`, `/d/<token>` and `/c/<id>` keep their first 4 characters, e.g. `/s/Ab3x…`. Used by a
filter on the werkzeug logger (`flask run`) and by gunicorn's access log (see
gunicorn.conf.py, which loads this file by path: stdlib only, so it stays that way).
"""

from __future__ import annotations

import logging
import re

KEPT_CHARS = 4
_SECRET_SEGMENT = re.compile(r"(/[scd]/[A-Za-z0-9_-]{%d})[A-Za-z0-9_-]+" % KEPT_CHARS)


def mask(text: str) -> str:
    """The text with every /s/<token>, /d/<token> and /c/<id> shortened to its first characters."""
    return _SECRET_SEGMENT.sub("\\1…", text)


def mask_values(values: dict) -> dict:
    """A copy of a dict with its string values masked (gunicorn's access log atoms)."""
    return {key: mask(value) if isinstance(value, str) else value
            for key, value in values.items()}


class MaskFilter(logging.Filter):
    """Masks the formatted message of every record passing through a logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        return True


WERKZEUG_FILTER = MaskFilter()


def install() -> None:
    """Mask the request lines the development server (werkzeug) logs (idempotent)."""
    logging.getLogger("werkzeug").addFilter(WERKZEUG_FILTER)
