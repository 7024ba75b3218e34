"""Keeps secrets and message content out of the logs.

`/s/<token>`, `/d/<token>` and `/c/<id>` keep their first 4 characters, e.g. `/s/Ab3x…`, so logs don't
grant access; the values of a `/search?` query (what people search for is message
content) become `…`. Used on every log record the app's process makes (install(): its
request lines, exceptions and tracebacks included) and by gunicorn's access log (see
gunicorn.conf.py, which loads this file by path: stdlib only, so it stays that way).
"""

from __future__ import annotations

import logging
import re

KEPT_CHARS = 4
_SECRET_SEGMENT = re.compile(r"(/[scd]/[A-Za-z0-9_-]{%d})[A-Za-z0-9_-]+" % KEPT_CHARS)
_SEARCH_QUERY = re.compile(r"(/search\?)([^\s\"'#]*)")
_QUERY_VALUE = re.compile(r"=[^&]*")


def mask(text: str) -> str:
    """The text with every /s/<token>, /d/<token> and /c/<id> shortened to its first characters,
    and the values of every /search? query hidden."""
    text = _SECRET_SEGMENT.sub("\\1…", text)
    if "/search?" in text:
        text = _SEARCH_QUERY.sub(lambda found: found[1] + mask_query(found[2]), text)
    return text


def mask_query(query: str) -> str:
    """A query string with its values hidden: `q=secret&page=2` becomes `q=…&page=…`."""
    return _QUERY_VALUE.sub("=…", query)


def mask_values(values: dict) -> dict:
    """A copy of a dict with its string values masked (gunicorn's access log atoms; for a
    /search request, every atom holding its query string alone is hidden too)."""
    masked = {key: mask(value) if isinstance(value, str) else value
              for key, value in values.items()}
    query = values.get("q")
    if values.get("U") == "/search" and isinstance(query, str) and query:
        hidden = mask_query(query)
        masked = {key: hidden if value == query else value for key, value in masked.items()}
    return masked


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, and its traceback if it has one, masked."""
    try:
        record.msg = mask(record.getMessage())
        record.args = None
    except Exception:  # a message whose arguments don't fit: logging reports it later
        return record
    if record.exc_info and not record.exc_text:
        record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
    return record


def _masking_factory(make_record):
    def make_masked_record(*args, **kwargs) -> logging.LogRecord:
        return mask_record(make_record(*args, **kwargs))

    make_masked_record.masks = True
    return make_masked_record


def install() -> None:
    """Mask every log record made in this process from now on (idempotent).

    A record factory rather than a filter: it covers every logger and every handler,
    the ones configured later included (gunicorn's, a test's capture).
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "masks", False):
        logging.setLogRecordFactory(_masking_factory(factory))
