"""A real loopback HTTP server that speaks the OpenAI wire format the way Regolo's LiteLLM proxy does.

Tests and benchmarks point the app at ``FakeUpstream().base_url`` and script replies
(content, reasoning, errors, delays and mid-stream faults) with ``Reply``. Standard library only.

Run it by hand or for benchmarks:
    python -m harness.fake_upstream --port 8001 --tokens 50 --token-delay 0.02 --delay 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

MODELS_PATH = "/v1/models"
CHAT_PATH = "/v1/chat/completions"
# LiteLLM answers GET /model/info at the server's root and under /v1.
MODEL_INFO_PATHS = ("/model/info", "/v1/model/info")
DEFAULT_MODELS = ["Llama-3.3-70B-Instruct", "gpt-oss-120b", "Qwen3-8B"]
MALFORMED_EVENT = b'data: {"choices": [\n\n'
TOKEN_PATTERN = re.compile(r"\S+\s*|\s+")


@dataclass
class Reply:
    """One scripted answer to a chat completion request."""

    content: str = "Hello from the fake upstream."
    reasoning: str = ""
    status: int = 200
    error_message: str = ""
    retry_after: str | None = None
    delay: float = 0.0
    token_delay: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = None
    send_usage: bool = True        # False: never send the usage chunk, as some servers don't
    tokens: list[str] | None = None
    drop_after: int | None = None
    end_early_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 30.0
    malformed_after: int | None = None
    stream_error_after: int | None = None
    raw_body: bytes | None = None
    event_stream: list[bytes] | None = None  # an event stream sent verbatim, one HTTP chunk each
    model: str | None = None       # the model named in the response (a fallback); None: the one asked for


@dataclass
class RecordedRequest:
    """A request as the fake upstream received it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that keep their whitespace, so ''.join gives the text back."""
    return TOKEN_PATTERN.findall(text)


def content_tokens(reply: Reply) -> list[str]:
    """The content tokens a reply sends: its explicit split, or its content split into words."""
    return reply.tokens if reply.tokens is not None else split_tokens(reply.content)


def message_text(message: Any) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def request_messages(body: dict[str, Any]) -> list[Any]:
    """The messages array of a chat request body, or an empty list."""
    messages = body.get("messages")
    return messages if isinstance(messages, list) else []


def echo_reply(body: dict[str, Any]) -> Reply:
    """The default reply: echo the text of the last user message."""
    user_texts = [message_text(m) for m in request_messages(body) if isinstance(m, dict) and m.get("role") == "user"]
    return Reply(content="You said: " + (user_texts[-1] if user_texts else ""))


def compute_usage(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """The reply's usage, or one computed from prompt words and content tokens."""
    if reply.usage is not None:
        return reply.usage
    prompt = sum(len(message_text(m).split()) for m in request_messages(body))
    completion = len(content_tokens(reply))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def mask_key(key: str) -> str:
    """Mask an API key the way LiteLLM prints it: first three and last four characters."""
    return f"{key[:3]}...{key[-4:]}"


def default_error_message(status: int, model: str, authorization: str) -> str:
    """A LiteLLM-like error message for a status, used when the reply names none."""
    if status == 401:
        key = authorization.removeprefix("Bearer ").strip()
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        return (
            f"Authentication Error, Invalid proxy server token passed. Received API Key = {mask_key(key)}, "
            f"Key Hash (Token) ={key_hash}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`"
        )
    if status == 400:
        detail = (
            f"/chat/completions: Invalid model name passed in model={model}. "
            "Call `/v1/models` to view available models for your key."
        )
        return str({"error": detail})
    if status == 404:
        return "Not Found"
    if status == 429:
        return "Rate limit exceeded"
    if status >= 500:
        return "Internal server error"
    return f"Upstream error {status}"


def error_payload(status: int, message: str) -> dict[str, Any]:
    """A LiteLLM error body."""
    return {"error": {"message": message, "type": "None", "param": "None", "code": str(status)}}


def completion_payload(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat.completion object."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content_tokens(reply))}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": compute_usage(reply, body),
    }


def stream_deltas(reply: Reply) -> tuple[list[dict[str, Any]], int]:
    """The deltas of a stream (reasoning first, then content) and the number of reasoning deltas.

    The first delta carries the role; there is always at least one content delta.
    """
    reasoning = [{"reasoning_content": token} for token in split_tokens(reply.reasoning)]
    content = [{"content": token} for token in content_tokens(reply) or [""]]
    deltas = reasoning + content
    deltas[0] = {"role": "assistant", **deltas[0]}
    return deltas, len(reasoning)


def fires(limit: int | None, sent: int, total: int) -> bool:
    """Whether a fault set to trigger after `limit` content chunks fires once `sent` are out."""
    return limit is not None and min(limit, total) == sent


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048
    upstream: FakeUpstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: client disconnects and aborted streams are expected here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers (uvicorn, nginx) do: no 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log."""

    def setup(self) -> None:
        super().setup()
        self.server.upstream._track(self.connection)

    def finish(self) -> None:
        self.server.upstream._untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        upstream = self.server.upstream
        body = self._read_json()
        headers = {name.lower(): value for name, value in self.headers.items()}
        upstream._record(RecordedRequest(self.command, self.path, headers, body))
        try:
            if not upstream._authorized(self.headers.get("Authorization", "")):
                self._send_error(401, "", None)
            elif self.command == "GET" and self.path == MODELS_PATH:
                self._send_models()
            elif self.command == "GET" and self.path in upstream.model_info_paths and upstream.model_info is not None:
                self._send_model_info()
            elif self.command == "POST" and self.path == CHAT_PATH:
                self._chat(body)
            else:
                self._send_error(404, "", None)
        except OSError:
            self.close_connection = True

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _send_models(self) -> None:
        upstream = self.server.upstream
        if upstream.models_status != 200:
            self._send_error(upstream.models_status, "", None)
            return
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "regolo"} for m in upstream.models]
        self._send_body(200, json.dumps({"object": "list", "data": data}).encode(), "application/json", None)

    def _send_model_info(self) -> None:
        """LiteLLM's model info: {"data": [{"model_name", "model_info": {...}}]}."""
        info = self.server.upstream.model_info or {}
        data = [{"model_name": name, "litellm_params": {"model": name}, "model_info": fields} for name, fields in info.items()]
        self._send_body(200, json.dumps({"data": data}).encode(), "application/json", None)

    def _chat(self, body: Any) -> None:
        if not isinstance(body, dict):
            self._send_error(400, "Request body must be a JSON object", None)
            return
        upstream = self.server.upstream
        model = str(body.get("model", ""))
        if upstream.unknown_model_status is not None and model not in upstream.models:
            message = f"The model `{model}` does not exist." \
                if upstream.unknown_model_status == 404 else ""
            self._send_error(upstream.unknown_model_status, message, None, model)
            return
        reply = upstream._next_reply(body)
        upstream._pause(reply.delay)
        if reply.raw_body is not None:
            self._send_body(reply.status, reply.raw_body, "text/html", reply.retry_after)
        elif reply.status != 200:
            self._send_error(reply.status, reply.error_message, reply.retry_after, str(body.get("model", "")))
        elif reply.event_stream is not None:
            self._send_stream_head(reply)
            for chunk in reply.event_stream:
                self._send_chunk(chunk)
            self._send_chunk(b"")
        elif body.get("stream"):
            self._stream(reply, body)
        else:
            payload = json.dumps(completion_payload(reply, body)).encode()
            self._send_body(200, payload, "application/json", reply.retry_after)

    def _send_error(self, status: int, message: str, retry_after: str | None, model: str = "") -> None:
        text = message or default_error_message(status, model, self.headers.get("Authorization", ""))
        self._send_body(status, json.dumps(error_payload(status, text)).encode(), "application/json", retry_after)

    def _send_body(self, status: int, payload: bytes, content_type: str, retry_after: str | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream_head(self, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        if reply.retry_after is not None:
            self.send_header("Retry-After", reply.retry_after)
        self.end_headers()

    def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
        self._send_stream_head(reply)
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or body.get("model", ""),
        }
        deltas, reasoning_count = stream_deltas(reply)
        total = len(deltas) - reasoning_count
        for index, delta in enumerate(deltas):
            if index:
                self.server.upstream._pause(reply.token_delay)
            if index >= reasoning_count and self._fault(reply, index - reasoning_count, total):
                return
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            if index == len(deltas) - 1:
                choice["finish_reason"] = reply.finish_reason
            self._send_event({**base, "choices": [choice]})
        if self._fault(reply, total, total):
            return
        stream_options = body.get("stream_options")
        if reply.send_usage and isinstance(stream_options, dict) and stream_options.get("include_usage"):
            self._send_event({**base, "choices": [{"index": 0, "delta": {}}], "usage": compute_usage(reply, body)})
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _fault(self, reply: Reply, sent: int, total: int) -> bool:
        """Inject the reply's fault due after `sent` content chunks; True when the stream is over."""
        if fires(reply.malformed_after, sent, total):
            self._send_chunk(MALFORMED_EVENT)
        if fires(reply.stream_error_after, sent, total):
            self._send_event(error_payload(500, reply.error_message or "Upstream model crashed"))
            self._send_chunk(b"")
            return True
        if fires(reply.end_early_after, sent, total):
            self._send_chunk(b"")
            return True
        if fires(reply.stall_after, sent, total):
            self.server.upstream._pause(reply.stall_seconds)
            self.close_connection = True
            return True
        if fires(reply.drop_after, sent, total):
            self.close_connection = True
            return True
        return False

    def _send_event(self, payload: dict[str, Any]) -> None:
        self._send_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _send_chunk(self, data: bytes) -> None:
        """Write one HTTP chunk; empty data writes the terminating chunk."""
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class FakeUpstream:
    """A scripted OpenAI-compatible upstream on loopback; see the module docstring."""

    def __init__(
        self,
        api_key: str | None = None,
        models: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.models = list(models) if models is not None else list(DEFAULT_MODELS)
        self.host = host
        self.port = port
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.default_reply: Reply | Callable[[dict[str, Any]], Reply] = echo_reply
        self.models_status = 200
        # When set, a chat request for a model not in `models` gets this status, with
        # vLLM's wording for 404 ("The model `x` does not exist.") and LiteLLM's for 400.
        self.unknown_model_status: int | None = None
        # GET /model/info: each model's LiteLLM model_info (max_input_tokens,
        # input_cost_per_token, ...); None answers 404, as servers without it do.
        self.model_info: dict[str, dict[str, Any]] | None = None
        self.model_info_paths: tuple[str, ...] = MODEL_INFO_PATHS
        self._lock = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeUpstream:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.upstream = self
        self.base_url = f"http://{self.host}:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and end any sleeping stream."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == CHAT_PATH]

    def sent_messages(self, index: int = -1) -> list[dict[str, Any]]:
        return self.chat_requests[index].json["messages"]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.chat_requests) >= count, timeout):
                raise AssertionError(f"expected {count} chat requests, got {len(self.chat_requests)}")

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        default = self.default_reply
        return default if isinstance(default, Reply) else default(body)

    def _authorized(self, authorization: str) -> bool:
        return self.api_key is None or authorization == f"Bearer {self.api_key}"

    def _pause(self, seconds: float) -> None:
        """Sleep, waking early when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


def main(argv: list[str] | None = None) -> None:
    """Serve a default reply of N tokens until SIGTERM or SIGINT; print the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tokens", type=int, default=50, help="tokens in every reply")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before the response headers")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    args = parser.parse_args(argv)
    content = " ".join(f"tok{i}" for i in range(args.tokens))
    upstream = FakeUpstream(api_key=args.api_key, host=args.host, port=args.port)
    upstream.default_reply = Reply(content=content, delay=args.delay, token_delay=args.token_delay)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with upstream:
        print(upstream.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
