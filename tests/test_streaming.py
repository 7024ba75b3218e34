"""Streaming: replies grow in place, survive reloads, stop on request, and faults keep text."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of, wait_for_generations, wait_until
from webapp.conversations.models import Conversation, Message, utcnow
from webapp.extensions import db
from webapp.replies.live import DIED_SENTENCE, LiveReply
from webapp.replies.updates import ReplyEvents, sse_event

TOKENS = [f"w{i} " for i in range(12)]


def send_htmx(client, url: str, content: str = "Go") -> str:
    """Send with htmx; the stream URL of the new reply."""
    response = client.post(f"{url}/messages", data={"content": content},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True).split('sse-connect="')[1].split('"')[0]


def read_events(client, stream_url: str, limit: int | None = None):
    """(event, data) pairs of an SSE stream as they arrive; stops after `limit` events."""
    response = client.get(stream_url, buffered=False)
    assert response.cache_control.no_cache and response.cache_control.private
    events, buffer = [], ""
    try:
        for chunk in response.response:
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                lines = block.split("\n")
                if lines[0].startswith(":"):
                    continue
                name = lines[0].removeprefix("event: ")
                data = "\n".join(line.removeprefix("data: ") for line in lines[1:])
                events.append((name, data))
                if limit is not None and len(events) >= limit:
                    return events
    finally:
        response.close()
    return events


OOB_SWAP = re.compile(r'<div hx-swap-oob="(\w+):#([\w-]+)">(.*?)</div>(?=<div hx-swap-oob=|$)', re.S)


def apply_swap(body: str, swap: str, target: str, html: str) -> str:
    """One out-of-band swap into a reply body, as htmx does it (the parts hold no <div>)."""
    opened = body.index(f'id="{target}">')
    inside = opened + len(f'id="{target}">')
    closed = body.index("</div>", inside)
    if swap == "beforebegin":
        start = body.rindex("<div", 0, opened)
        return body[:start] + html + body[start:]
    if swap == "beforeend":
        return body[:closed] + html + body[closed:]
    assert swap == "innerHTML"
    return body[:inside] + html + body[closed:]


def shown(events) -> list[tuple[str, str]]:
    """(event, the reply's HTML in the browser after it): "update" and "done" replace it,
    a "delta" applies its out-of-band swaps, and holds nothing else."""
    body, states = "", []
    for name, data in events:
        if name == "delta":
            assert OOB_SWAP.sub("", data) == "", data
            for swap, target, html in OOB_SWAP.findall(data):
                body = apply_swap(body, swap, target, html)
        else:
            body = data
        states.append((name, body))
    return states


def reply_row(app) -> Message:
    return messages_of(app)[-1]


def test_the_reply_grows_in_place_then_is_swapped_for_the_final_message(client, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.03))
    events = read_events(client, send_htmx(client, url))
    names = [name for name, _ in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert names[0] == "update" and set(names[1:-1]) == {"delta"}
    updates = [text_of(html) for name, html in shown(events) if name != "done"]
    counts = [text.count(" w") + text.startswith("w") for text in updates]
    assert len(updates) >= 3 and counts == sorted(counts) and counts[0] < len(TOKENS)
    assert updates[-1].startswith("w0 w1 w2")
    final = events[-1][1]
    assert 'data-status="complete"' in final and "sse-connect" not in final
    assert "w11" in final


PARAGRAPHS = ["First paragraph, finished early.", "Second one, *in the middle*.",
              "Third and last."]


def test_each_finished_block_is_sent_once_and_the_tail_replaced(client, upstream):
    url = start_chat(client)
    tokens = [word + " " for word in "\n\n".join(PARAGRAPHS).split(" ")]
    upstream.enqueue(Reply(tokens=tokens, reasoning="Think it over, step by step.",
                           token_delay=0.03))
    events = read_events(client, send_htmx(client, url))
    streamed = [data for name, data in events if name != "done"]
    assert sum(data.count("First paragraph") for data in streamed
               if "beforebegin" in data) == 1
    assert not any("First paragraph" in data and "Third" in data for data in streamed)
    # Reasoning is appended, never sent again (its tokens may land in separate events).
    assert sum(data.count("over,") for data in streamed) == 1
    last = shown(events)[-2][1]
    assert text_of(last).startswith("Thinking Think it over, step by step.")
    assert "First paragraph, finished early. Second one, in the middle" in text_of(last)
    assert text_of(last).endswith("Writing…") and "Third" in text_of(last)
    assert last.count("<em>in the middle</em>") == 1


def test_a_stream_sends_the_whole_reply_first_then_what_changes(app):
    live, events = LiveReply(7), ReplyEvents()
    with app.test_request_context():
        live.append("Hello **wor", "Let me <think>")
        first = events.event(live.snapshot())
        assert first.startswith("event: update\n")
        assert 'id="m-7-thinking">Let me &lt;think&gt;</div>' in first
        assert 'id="m-7-tail"><p>Hello **wor</p>' in first
        live.append("ld**.\n\nNe", " a bit")
        delta = events.event(live.snapshot())
        assert delta == (
            "event: delta\n"
            'data: <div hx-swap-oob="beforeend:#m-7-thinking"> a bit</div>'
            '<div hx-swap-oob="beforebegin:#m-7-tail"><p>Hello <strong>world</strong>.</p>\n'
            'data: </div><div hx-swap-oob="innerHTML:#m-7-tail"><p>Ne</p>\n'
            "data: </div>\n\n")
        live.append("\n")  # the HTML stays the same: nothing to send
        assert events.event(live.snapshot()) is None
        live.set_notice("Retrying in 2 s…")  # the body changes shape: all of it again
        again = events.event(live.snapshot())
        assert again.startswith("event: update\n") and "Retrying in 2 s" in again
        assert "<strong>world</strong>" in again and "Let me &lt;think&gt; a bit" in again
        late = ReplyEvents().event(live.snapshot())  # a second tab gets everything first
        assert late == again


def test_partial_text_is_saved_while_streaming(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.1))
    send_htmx(client, url)
    wait_until(lambda: reply_row(app).status == "streaming" and reply_row(app).content)
    partial = reply_row(app)
    assert 0 < len(partial.content) < len("".join(TOKENS))
    wait_for_generations(app)
    assert reply_row(app).content == "".join(TOKENS)
    assert reply_row(app).status == "complete"


def test_generation_does_not_need_a_connected_browser(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.01))
    send_htmx(client, url)  # nobody follows the stream
    wait_for_generations(app)
    assert reply_row(app).status == "complete"
    assert reply_row(app).content == "".join(TOKENS)


def test_a_reconnect_resumes_from_the_current_state(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.08))
    stream_url = send_htmx(client, url)
    first = read_events(client, stream_url, limit=1)  # then the tab closes
    assert first[0][0] == "update"
    time.sleep(0.4)
    resumed = read_events(client, stream_url)
    assert resumed[0][0] == "update"  # the whole reply so far, before any delta
    assert text_of(resumed[0][1]).count("w") > text_of(first[0][1]).count("w")
    assert resumed[-1][0] == "done" and "w11" in resumed[-1][1]
    page = client.get(url).get_data(as_text=True)
    assert "w11" in page and "sse-connect" not in page


def test_a_finished_reply_streams_only_done(client, app, upstream):
    url = start_chat(client)
    stream_url = send_htmx(client, url)
    wait_for_generations(app)
    assert [name for name, _ in read_events(client, stream_url)] == ["done"]


def test_another_process_follows_through_the_database(make_app, upstream):
    app = make_app()
    other = make_app()  # same database, its own memory: like a second worker
    client = app.test_client()
    url = start_chat(client)
    other_client = other.test_client()
    other_client.set_cookie("session", client.get_cookie("session").value)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))
    events = read_events(other_client, send_htmx(client, url))
    assert events[-1][0] == "done" and "w11" in events[-1][1]
    assert any(name == "update" for name, _ in events)


def test_stop_keeps_the_text_so_far(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.1))
    stream_url = send_htmx(client, url)
    wait_until(lambda: reply_row(app).content)
    reply_id = reply_row(app).id
    assert client.post(f"{url}/messages/{reply_id}/stop",
                       headers={"HX-Request": "true"}).status_code == 204
    stopped = reply_row(app)
    assert stopped.status == "stopped" and stopped.content
    assert len(stopped.content) < len("".join(TOKENS))
    events = read_events(client, stream_url)
    assert events[-1][0] == "done" and "Stopped" in events[-1][1]
    wait_for_generations(app)
    assert reply_row(app).content == stopped.content


def test_stop_requested_through_another_worker(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.1))
    send_htmx(client, url)
    wait_until(lambda: reply_row(app).content)
    with app.app_context():  # what a stop served by another process writes
        db.session.execute(update(Message).where(Message.id == reply_row(app).id)
                           .values(stop_requested=True))
        db.session.commit()
    wait_until(lambda: reply_row(app).status == "stopped", timeout=2)
    assert len(reply_row(app).content) < len("".join(TOKENS))


def test_a_second_send_while_streaming_is_refused(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))
    send_htmx(client, url)
    response = client.post(f"{url}/messages", data={"content": "Too soon"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "still being written" in response.get_data(as_text=True)
    wait_for_generations(app)
    assert [m.content for m in messages_of(app) if m.role == "user"] == ["Hello", "Go"]


def test_reasoning_is_shown_apart_and_never_replayed(client, app, upstream):
    upstream.enqueue(Reply("The answer.", reasoning="Let me think step by step."))
    url = start_chat(client, "Question")
    reply = reply_row(app)
    assert reply.reasoning == "Let me think step by step."
    assert reply.content == "The answer."
    page = client.get(url).get_data(as_text=True)
    assert f"<summary>Thinking · {reply.thinking_seconds:.1f} s</summary>" in page
    client.post(f"{url}/messages", data={"content": "Next"})
    assert upstream.sent_messages(-1)[1] == {"role": "assistant", "content": "The answer."}


def test_a_stream_without_usage_still_completes(client, app, upstream):
    upstream.enqueue(Reply("Fine.", send_usage=False))
    start_chat(client)
    assert reply_row(app).status == "complete"
    assert reply_row(app).total_tokens is None
    assert upstream.chat_requests[0].json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fault, sentence", [
    ({"drop_after": 3}, "dropped in the middle of the reply"),
    ({"end_early_after": 3}, "cut off before it finished"),
    ({"malformed_after": 3}, "malformed piece of the reply"),
    ({"stream_error_after": 3}, "reported an error in the middle of the reply"),
    ({"stall_after": 3, "stall_seconds": 3}, "stopped sending in the middle of the reply"),
])
def test_a_broken_stream_keeps_the_partial_text_and_offers_retry(make_app, upstream,
                                                                fault, sentence):
    # Only a stall waits for the read timeout, so only it gets a short one: on a busy
    # machine a short one could time out the other faults' first token.
    app = make_app(**({"REGOLO_READ_TIMEOUT": 0.5} if "stall_after" in fault else {}))
    client = app.test_client()
    upstream.enqueue(Reply(tokens=TOKENS, **fault))
    url = start_chat(client)
    reply = reply_row(app)
    assert reply.status == "interrupted"
    assert reply.content == "".join(TOKENS[:3])
    page = text_of(client.get(url).get_data(as_text=True))
    assert sentence in page and "w0 w1 w2" in page and "Retry" in page
    assert len(upstream.chat_requests) == 1  # started replies are never silently retried


def test_a_rate_limit_is_waited_out_honouring_retry_after(client, app, upstream):
    upstream.enqueue(Reply(status=429, retry_after="1"), Reply(tokens=TOKENS))
    url = start_chat(client)
    upstream.reset()
    upstream.enqueue(Reply(status=429, retry_after="1"), Reply(tokens=TOKENS))
    started = time.monotonic()
    events = read_events(client, send_htmx(client, url))
    assert time.monotonic() - started >= 1.0
    assert any("Retrying in 1 s" in data for name, data in events if name == "update")
    assert events[-1][0] == "done" and "w11" in events[-1][1]
    assert len(upstream.chat_requests) == 2


def test_retries_stay_within_the_budget(make_app, upstream):
    app = make_app(REGOLO_RETRY_BUDGET=1.0)
    upstream.enqueue(Reply(status=429, retry_after="30"))
    started = time.monotonic()
    start_chat(app.test_client())
    assert time.monotonic() - started < 5
    assert len(upstream.chat_requests) == 1
    assert reply_row(app).status == "error"


def test_a_reply_whose_worker_died_is_marked_interrupted(client, app):
    url = start_chat(client)
    with app.app_context():
        message = db.session.get(Message, reply_row(app).id)
        message.status, message.content, message.content_html = "streaming", "Half a", None
        message.heartbeat_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
    page = text_of(client.get(url).get_data(as_text=True))
    assert reply_row(app).status == "interrupted"
    assert DIED_SENTENCE in page and "Half a" in page


def test_partial_text_is_written_per_tick_not_per_token(make_app, upstream):
    app = make_app(STREAM_FLUSH_SECONDS=0.25)
    client = app.test_client()
    url = start_chat(client)
    writes = []
    lock = threading.Lock()

    def count(conn, cursor, statement, *args):
        if statement.startswith("UPDATE messages SET content"):
            with lock:
                writes.append(time.monotonic())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
    tokens = [f"t{i} " for i in range(60)]
    upstream.enqueue(Reply(tokens=tokens, token_delay=0.02))
    started = time.monotonic()
    send_htmx(client, url)
    wait_for_generations(app)
    elapsed = time.monotonic() - started
    assert reply_row(app).content == "".join(tokens)
    assert len(writes) <= elapsed / 0.25 + 3, (len(writes), elapsed)


def test_one_flush_writes_every_reply_streaming_at_once(client, app):
    start_chat(client)
    start_chat(client)
    with app.app_context():
        replies = [Message(conversation_id=conversation_id, role="assistant",
                           status="pending", heartbeat_at=utcnow())
                   for conversation_id in db.session.scalars(select(Conversation.id))]
        db.session.add_all(replies)
        db.session.commit()
        lives = [LiveReply(message_id=reply.id) for reply in replies]
    for number, live in enumerate(lives):
        live.append(f"partial {number}")
    with app.app_context():
        app.extensions["relay"].flush(lives)  # one statement for both partial texts
    rows = {message.id: message for message in messages_of(app)}
    assert [(rows[live.message_id].status, rows[live.message_id].content) for live in lives] \
        == [("streaming", "partial 0"), ("streaming", "partial 1")]


def test_an_event_splits_data_only_at_the_event_stream_line_ends():
    text = "a\u2028b\x0cc\x85d\r\ne\rf\ng"
    event = sse_event("update", text)
    assert event == ("event: update\ndata: a\u2028b\x0cc\x85d\ndata: e\ndata: f\n"
                     "data: g\n\n")
    # What a browser rebuilds: the data fields joined by newlines.
    fields = [line[len("data: "):] for line in event.split("\n") if line.startswith("data: ")]
    assert "\n".join(fields) == "a\u2028b\x0cc\x85d\ne\nf\ng"


HUGE_PARAGRAPH = "Words *and* words & <more>, all on one long line. " * 4000
HUGE_CODE = "```python\n" + "".join(f"value_{i} = compute({i}, 'x')\n" for i in range(7000))


@pytest.mark.parametrize("text", [HUGE_PARAGRAPH, HUGE_CODE], ids=["paragraph", "code"])
def test_a_huge_block_reaches_a_follower_in_bytes_proportional_to_it(client, upstream, text):
    """Its unfinished tail is not sent again with each change: past a size, only what it
    gains is, so a follower receives a few times the text, not its square."""
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=[text[at:at + 2000] for at in range(0, len(text), 2000)],
                           token_delay=0.02))
    response = client.get(send_htmx(client, url), buffered=False)
    try:
        received = b"".join(response.response).decode()
    finally:
        response.close()
    done = received[received.index("event: done"):]
    # The changes carry a few times the text; the final event, the finished message once
    # (its HTML, and its Markdown source for Copy).
    assert len(received) - len(done) < 3 * len(text)
    assert len(done) < 3 * len(text)
    assert received.count("event: delta") >= 10  # it did arrive piece by piece
    assert "<more>" not in received and (
        "value_6999 = compute(6999, 'x')" in done or "&lt;more&gt;, all on" in done)
