"""Token usage: each reply's, and the shown branch's total in the conversation header."""

from __future__ import annotations

from harness.fake_upstream import Reply
from tests.conftest import start_chat, text_of
from tests.test_streaming import read_events, send_htmx


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def test_the_conversation_total_is_in_the_header_and_the_done_event(client, upstream):
    upstream.enqueue(Reply("One.", usage=usage(10, 2)))
    url = start_chat(client, "Hi")
    upstream.enqueue(Reply("Two.", usage=usage(1200, 3), token_delay=0.05))
    events = read_events(client, send_htmx(client, url, "More"))
    total = "This conversation so far: 1,215 tokens (1,210 prompt + 5 reply)"
    assert total in text_of(events[-1][1])
    assert 'id="usage-total" hx-swap-oob="true"' in events[-1][1]
    header = client.get(url).get_data(as_text=True).split("</header>")[0]
    assert total in text_of(header) and "1200 prompt + 3 reply tokens" not in header


def test_replies_without_usage_are_left_out_of_the_total(client, upstream):
    upstream.enqueue(Reply("No counts.", send_usage=False))
    url = start_chat(client, "Hi")
    page = client.get(url).get_data(as_text=True)
    assert 'id="usage-total" hidden>' in page
    assert "This conversation so far" not in page
    upstream.enqueue(Reply("Counted.", usage=usage(7, 1)))
    client.post(f"{url}/messages", data={"content": "More"})
    assert "This conversation so far: 8 tokens (7 prompt + 1 reply)" in text_of(
        client.get(url).get_data(as_text=True))
