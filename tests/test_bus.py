"""The reply bus: a reply streams to another process's followers change by change, stops
from there at once, and lost messages are made up from the database; a reply whose text
the database refuses holds no other back."""

from __future__ import annotations

import itertools

from sqlalchemy import text

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of, wait_for_generations, wait_until
from tests.test_streaming import read_events, send_htmx, shown
from webapp.extensions import db
from webapp.replies.bus import FollowedReply, ReplyBus, encode_change
from webapp.replies.live import UNSAVED_SENTENCE

TOKENS = [f"w{i} " for i in range(60)]
FULL_TEXT = "".join(TOKENS).strip()
# Polling the row alone would show a 1.2 s reply in two or three updates.
SLOW_POLL = {"STREAM_POLL_SECONDS": 1.0}


class DropEveryOther:
    """A transport that loses every other payload it receives."""

    def __init__(self, transport) -> None:
        self.transport = transport
        self.max_payload = transport.max_payload

    def send(self, payloads: list[str]) -> None:
        self.transport.send(payloads)

    def close(self) -> None:
        self.transport.close()

    def listen(self, deliver, ready, closed) -> None:
        count = itertools.count()
        self.transport.listen(lambda payload: next(count) % 2 == 0 and deliver(payload),
                              ready, closed)


def two_processes(make_app, **settings):
    """Two apps on one database, like two workers: a client of each, same browser."""
    generating, following = make_app(**settings), make_app(**settings)
    client = generating.test_client()
    url = start_chat(client)
    other = following.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return generating, following, client, other, url


def streamed_texts(events) -> list[str]:
    """The reply's visible text after each update or delta (the "Writing…" mark left out)."""
    return [text_of(html).removesuffix("Writing…").strip()
            for name, html in shown(events) if name != "done"]


def test_another_process_gets_the_reply_change_by_change(make_app, upstream):
    _, following, client, other, url = two_processes(make_app, **SLOW_POLL)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.02))
    events = read_events(other, send_htmx(client, url))
    assert events[-1][0] == "done" and "w59" in events[-1][1]
    texts = streamed_texts(events)
    assert len(texts) >= 10, [name for name, _ in events]
    assert all(FULL_TEXT.startswith(streamed) for streamed in texts)
    assert any(name == "delta" for name, _ in events)  # not the whole body each time


def test_notices_and_reasoning_reach_another_process(make_app, upstream):
    _, following, client, other, url = two_processes(make_app, **SLOW_POLL)
    upstream.enqueue(Reply(status=429, retry_after="1"),
                     Reply(tokens=TOKENS[:20], reasoning="Think it over first.",
                           token_delay=0.02))
    events = read_events(other, send_htmx(client, url))
    assert any("Retrying in 1 s" in data for name, data in events if name == "update")
    streamed = [data for name, data in events if name != "done"]
    assert sum(data.count("first.") for data in streamed) == 1  # appended once
    last = text_of(shown(events)[-2][1])
    assert last.startswith("Thinking Think it over first.") and "w0 w1" in last


def test_a_follower_that_misses_messages_catches_up_from_the_database(make_app, upstream):
    _, following, client, other, url = two_processes(make_app, **SLOW_POLL)
    lossy = ReplyBus(DropEveryOther(following.extensions["bus"].transport))
    following.extensions["bus"] = lossy
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.02))
    events = read_events(other, send_htmx(client, url))
    assert events[-1][0] == "done" and "w59" in events[-1][1]
    texts = streamed_texts(events)
    assert all(FULL_TEXT.startswith(streamed) for streamed in texts)  # no text out of place
    assert len(set(texts)) >= 10, texts  # gaps filled from the row, not after a poll


def test_a_change_too_large_for_a_message_reaches_another_process_through_the_row(
        make_app, upstream):
    _, following, client, other, url = two_processes(make_app, **SLOW_POLL)
    large = "x" * 70_000 + " "  # beyond NOTIFY's 8000 bytes and a datagram's 60,000
    upstream.enqueue(Reply(tokens=["w0 ", large, *TOKENS[1:30]], token_delay=0.02))
    events = read_events(other, send_htmx(client, url))
    texts = streamed_texts(events)
    assert any(large.strip() in streamed and "w10" in streamed for streamed in texts)
    assert events[-1][0] == "done" and "w29" in events[-1][1]


def test_a_mirror_holds_text_that_comes_early_until_the_row_fills_the_gap():
    mirror = FollowedReply(3)
    assert mirror.wants_sync(0.0)  # a new follower asks for the row and the notice
    mirror.apply({"o": 0, "c": "Hello"})
    mirror.apply({"o": 11, "c": "there"})  # the piece at 5 was lost
    assert (mirror.content, mirror.behind) == ("Hello", True)
    mirror.catch_up("streaming", "Hello, you", "")  # the row lags the bus
    assert (mirror.content, mirror.behind) == ("Hello, you", True)
    assert mirror.wants_sync(100.0) and not mirror.wants_sync(100.1)
    mirror.catch_up("streaming", "Hello, you ", "")
    assert (mirror.content, mirror.behind) == ("Hello, you there", False)
    mirror.apply({"o": 9, "c": "u there!", "s": "streaming", "n": ""})  # overlaps
    assert mirror.content == "Hello, you there!"
    mirror.apply({"o": 0, "c": "Hello"})  # old news
    assert mirror.content == "Hello, you there!" and not mirror.finished
    assert not mirror.wants_sync(200.0)
    mirror.apply({"end": True})
    assert mirror.finished


def test_a_change_too_large_for_the_transport_becomes_a_wake_up():
    assert encode_change(4, {"o": 0, "c": "é" * 20, "s": "streaming"}, 100) == (
        '4 {"o":0,"c":"' + "é" * 20 + '","s":"streaming"}')
    assert encode_change(4, {"o": 0, "c": "é" * 60, "end": True}, 100) == (
        '4 {"wake": true, "end": true}')
    mirror = FollowedReply(4)
    mirror.apply({"wake": True})
    assert mirror.behind


def test_stop_from_another_process_goes_over_the_bus(make_app, upstream):
    # The flusher reads stop requests only every 5 s here: the bus must carry this one.
    generating, _, client, other, url = two_processes(make_app, STREAM_FLUSH_SECONDS=5.0)
    upstream.enqueue(Reply(tokens=[f"s{i} " for i in range(100)], token_delay=0.05))
    stream_url = send_htmx(client, url)
    reply_id = messages_of(generating)[-1].id
    first = read_events(other, stream_url, limit=2)  # the stream is on the other process
    assert first[0][0] == "update"
    assert other.post(f"{url}/messages/{reply_id}/stop",
                      headers={"HX-Request": "true"}).status_code == 204
    wait_until(lambda: messages_of(generating)[-1].status == "stopped", timeout=2.5)
    wait_for_generations(generating)
    assert "s99" not in messages_of(generating)[-1].content


def refuse_text_containing(app, word: str) -> None:
    """Make the database itself refuse any reply text containing word."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(
                f"ALTER TABLE messages ADD CONSTRAINT refuse_word "
                f"CHECK (content NOT LIKE '%{word}%') NOT VALID"))
        else:
            db.session.execute(text(
                f"CREATE TRIGGER refuse_word BEFORE UPDATE OF content ON messages "
                f"WHEN NEW.content LIKE '%{word}%' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        db.session.commit()


def test_a_reply_the_database_refuses_does_not_stop_the_others_being_saved(make_app,
                                                                           upstream):
    app = make_app(STREAM_FLUSH_SECONDS=0.05)
    client = app.test_client()
    first, second = start_chat(client), start_chat(client)
    refuse_text_containing(app, "FORBIDDEN")
    upstream.enqueue(Reply(tokens=["a0 ", "a1 ", "FORBIDDEN ", "a3 "], token_delay=0.1),
                     Reply(tokens=[f"b{i} " for i in range(40)], token_delay=0.05))
    send_htmx(client, first)
    send_htmx(client, second)
    refused, other = messages_of(app)[-3], messages_of(app)[-1]

    def row(message):
        return next(m for m in messages_of(app) if m.id == message.id)

    wait_until(lambda: row(refused).status == "error", timeout=3)
    # Still streaming, the other reply keeps being saved tick after tick.
    wait_until(lambda: row(other).status == "streaming" and "b20" in row(other).content,
               timeout=3)
    wait_for_generations(app)
    assert row(other).status == "complete" and row(other).content.endswith("b39 ")
    kept = row(refused)
    assert kept.error == UNSAVED_SENTENCE and "FORBIDDEN" not in kept.content
    assert "a0 a1 ".startswith(kept.content)
    page = text_of(client.get(first).get_data(as_text=True))
    assert UNSAVED_SENTENCE in page
