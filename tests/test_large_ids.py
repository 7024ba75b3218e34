"""Ids in URLs past what the database holds are a 404, never a server error."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, start_chat
from webapp.web.converters import MAX_ID

ROUTES = [("get", "messages/{id}/stream"), ("get", "messages/{id}"),
          ("post", "messages/{id}/retry"), ("post", "messages/{id}/edit"),
          ("post", "messages/{id}/show"), ("post", "messages/{id}/continue"),
          ("post", "messages/{id}/stop"), ("get", "attachments/{id}")]
# Past PostgreSQL's integer, past SQLite's 64 bits, and far past both.
TOO_LARGE = [MAX_ID + 1, 2**63, 99999999999999999999, int("9" * 400)]


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("number", TOO_LARGE)
def test_an_id_past_the_databases_range_is_a_404(client, method, path, number):
    url = start_chat(client, "Hi")
    response = getattr(client, method)(f"{url}/" + path.format(id=number),
                                       data={"content": "Edited"})
    assert response.status_code == 404


@pytest.mark.parametrize("method, path", ROUTES)
def test_the_largest_id_the_database_holds_is_looked_up(client, method, path):
    url = start_chat(client, "Hi")
    response = getattr(client, method)(f"{url}/" + path.format(id=MAX_ID),
                                       data={"content": "Edited"})
    assert response.status_code == 404  # no such row, found by a query that worked


def test_ids_in_range_still_reach_their_message(client, app):
    url = start_chat(client, "Hi")
    reply = messages_of(app)[-1]
    assert client.get(f"{url}/messages/{reply.id}").status_code == 303
