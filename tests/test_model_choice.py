"""A configured default model the upstream does not serve: new chats use a served one and
the new-chat page says so; a model refused by the upstream is worded as not served."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, start_chat, text_of

SERVED = ["gpt-oss-120b", "Qwen3-8B"]


@pytest.fixture
def other_server(upstream):
    """An upstream serving other models than REGOLO_MODEL, refusing the rest with a 404
    as vLLM does."""
    upstream.models = SERVED
    upstream.unknown_model_status = 404
    return upstream


def test_the_new_chat_page_says_which_served_model_it_uses(client, other_server):
    page = client.get("/").get_data(as_text=True)
    assert ("REGOLO_MODEL Llama-3.3-70B-Instruct is not served by this server; using "
            "Qwen3-8B.") in text_of(page)
    assert '<option value="Qwen3-8B" selected>' in page
    assert 'value="Llama-3.3-70B-Instruct"' not in page


def test_the_first_message_is_answered_by_a_served_model(client, app, other_server):
    url = start_chat(client, "Hello there")
    assert other_server.chat_requests[-1].json["model"] == "Qwen3-8B"
    reply = messages_of(app)[1]
    assert reply.status == "complete", reply.error
    assert "not served" not in text_of(client.get(url).get_data(as_text=True))


def test_a_model_the_server_does_not_serve_is_said_so(client, app, other_server):
    url = start_chat(client, "Hello there", model="Llama-3.3-70B-Instruct")
    page = text_of(client.get(url).get_data(as_text=True))
    assert "This server does not serve model Llama-3.3-70B-Instruct; pick another one." \
        in page
    assert "REGOLO_BASE_URL" not in page.split("Details")[0]
    assert messages_of(app)[1].status == "error"


def test_a_served_default_is_kept_without_a_notice(client, upstream):
    page = client.get("/").get_data(as_text=True)
    assert '<option value="Llama-3.3-70B-Instruct" selected>' in page
    assert "not served" not in page
