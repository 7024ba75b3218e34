"""The core chat flows: history replay, pages with and without htmx, rename, delete."""

from __future__ import annotations

import re

from harness.fake_upstream import Reply
from tests.conftest import API_KEY, conversation_url, messages_of, start_chat, text_of

MODEL = "Llama-3.3-70B-Instruct"


def test_each_turn_replays_the_full_history(client, upstream):
    url = start_chat(client, "First question", system_prompt="You are terse.", model=MODEL)
    client.post(f"{url}/messages", data={"content": "Second question"})
    client.post(f"{url}/messages", data={"content": "Third question"})

    assert len(upstream.chat_requests) == 3
    system = {"role": "system", "content": "You are terse."}
    assert upstream.sent_messages(0) == [system,
                                         {"role": "user", "content": "First question"}]
    assert upstream.sent_messages(1) == [
        system,
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "You said: First question"},
        {"role": "user", "content": "Second question"},
    ]
    assert upstream.sent_messages(2) == upstream.sent_messages(1) + [
        {"role": "assistant", "content": "You said: Second question"},
        {"role": "user", "content": "Third question"},
    ]
    request = upstream.chat_requests[2]
    assert request.json["model"] == MODEL
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_without_a_system_prompt_none_is_sent(client, upstream):
    start_chat(client, "Hi")
    assert upstream.sent_messages(0) == [{"role": "user", "content": "Hi"}]


def test_plain_form_flow_redirects_to_the_finished_reply(client, app):
    response = client.post("/c", data={"content": "Hello there"})
    assert response.status_code == 303
    page = client.get(conversation_url(response)).get_data(as_text=True)
    assert "You said: Hello there" in page
    assert 'data-status="complete"' in page
    assert "Hello there" in page.split("<title>")[1].split("</title>")[0]
    assert [m.role for m in messages_of(app)] == ["user", "assistant"]
    assert messages_of(app)[1].status == "complete"


def test_usage_and_finish_reason_are_stored(client, app, upstream):
    upstream.enqueue(Reply("Counted.", usage={"prompt_tokens": 11, "completion_tokens": 2,
                                              "total_tokens": 13}))
    url = start_chat(client, "Count")
    reply = messages_of(app)[1]
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (11, 2, 13)
    assert reply.finish_reason == "stop"
    assert reply.model == MODEL
    assert "11 prompt + 2 reply tokens" in text_of(client.get(url).get_data(as_text=True))


def test_htmx_send_returns_a_fragment_that_streams(client, app, upstream):
    url = start_chat(client, "Hello")
    response = client.post(f"{url}/messages", data={"content": "More"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<nav" not in html
    assert "<p>More</p>" in html
    assert 'sse-connect="' in html and 'sse-close="done"' in html

    stream = client.get(html.split('sse-connect="')[1].split('"')[0])
    events = stream.get_data(as_text=True)
    assert stream.mimetype == "text/event-stream"
    assert stream.headers["X-Accel-Buffering"] == "no"
    assert events.rstrip().split("\n\n")[-1].startswith("event: done")
    assert "You said: More" in events


def test_htmx_new_chat_redirects_the_page(client):
    response = client.post("/c", data={"content": "Hi"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/c/")


def test_conversations_are_listed_newest_first(client):
    first = start_chat(client, "Alpha topic")
    second = start_chat(client, "Beta topic")
    page = client.get("/").get_data(as_text=True)
    sidebar = page.split('class="conversations"')[1]
    assert sidebar.index(second) < sidebar.index(first)
    client.post(f"{first}/messages", data={"content": "again"})
    sidebar = client.get("/").get_data(as_text=True).split('class="conversations"')[1]
    assert sidebar.index(first) < sidebar.index(second)


def test_public_ids_are_unguessable(client):
    url = start_chat(client, "Hi")
    public_id = url.rsplit("/", 1)[1]
    assert len(public_id) >= 22 and not public_id.isdigit()


def test_model_list_comes_from_the_upstream(client, upstream):
    page = client.get("/").get_data(as_text=True)
    for model in ("Llama-3.3-70B-Instruct", "gpt-oss-120b", "Qwen3-8B"):
        assert f'<option value="{model}"' in page


def test_model_list_falls_back_to_the_default_and_says_why(client, upstream):
    upstream.models_status = 500
    page = client.get("/").get_data(as_text=True)
    model_select = re.search(r'<select[^>]*name="model".*?</select>', page, re.S)[0]
    assert model_select.count("<option") == 1
    assert '<option value="Llama-3.3-70B-Instruct"' in page
    assert "Only the default model is offered" in page


def test_the_chosen_model_is_sent_and_can_be_changed(client, upstream):
    url = start_chat(client, "Hi", model="Qwen3-8B")
    assert upstream.chat_requests[0].json["model"] == "Qwen3-8B"
    assert client.post(f"{url}/model", data={"model": "gpt-oss-120b"}).status_code == 303
    client.post(f"{url}/messages", data={"content": "Again"})
    assert upstream.chat_requests[1].json["model"] == "gpt-oss-120b"


def test_rename_with_a_plain_form_and_with_htmx(client):
    url = start_chat(client, "Hi")
    assert client.post(f"{url}/rename", data={"title": "  Trip   plans "}).status_code == 303
    assert ">Trip plans</h1>" in client.get(url).get_data(as_text=True)

    response = client.post(f"{url}/rename", data={"title": "Budget"},
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert ">Budget</h1>" in html and "<nav" not in html
    assert 'hx-swap-oob="true"' in html


def test_rename_to_blank_is_refused(client):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/rename", data={"title": "   "})
    assert response.status_code == 422
    assert "A title can&#39;t be empty." in response.get_data(as_text=True)


def test_delete_asks_first_then_deletes(client, app):
    url = start_chat(client, "Hi")
    confirm = client.get(f"{url}/delete")
    assert confirm.status_code == 200 and "be undone" in confirm.get_data(as_text=True)
    response = client.post(f"{url}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert client.get(url).status_code == 404
    assert messages_of(app) == []


def test_delete_with_htmx_redirects(client):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/delete", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/"
    assert client.get(url).status_code == 404
