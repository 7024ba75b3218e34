"""Reading a streamed upstream body: broken bodies are errors, paced reads batch tokens."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
import urllib3

from harness.fake_upstream import Reply
from tests.conftest import API_KEY
from webapp.upstream import llm
from webapp.upstream.upstream_body import BodyReader


def serve_once(body: bytes) -> str:
    """A server on loopback that answers one request with a chunked event-stream head and
    then exactly these body bytes, and closes; its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with listener, listener.accept()[0] as connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + body)

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("body", [
    b"5\r\nhello\r\n",                          # ends before the last chunk
    b"5\r\nhello\r\n1A\r\ndata: cut in the mid",   # ends inside a chunk
    b"zz\r\nhello\r\n0\r\n\r\n",                 # framing that is not chunked encoding
])
def test_a_body_that_breaks_off_or_is_not_chunked_encoding_is_an_error(body):
    response = requests.get(serve_once(body), stream=True, timeout=5)
    with response, pytest.raises(urllib3.exceptions.ProtocolError):
        list(BodyReader(response.raw, read_timeout=5))


def test_a_reply_cut_between_chunks_is_interrupted_for_the_client(upstream):
    client = llm.LLMClient(upstream.base_url, API_KEY, read_timeout=5, read_pace=0.05,
                           session=llm.pooled_session(upstream.base_url))
    upstream.enqueue(Reply(tokens=[f"t{i} " for i in range(10)], token_delay=0.005,
                           drop_after=5))
    with pytest.raises(llm.StreamInterrupted):
        list(client.stream("m", []))


def wake_ups(times: list[float]) -> int:
    """How many times a reader was woken: pieces that came 10 ms or more after the last."""
    return 1 + sum(1 for earlier, later in zip(times, times[1:]) if later - earlier >= 0.01)


def test_paced_reads_take_many_tokens_at_once_and_keep_the_connection(upstream):
    """30 tokens 20 ms apart, pausing 200 ms after each read that waited: far fewer
    wake-ups than tokens, the same text, and the connection goes back to the pool."""
    session = llm.pooled_session(upstream.base_url)
    for _ in range(2):
        upstream.enqueue(Reply(tokens=[f"t{i} " for i in range(30)], token_delay=0.02))
        response = session.post(f"{upstream.base_url}/chat/completions", stream=True,
                                headers={"Authorization": f"Bearer {API_KEY}"},
                                json={"model": "m", "messages": [], "stream": True})
        with response:
            body = BodyReader(response.raw, read_timeout=5, pace=0.2)
            body.pace()
            pieces, times = [], []
            for piece in body:
                pieces.append(piece)
                times.append(time.monotonic())
        text = b"".join(pieces).decode()
        assert [f"t{i} " in text for i in range(30)] == [True] * 30
        assert text.rstrip().endswith("data: [DONE]")
        assert wake_ups(times) < 15
    pools = session.get_adapter(upstream.base_url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]


def test_a_paced_client_streams_the_whole_reply(upstream):
    client = llm.LLMClient(upstream.base_url, API_KEY, read_timeout=5, read_pace=0.05,
                           session=llm.pooled_session(upstream.base_url))
    upstream.enqueue(Reply(tokens=[f"t{i} " for i in range(20)], token_delay=0.005))
    deltas = list(client.stream("m", []))
    assert "".join(d.content for d in deltas) == "".join(f"t{i} " for i in range(20))
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


def test_an_unpaced_body_is_read_as_it_comes(upstream):
    upstream.enqueue(Reply(tokens=[f"t{i} " for i in range(10)], token_delay=0.02))
    response = requests.post(f"{upstream.base_url}/chat/completions", stream=True,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"model": "m", "messages": [], "stream": True})
    with response:
        times, pieces = [], []
        for piece in BodyReader(response.raw, read_timeout=5, pace=0.2):  # pace() not called
            pieces.append(piece)
            times.append(time.monotonic())
    text = b"".join(pieces).decode()
    assert '"t9 "' in text and text.rstrip().endswith("data: [DONE]")
    assert wake_ups(times) >= 10
