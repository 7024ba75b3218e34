"""Reading a streamed upstream body: chunked decoding split anywhere, and paced reads."""

from __future__ import annotations

import pytest
import requests

from harness.fake_upstream import Reply
from tests.conftest import API_KEY
from webapp import llm
from webapp.upstream_body import BodyReader, _dechunked

# Two chunks (one with an extension, one with upper-case hex), the last chunk, a trailer.
SECOND = b", then as many bytes as its size says".ljust(0x2A, b".")  # size "2A"
CHUNKED = (b"5;name=value\r\nhello\r\n"
           + f"{len(SECOND):X}\r\n".encode() + SECOND + b"\r\n"
           + b"0\r\nX-Trailer: yes\r\n\r\n")
DATA = b"hello" + SECOND


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("size", range(1, len(CHUNKED) + 1))
def test_a_chunked_body_decodes_the_same_however_it_is_split(size):
    assert b"".join(_dechunked(iter(pieces_of(CHUNKED, size)))) == DATA


def test_several_chunks_in_one_read_come_out_as_one_piece():
    assert list(_dechunked(iter([CHUNKED]))) == [DATA]


def test_nothing_is_read_after_the_last_chunk():
    reads = iter([CHUNKED, b"the next response on a kept-alive connection"])
    assert list(_dechunked(reads)) == [DATA]
    assert next(reads) == b"the next response on a kept-alive connection"


@pytest.mark.parametrize("body", [
    CHUNKED[:-2],             # ends inside the trailers
    CHUNKED[:30],             # ends inside a chunk
    b"5\r\nhello\r\n",        # ends before the last chunk
    b"",                      # nothing at all
])
def test_a_body_that_breaks_off_is_a_connection_error(body):
    with pytest.raises(ConnectionError):
        list(_dechunked(iter(pieces_of(body, 3))))


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",         # not a size
    b"-5\r\nhello\r\n0\r\n\r\n",         # not a size either
    b"3\r\nhello\r\n0\r\n\r\n",          # data longer than its size
    b"5" * 5000,                        # a size line with no end
])
def test_framing_that_is_not_chunked_encoding_is_refused(body):
    with pytest.raises(ValueError):
        list(_dechunked(iter([body])))


def test_paced_reads_take_many_tokens_at_once_and_keep_the_connection(upstream):
    """30 tokens 20 ms apart read at most every 200 ms: far fewer reads than tokens, the
    same text, and the connection goes back to the pool for the next request."""
    session = llm.pooled_session(upstream.base_url)
    for _ in range(2):
        upstream.enqueue(Reply(tokens=[f"t{i} " for i in range(30)], token_delay=0.02))
        response = session.post(f"{upstream.base_url}/chat/completions", stream=True,
                                headers={"Authorization": f"Bearer {API_KEY}"},
                                json={"model": "m", "messages": [], "stream": True})
        with response:
            body = BodyReader(response.raw, read_timeout=5, pace=0.2)
            body.pace()
            pieces = list(body)
        text = b"".join(pieces).decode()
        assert [f"t{i} " in text for i in range(30)] == [True] * 30
        assert text.rstrip().endswith("data: [DONE]")
        assert len(pieces) < 15
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
    upstream.enqueue(Reply(tokens=["a ", "b"]))
    response = requests.post(f"{upstream.base_url}/chat/completions", stream=True,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"model": "m", "messages": [], "stream": True})
    with response:
        text = b"".join(BodyReader(response.raw, read_timeout=5)).decode()
    assert '"a "' in text and text.rstrip().endswith("data: [DONE]")
