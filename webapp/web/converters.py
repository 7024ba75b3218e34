"""URL converters: a row id in a URL matches only when the database could hold it.

Integer primary keys are 32-bit on PostgreSQL (`integer`), and SQLite refuses integers
past 64 bits outright, so a larger number in a URL would fail the query with a server
error. `<id:name>` accepts 1 to MAX_ID only; anything else matches no route: 404.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

# The largest value of an Integer column on every supported database (PostgreSQL's).
MAX_ID = 2**31 - 1


class RowId(IntegerConverter):
    """A positive integer no larger than MAX_ID."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def init_app(app: Flask) -> None:
    """Register `<id:...>` for the routes (before any blueprint is registered)."""
    app.url_map.converters["id"] = RowId
