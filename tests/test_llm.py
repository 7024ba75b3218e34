"""The upstream client on its own: wire format, typed errors, no Flask involved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.fake_upstream import Reply
from tests.conftest import API_KEY
from webapp.conversations.rendering import render_markdown
from webapp.upstream import llm


@pytest.fixture
def client(upstream) -> llm.LLMClient:
    return llm.LLMClient(upstream.base_url, API_KEY, connect_timeout=2, read_timeout=2,
                         session=llm.pooled_session(upstream.base_url))


def test_models_are_listed(client):
    assert client.list_models() == ["Llama-3.3-70B-Instruct", "Qwen3-8B", "gpt-oss-120b"]


def test_a_completion_with_usage_and_reasoning(client, upstream):
    upstream.enqueue(Reply("Hi there.", reasoning="Hmm.", usage={
        "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}))
    completion = client.complete("m", [{"role": "user", "content": "Hi"}], max_tokens=9)
    assert (completion.content, completion.reasoning) == ("Hi there.", "Hmm.")
    assert completion.usage == llm.Usage(3, 2, 5)
    assert upstream.chat_requests[0].json == {
        "model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9,
        "stream": False}


def test_a_stream_yields_deltas_then_the_usage(client, upstream):
    upstream.enqueue(Reply(tokens=["a ", "b"], reasoning="r"))
    deltas = list(client.stream("m", [{"role": "user", "content": "Hi"}]))
    assert "".join(d.reasoning for d in deltas) == "r"
    assert "".join(d.content for d in deltas) == "a b"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].usage is not None
    assert upstream.chat_requests[0].json["stream_options"] == {"include_usage": True}


def test_a_missing_key_is_refused_before_any_request(upstream):
    client = llm.LLMClient(upstream.base_url, "")
    with pytest.raises(llm.MissingAPIKey, match="REGOLO_API_KEY"):
        list(client.stream("m", []))
    assert upstream.requests == []


@pytest.mark.parametrize("reply, error", [
    (Reply(status=401), llm.AuthenticationFailed),
    (Reply(status=400), llm.ModelNotFound),
    (Reply(status=400, error_message="prompt is too long"), llm.ContextTooLong),
    (Reply(status=400, error_message="Qwen3-8B is not a multimodal model"),
     llm.ImagesNotSupported),
    (Reply(status=400, error_message="image_url is only supported by vision models"),
     llm.ImagesNotSupported),
    (Reply(status=400, error_message="bad temperature"), llm.BadRequest),
    (Reply(status=404), llm.NotFound),
    (Reply(status=404, error_message="The model `m` does not exist."), llm.ModelNotFound),
    (Reply(status=404, error_message='model "m" not found, try pulling it first'),
     llm.ModelNotFound),
    (Reply(status=500), llm.UpstreamUnavailable),
    (Reply(status=502, raw_body=b"<html>Bad gateway</html>"), llm.UpstreamUnavailable),
])
def test_error_statuses_become_typed_errors(client, upstream, reply, error):
    upstream.enqueue(reply)
    with pytest.raises(error) as caught:
        list(client.stream("m", []))
    assert caught.value.status == reply.status


def test_a_rate_limit_carries_retry_after(client, upstream):
    upstream.enqueue(Reply(status=429, retry_after="7"))
    with pytest.raises(llm.RateLimited) as caught:
        client.complete("m", [])
    assert caught.value.retry_after == 7.0 and caught.value.retryable


def test_a_non_json_completion_is_an_invalid_response(client, upstream):
    upstream.enqueue(Reply(raw_body=b"not json"))
    with pytest.raises(llm.InvalidResponse):
        client.complete("m", [])


def test_a_break_after_the_finish_chunk_loses_nothing(client, upstream):
    upstream.enqueue(Reply(tokens=["a ", "b"], drop_after=2))
    assert "".join(d.content for d in client.stream("m", [])) == "a b"


@pytest.mark.parametrize("first, second, total", [
    (llm.Usage(10, 2, 12), llm.Usage(20, 3, 23), llm.Usage(30, 5, 35)),
    (llm.Usage(10, None, 12), llm.Usage(None, None, None), llm.Usage(10, None, 12)),
    (llm.Usage(1, 2, 3), None, llm.Usage(1, 2, 3)),
])
def test_usage_of_two_requests_adds_up(first, second, total):
    assert first.plus(second) == total


def test_streams_reuse_one_pooled_connection(client, upstream):
    for _ in range(3):
        list(client.stream("m", [{"role": "user", "content": "Hi"}]))
    pools = client.session.get_adapter(upstream.base_url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]


def event(payload: str) -> bytes:
    return f"data: {payload}\r\n\r\n".encode()


# LiteLLM-style events with \r\n line endings, a keep-alive comment, both names of the
# reasoning field, a finish chunk, the usage chunk and [DONE].
EVENT_STREAM = b"".join([
    b": keep-alive\r\n\r\n",
    event('{"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "Hm"}}]}'),
    event('{"choices": [{"index": 0, "delta": {"reasoning_content": "m, \u20ac"}}]}'),
    event('{"choices": [{"index": 0, "delta": {"content": "Caf\\u00e9 "}}]}'),
    event('{"choices": [{"index": 0, "delta": {"content": "na\u00efve \U0001f600"}}]}'),
    event('{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}'),
    event('{"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, '
          '"total_tokens": 7}}'),
    b"data: [DONE]\r\n\r\n",
])


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("chunks", [
    [EVENT_STREAM],                   # every event in one read
    split_every(EVENT_STREAM, 1),     # every byte a read of its own: UTF-8 characters split
    split_every(EVENT_STREAM, 7),     # events, lines and \r\n split anywhere
    [EVENT_STREAM[:-2], EVENT_STREAM[-2:]],  # the last line's \n in a read of its own
])
def test_an_event_stream_reads_the_same_however_it_is_split(client, upstream, chunks):
    for _ in range(2):  # the second stream reuses the connection the first read to its end
        upstream.enqueue(Reply(event_stream=chunks))
        deltas = list(client.stream("m", []))
        assert "".join(d.reasoning for d in deltas) == "Hmm, \u20ac"
        assert "".join(d.content for d in deltas) == "Caf\u00e9 na\u00efve \U0001f600"
        assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
        assert [d.usage for d in deltas if d.usage] == [llm.Usage(4, 3, 7)]
    pools = client.session.get_adapter(upstream.base_url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]


def test_invalid_utf8_in_a_chunk_is_replaced_not_refused(client, upstream):
    upstream.enqueue(Reply(event_stream=[
        b'data: {"choices": [{"delta": {"content": "a\xff"}, "finish_reason": "stop"}]}\n\n']))
    assert [d.content for d in client.stream("m", [])] == ["a\ufffd"]


def test_half_of_an_escaped_utf16_pair_becomes_a_replacement_character(client, upstream):
    upstream.enqueue(Reply(event_stream=[
        b'data: {"choices": [{"delta": {"content": "a\\ud83d b \\ud83d\\ude00"}}]}\n\n',
        b'data: {"choices": [{"delta": {"reasoning_content": "\\udc00"}, '
        b'"finish_reason": "stop"}]}\n\n']))
    deltas = list(client.stream("m", []))
    assert [(d.content, d.reasoning) for d in deltas] == [("a\ufffd b \U0001F600", ""),
                                                          ("", "\ufffd")]
    render_markdown(deltas[0].content)  # text that can be sanitized and stored


@pytest.mark.parametrize("line", [
    b'data: {"choices": [',
    b'data: {"choices": []} trailing',
    b'data: {"choices": []} {"choices": []}',
    b"data: [1, 2]",
    b"data:",
])
def test_a_malformed_chunk_interrupts_the_stream(client, upstream, line):
    upstream.enqueue(Reply(event_stream=[event('{"choices": [{"delta": {"content": "a"}}]}'),
                                         line + b"\n\n"]))
    deltas = []
    with pytest.raises(llm.StreamInterrupted, match="malformed piece") as caught:
        deltas.extend(client.stream("m", []))
    assert [d.content for d in deltas] == ["a"]
    assert caught.value.detail == ""  # not the API's words: for the log only
    assert caught.value.cause == line[5:].strip().decode()


def test_an_error_inside_the_stream_interrupts_it(client, upstream):
    upstream.enqueue(Reply(tokens=["a ", "b ", "c"], stream_error_after=1,
                           error_message="model crashed"))
    with pytest.raises(llm.StreamInterrupted, match="reported an error") as caught:
        list(client.stream("m", []))
    assert caught.value.detail == "model crashed"


def test_a_reply_that_is_not_an_event_stream_is_an_invalid_response(client, upstream):
    upstream.enqueue(Reply(raw_body=b"<html>Maintenance</html>"))
    with pytest.raises(llm.InvalidResponse, match="expected an event stream") as caught:
        list(client.stream("m", []))
    assert (caught.value.detail, caught.value.cause) == ("", "<html>Maintenance</html>")


GEVENT_READER = """
from gevent import monkey; monkey.patch_all()
import json, sys, time
from webapp.upstream import llm, stall_watch

watched = []
take_over = stall_watch.StallWatch.take_over
def recording_take_over(raw, seconds):
    watch = take_over(raw, seconds)
    watched.append(watch is not None)
    return watch
stall_watch.StallWatch.take_over = recording_take_over

client = llm.LLMClient(sys.argv[1], sys.argv[2], read_timeout=0.5,
                       session=llm.pooled_session(sys.argv[1]))
outcomes = []
for _ in range(3):
    contents = []
    try:
        for delta in client.stream("m", []):
            contents.append(delta.content)
            if len(contents) == 1:
                time.sleep(1.0)  # a slow reader, not a stalled upstream
        outcomes.append(["complete", "".join(contents)])
    except llm.LLMError as exc:
        outcomes.append([type(exc).__name__, exc.user_message, "".join(contents)])
print(json.dumps({"outcomes": outcomes, "watched": watched}))
"""


def test_under_gevent_one_timer_per_stream_still_catches_a_stall(upstream):
    upstream.enqueue(Reply(tokens=["a ", "b ", "c"]),
                     Reply(tokens=["a ", "b ", "c"], stall_after=2, stall_seconds=5),
                     Reply(tokens=["after"]))
    finished = subprocess.run([sys.executable, "-c", GEVENT_READER, upstream.base_url, API_KEY],
                              cwd=Path(__file__).resolve().parent.parent, check=True,
                              capture_output=True, text=True, timeout=60)
    result = json.loads(finished.stdout)
    assert result["watched"] == [True, True, True]
    assert result["outcomes"] == [
        ["complete", "a b c"],
        ["StreamInterrupted", "The API stopped sending in the middle of the reply (timed out).",
         "a b "],
        ["complete", "after"],
    ]


def test_the_session_reads_proxy_settings_once_and_honours_no_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.invalid")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company.pem")
    session = llm.pooled_session("https://api.regolo.ai/v1")
    assert session.proxies["https"] == "http://proxy.invalid:3128"
    assert session.verify == "/etc/ssl/certs/company.pem"
    assert not session.trust_env  # not looked up again on every request
    assert llm.pooled_session("https://internal.invalid/v1").proxies == {}
