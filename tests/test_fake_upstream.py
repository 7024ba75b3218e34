"""Tests for the fake Regolo/LiteLLM upstream server, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.fake_upstream import FakeUpstream, Reply

STREAM_ERRORS = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def chat(upstream: FakeUpstream, text: str = "hi there", **params: Any) -> requests.Response:
    body = {"model": "Qwen3-8B", "messages": [{"role": "user", "content": text}], **params}
    return requests.post(f"{upstream.base_url}/chat/completions", json=body, timeout=5)


def stream_lines(upstream: FakeUpstream, lines: list[str], timeout: float = 5, **params: Any) -> None:
    """Stream a chat completion, appending each non-empty SSE line to `lines` as it arrives."""
    body = {"model": "Qwen3-8B", "messages": [{"role": "user", "content": "hi"}], "stream": True, **params}
    with requests.post(f"{upstream.base_url}/chat/completions", json=body, stream=True, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Transfer-Encoding"] == "chunked"
        for line in response.iter_lines():
            if line:
                lines.append(line.decode())


def read_stream(upstream: FakeUpstream, **params: Any) -> list[str]:
    lines: list[str] = []
    stream_lines(upstream, lines, **params)
    return lines


def chunks(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line.removeprefix("data: ")) for line in lines if line != "data: [DONE]"]


def test_models_list(upstream: FakeUpstream) -> None:
    response = requests.get(f"{upstream.base_url}/models", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["Llama-3.3-70B-Instruct", "gpt-oss-120b", "Qwen3-8B"]
    assert body["data"][0] == {"id": "Llama-3.3-70B-Instruct", "object": "model", "created": 0, "owned_by": "regolo"}


def test_models_status_failure(upstream: FakeUpstream) -> None:
    upstream.models_status = 500
    response = requests.get(f"{upstream.base_url}/models", timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "500"


def test_model_info_is_served_at_the_root_and_under_v1_only_when_turned_on(upstream: FakeUpstream) -> None:
    root = upstream.base_url.removesuffix("/v1")
    assert requests.get(f"{root}/model/info", timeout=5).status_code == 404
    upstream.model_info = {"Qwen3-8B": {"max_input_tokens": 32768, "input_cost_per_token": 1e-7}}
    for url in (f"{root}/model/info", f"{upstream.base_url}/model/info"):
        response = requests.get(url, timeout=5)
        assert response.status_code == 200
        assert response.json()["data"] == [{"model_name": "Qwen3-8B", "litellm_params": {"model": "Qwen3-8B"},
                                             "model_info": {"max_input_tokens": 32768, "input_cost_per_token": 1e-7}}]
    upstream.model_info_paths = ("/model/info",)
    assert requests.get(f"{upstream.base_url}/model/info", timeout=5).status_code == 404


def test_a_reply_can_name_another_model_as_a_fallback_does(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply("Hi.", model="gpt-oss-120b"))
    assert chat(upstream).json()["model"] == "gpt-oss-120b"
    upstream.enqueue(Reply("Hi.", model="gpt-oss-120b"))
    lines: list[str] = []
    stream_lines(upstream, lines)
    models = {json.loads(line[6:])["model"] for line in lines if line != "data: [DONE]"}
    assert models == {"gpt-oss-120b"}


def test_non_stream_echo_and_usage(upstream: FakeUpstream) -> None:
    response = chat(upstream, "hello big world")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "Qwen3-8B"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "You said: hello big world"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_non_stream_reasoning_and_explicit_usage(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="42", reasoning="think", usage={"prompt_tokens": 1}, finish_reason="length"))
    body = chat(upstream).json()
    assert body["choices"][0]["message"]["reasoning_content"] == "think"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 1}


def test_stream_framing_with_usage(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="one two three"))
    lines = read_stream(upstream, stream_options={"include_usage": True})
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = chunks(lines)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "one "}
    assert [e["choices"][0]["delta"].get("content") for e in events[:3]] == ["one ", "two ", "three"]
    assert all("finish_reason" not in e["choices"][0] for e in events[:2])
    assert events[2]["choices"][0]["finish_reason"] == "stop"
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == "Qwen3-8B" for e in events)
    assert len({e["id"] for e in events}) == 1
    assert events[3]["choices"] == [{"index": 0, "delta": {}}]
    assert events[3]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    assert len(events) == 4


def test_stream_without_usage_and_empty_content(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content=""))
    events = chunks(read_stream(upstream))
    assert events == [
        {**events[0], "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]}
    ]


def test_stream_reasoning_comes_first(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="Answer.", reasoning="Let me think", token_delay=0.01))
    deltas = [e["choices"][0]["delta"] for e in chunks(read_stream(upstream))]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "Let "},
        {"reasoning_content": "me "},
        {"reasoning_content": "think"},
        {"content": "Answer."},
    ]


def test_explicit_tokens(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(tokens=["Hel", "lo"]), Reply(tokens=["Hel", "lo"]))
    deltas = [e["choices"][0]["delta"].get("content") for e in chunks(read_stream(upstream))]
    assert deltas == ["Hel", "lo"]
    assert chat(upstream).json()["choices"][0]["message"]["content"] == "Hello"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_error_statuses_are_json_even_when_streaming(upstream: FakeUpstream, status: int) -> None:
    upstream.enqueue(Reply(status=status, retry_after="7"))
    response = chat(upstream, stream=True)
    assert response.status_code == status
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == str(status)
    assert error["type"] == "None" and error["param"] == "None"
    assert error["message"]


def test_default_error_messages(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(status=400), Reply(status=429), Reply(status=502), Reply(status=500, error_message="boom"))
    assert "Invalid model name passed in model=Qwen3-8B" in chat(upstream).json()["error"]["message"]
    assert chat(upstream).json()["error"]["message"] == "Rate limit exceeded"
    assert chat(upstream).json()["error"]["message"] == "Internal server error"
    assert chat(upstream).json()["error"]["message"] == "boom"


def test_raw_body_is_sent_verbatim(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(status=502, raw_body=b"<html>Bad Gateway</html>"))
    response = chat(upstream)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert response.content == b"<html>Bad Gateway</html>"


def test_drop_after_breaks_the_stream(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b c d", drop_after=2))
    lines: list[str] = []
    with pytest.raises(STREAM_ERRORS):
        stream_lines(upstream, lines)
    assert [e["choices"][0]["delta"]["content"] for e in chunks(lines)] == ["a ", "b "]


def test_end_early_after_ends_without_done(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b c d", end_early_after=1))
    lines = read_stream(upstream)
    assert len(lines) == 1
    assert "finish_reason" not in chunks(lines)[0]["choices"][0]


def test_stream_error_event_without_done(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b c", stream_error_after=1))
    lines = read_stream(upstream)
    assert "data: [DONE]" not in lines
    assert json.loads(lines[-1].removeprefix("data: ")) == {
        "error": {"message": "Upstream model crashed", "type": "None", "param": "None", "code": "500"}
    }


def test_malformed_line_then_continues(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b", malformed_after=1))
    lines = read_stream(upstream)
    assert lines[1] == 'data: {"choices": ['
    assert lines[-1] == "data: [DONE]"
    assert len(lines) == 4


def test_stall_after_times_out_the_reader(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b c", stall_after=1, stall_seconds=0.5))
    lines: list[str] = []
    with pytest.raises(STREAM_ERRORS):
        stream_lines(upstream, lines, timeout=0.2)
    assert len(lines) == 1


def test_stall_after_then_connection_ends(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="a b c", stall_after=1, stall_seconds=0.3))
    started = time.monotonic()
    with pytest.raises(STREAM_ERRORS):
        stream_lines(upstream, [], timeout=5)
    assert time.monotonic() - started >= 0.3


def test_stop_interrupts_a_stall() -> None:
    server = FakeUpstream().start()
    server.enqueue(Reply(content="a b", stall_after=1, stall_seconds=30))
    body = {"model": "m", "messages": [], "stream": True}
    with requests.post(f"{server.base_url}/chat/completions", json=body, stream=True, timeout=5) as response:
        next(response.iter_lines())
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_api_key_enforced() -> None:
    with FakeUpstream(api_key="sk-good-key") as server:
        bad = requests.get(f"{server.base_url}/models", headers={"Authorization": "Bearer sk-wrong-abcd"}, timeout=5)
        assert bad.status_code == 401
        error = bad.json()["error"]
        assert error["code"] == "401"
        assert "sk-...abcd" in error["message"] and "Key Hash (Token) =" in error["message"]
        missing = requests.get(f"{server.base_url}/models", timeout=5)
        assert missing.status_code == 401
        good = requests.get(f"{server.base_url}/models", headers={"Authorization": "Bearer sk-good-key"}, timeout=5)
        assert good.status_code == 200


def test_recorded_requests(upstream: FakeUpstream) -> None:
    requests.get(f"{upstream.base_url}/models", timeout=5)
    chat(upstream, "first", temperature=0.5)
    assert [(r.method, r.path) for r in upstream.requests] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    recorded = upstream.chat_requests[0]
    assert recorded.json["temperature"] == 0.5
    assert recorded.headers["content-type"] == "application/json"
    assert upstream.sent_messages() == [{"role": "user", "content": "first"}]
    upstream.wait_for_requests(1)
    with pytest.raises(AssertionError):
        upstream.wait_for_requests(2, timeout=0.05)
    upstream.reset()
    assert upstream.requests == []


def test_enqueue_fifo_then_default(upstream: FakeUpstream) -> None:
    upstream.enqueue(Reply(content="one"), Reply(content="two"))
    contents = [chat(upstream, "again").json()["choices"][0]["message"]["content"] for _ in range(3)]
    assert contents == ["one", "two", "You said: again"]
    upstream.default_reply = Reply(content="fixed")
    assert chat(upstream).json()["choices"][0]["message"]["content"] == "fixed"
    upstream.default_reply = lambda body: Reply(content=body["model"])
    assert chat(upstream).json()["choices"][0]["message"]["content"] == "Qwen3-8B"


def test_unknown_path_is_json_404(upstream: FakeUpstream) -> None:
    response = requests.get(f"{upstream.base_url}/nope", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "404"


def test_keep_alive_across_requests(upstream: FakeUpstream) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{upstream.base_url}/chat/completions"
    with requests.Session() as session:
        with session.post(url, json={**body, "stream": True}, stream=True, timeout=5) as first:
            assert [line for line in first.iter_lines() if line][-1] == b"data: [DONE]"
        upstream.enqueue(Reply(status=429))
        assert session.post(url, json=body, timeout=5).status_code == 429
        assert session.post(url, json=body, timeout=5).status_code == 200
        assert session.get(f"{upstream.base_url}/models", timeout=5).status_code == 200
        pools = session.get_adapter(url).poolmanager.pools
        assert [pools[key].num_connections for key in pools.keys()] == [1]
    assert len(upstream.requests) == 4


def test_cli_prints_base_url_and_serves() -> None:
    command = [sys.executable, "-m", "harness.fake_upstream", "--port", "0", "--tokens", "3"]
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            body = {"model": "m", "messages": [], "stream": False}
            response = requests.post(f"{base_url}/chat/completions", json=body, timeout=5)
            assert response.json()["choices"][0]["message"]["content"] == "tok0 tok1 tok2"
        finally:
            process.terminate()
            assert process.wait(timeout=5) == 0
