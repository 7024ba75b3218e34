"""Client for an OpenAI-compatible chat API (Regolo by default); knows nothing of Flask."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from webapp.upstream.storable import storable
from webapp.upstream.upstream_body import BodyReader

log = logging.getLogger(__name__)
_decode_json = json.JSONDecoder().raw_decode
MODEL_NOT_SERVED = "This server does not serve this model; pick another one."


# The API's own error message is shown to people up to this length.
DETAIL_CHARS = 1000


class LLMError(Exception):
    """A failure talking to the upstream, with a sentence fit to show a person.

    `detail` is the API's own error message (storable, at most DETAIL_CHARS), shown to
    people under the sentence; `cause` (an exception's text, a body that is not the
    API's JSON) is for the server log only: it can name hosts and addresses.
    """

    retryable = False

    def __init__(self, user_message: str, detail: str = "", status: int | None = None,
                 cause: str = ""):
        user_message = storable(user_message)  # it may quote the API's message
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = _shortened(storable(detail).strip(), DETAIL_CHARS)
        self.status = status
        self.cause = cause

    def log_text(self) -> str:
        """What the server log says of this error beyond its sentence."""
        return "; ".join(part for part in (self.detail, self.cause) if part)[:1000]


class MissingAPIKey(LLMError):
    """No key is configured."""


class AuthenticationFailed(LLMError):
    """401/403: the key was rejected or lacks access."""


class BadRequest(LLMError):
    """400/422: the upstream refused the request as malformed."""


class ModelNotFound(BadRequest):
    """The model name is not served to this key (a 400 from LiteLLM, a 404 from vLLM,
    Ollama or OpenAI)."""


class ImagesNotSupported(BadRequest):
    """The model takes text only and the request carried images."""


class ContextTooLong(BadRequest):
    """The conversation no longer fits the model's context window."""


class NotFound(LLMError):
    """404: wrong base URL or endpoint."""


class RateLimited(LLMError):
    """429: too many requests; retry_after says how long to wait, when known."""

    retryable = True

    def __init__(self, user_message: str, detail: str = "", status: int | None = 429,
                 retry_after: float | None = None):
        super().__init__(user_message, detail, status)
        self.retry_after = retry_after

    def when_to_try_again(self) -> str:
        """The sentence with the time the API asked to wait, when it said one."""
        if not self.retry_after:
            return self.user_message
        return (self.user_message.rstrip(".") + "; try again in about "
                + duration_text(self.retry_after) + ".")


class UpstreamUnavailable(LLMError):
    """5xx, or the server could not be reached at all."""

    retryable = True


class UpstreamTimeout(LLMError):
    """No answer within the timeout."""


class InvalidResponse(LLMError):
    """The body was not the JSON or event stream an OpenAI-compatible server sends."""


class StreamInterrupted(LLMError):
    """The stream broke off before the reply was finished."""


@dataclass
class Usage:
    """Token counts as the upstream reports them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        return cls(*(_int_or_none(data.get(key)) for key in
                     ("prompt_tokens", "completion_tokens", "total_tokens")))

    def plus(self, other: Usage | None) -> Usage:
        """The counts of two requests added up (a count neither reported stays None)."""
        if other is None:
            return self

        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(add(self.prompt_tokens, other.prompt_tokens),
                     add(self.completion_tokens, other.completion_tokens),
                     add(self.total_tokens, other.total_tokens))


@dataclass
class Completion:
    """A whole reply from a non-streaming request."""

    content: str
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None


@dataclass
class Delta:
    """One piece of a streamed reply; any field may be empty."""

    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None  # the model the server says is answering


@dataclass(frozen=True)
class ModelInfo:
    """What a server publishes about a model: its context window and prices per token."""

    context_window: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None

    @classmethod
    def from_json(cls, info: Any) -> ModelInfo:
        """From LiteLLM's model_info: max_input_tokens (else max_tokens) and the costs."""
        info = info if isinstance(info, dict) else {}
        window = _int_or_none(info.get("max_input_tokens")) or _int_or_none(
            info.get("max_tokens"))
        return cls(window if window and window > 0 else None,
                   _price_or_none(info.get("input_cost_per_token")),
                   _price_or_none(info.get("output_cost_per_token")))


@dataclass
class LLMClient:
    """Calls {base_url}/models and {base_url}/chat/completions with a pooled session."""

    base_url: str
    api_key: str
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # After the first token, pause read_pace seconds after each read that had to wait, so
    # the next reads take every chunk that came meanwhile (upstream_body.py); 0 reads each
    # chunk as it comes.
    read_pace: float = 0.0
    session: requests.Session = field(default_factory=requests.Session)

    def list_models(self) -> list[str]:
        """The ids of the models the upstream serves to this key (a short wait at most)."""
        quick = (min(self.connect_timeout, 3.0), min(self.read_timeout, 5.0))
        try:
            body = self._request("GET", "/models", timeout=quick).json()
            return sorted(str(item["id"]) for item in body["data"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidResponse("The model list from the API was not understood.",
                                  cause=repr(exc)[:500]) from exc

    def model_info(self) -> dict[str, ModelInfo]:
        """What the server publishes about its models (LiteLLM's GET /model/info), by name.

        Asked under the base URL first, then at the server's root (LiteLLM answers both);
        NotFound when the server has no such endpoint.
        """
        quick = (min(self.connect_timeout, 3.0), min(self.read_timeout, 5.0))
        urls = [self.base_url + "/model/info"]
        root = re.sub(r"/v1$", "", self.base_url)
        if root != self.base_url:
            urls.append(root + "/model/info")
        for url in urls:
            try:
                response = self._request("GET", url=url, timeout=quick)
            except NotFound:
                if url == urls[-1]:
                    raise
                continue
            try:
                return {str(item["model_name"]): ModelInfo.from_json(item.get("model_info"))
                        for item in response.json()["data"]}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InvalidResponse("The model info from the API was not understood.",
                                      cause=repr(exc)[:500]) from exc
        return {}

    def complete(self, model: str, messages: list[dict], **params: Any) -> Completion:
        """One reply, waiting for all of it."""
        payload = {**params, "model": model, "messages": messages, "stream": False}
        response = self._request("POST", "/chat/completions", json=payload)
        try:
            body = response.json()
            choice = body["choices"][0]
            message = choice["message"]
            return Completion(
                content=storable(message.get("content") or ""),
                reasoning=storable(message.get("reasoning_content") or ""),
                finish_reason=_finish_reason(choice),
                usage=Usage.from_json(body.get("usage")),
                model=body.get("model"),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise InvalidResponse("The API sent a reply that is not valid JSON.",
                                  cause=response.text[:500]) from exc

    def stream(self, model: str, messages: list[dict], **params: Any) -> Iterator[Delta]:
        """The reply as it is generated; raises StreamInterrupted if it breaks off."""
        payload = {**params, "model": model, "messages": messages, "stream": True,
                   "stream_options": {"include_usage": True}}
        response = self._request("POST", "/chat/completions", json=payload, stream=True)
        finished = False
        with response:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise InvalidResponse("The API's reply was not understood (expected an "
                                      "event stream).", cause=response.text[:500])
            try:
                body = BodyReader(response.raw, self.read_timeout, self.read_pace)
                events = _sse_data(body)
                for data in events:
                    if data == b"[DONE]":
                        for _ in events:  # read to the end so the connection is reused
                            pass
                        return
                    delta = _parse_chunk(data)
                    finished = finished or bool(delta.finish_reason)
                    if delta.content or delta.reasoning:
                        body.pace()
                    yield delta
            except StreamInterrupted:
                if not finished:  # a break after the finish chunk loses nothing
                    raise
                return
        if not finished:
            raise StreamInterrupted("The reply was cut off before it finished.")

    def _request(self, method: str, path: str = "", url: str = "",
                 **kwargs: Any) -> requests.Response:
        """A request to base_url + path (or to a whole url); typed errors for failures."""
        if not self.api_key:
            raise MissingAPIKey("No API key is configured: set REGOLO_API_KEY and restart.")
        url = url or self.base_url + path
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
        try:
            response = self.session.request(
                method, url, headers={"Authorization": f"Bearer {self.api_key}"}, **kwargs)
        except requests.Timeout as exc:
            raise UpstreamTimeout("The API did not answer in time; try again.",
                                  cause=repr(exc)) from exc
        except requests.ConnectionError as exc:
            raise UpstreamUnavailable("The API could not be reached; try again in a moment.",
                                      cause=repr(exc)) from exc
        if response.status_code >= 400:
            try:
                raise error_for_status(response)
            finally:
                response.close()
        return response


def error_for_status(response: requests.Response) -> LLMError:
    """The typed error for an HTTP error response, with a sentence of our own."""
    detail = _error_message(response)
    # A body that is not the API's JSON error (a proxy's HTML page) is for the log only.
    cause = "" if detail else response.text[:500]
    error = _typed_error(response, detail, (detail or cause).lower())
    error.cause = cause
    return error


def _typed_error(response: requests.Response, detail: str, lowered: str) -> LLMError:
    """The error class and sentence for the response's status and what its body says."""
    status = response.status_code
    if status in (401, 403):
        return AuthenticationFailed(f"The API key was rejected ({status}). "
                                    "Check REGOLO_API_KEY.", detail, status)
    if status == 404 and "model" in lowered:
        return ModelNotFound(MODEL_NOT_SERVED, detail, status)
    if status == 404:
        return NotFound("The API endpoint was not found (404). Check REGOLO_BASE_URL.",
                        detail, status)
    if status == 429:
        return RateLimited("The API is rate limiting requests (429).", detail, status,
                           retry_after=retry_after_seconds(
                               response.headers.get("Retry-After")))
    if status in (400, 422):
        if "model" in lowered and ("invalid model" in lowered or "not found" in lowered
                                   or "does not exist" in lowered):
            return ModelNotFound(MODEL_NOT_SERVED, detail, status)
        if any(word in lowered for word in ("image", "vision", "multimodal")):
            return ImagesNotSupported("This model does not accept images; pick a vision "
                                      "model or remove the images.", detail, status)
        if "context" in lowered or "too long" in lowered or "maximum" in lowered:
            return ContextTooLong(_with_api_words("The conversation is too long for this "
                                                  "model", detail), detail, status)
        return BadRequest(_with_api_words(f"The API refused the request ({status})", detail),
                          detail, status)
    if status >= 500:
        return UpstreamUnavailable(f"The API had a server error ({status}); "
                                   "try again in a moment.", detail, status)
    return LLMError(f"The API answered with status {status}.", detail, status)


def _error_message(response: requests.Response) -> str:
    """The message of the API's JSON error body; "" for any other body."""
    try:
        error = response.json()["error"]
        return str(error.get("message") if isinstance(error, dict) else error)
    except (ValueError, KeyError, TypeError):
        return ""


def _with_api_words(sentence: str, detail: str) -> str:
    """Our sentence, followed by the API's own message (shortened) when it sent one."""
    return f"{sentence}: {_short(detail)}" if detail.strip() else sentence + "."


def _short(text: str, limit: int = 300) -> str:
    return _shortened(" ".join(text.split()), limit)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The wait a Retry-After header asks for, in seconds, or None when it gives none.

    Both forms are understood: a number of seconds, or an HTTP date. A negative,
    infinite or NaN number, a date in the past, or anything unparsable is None: the
    caller's own backoff applies.
    """
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # RFC 9110 dates are GMT; a zoneless one is read so
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def duration_text(seconds: float) -> str:
    """A wait for people: "12 s", "3 minutes", "2 hours"."""
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _price_or_none(value: Any) -> float | None:
    """A published price per token: a finite number not below zero, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _sse_data(body: BodyReader) -> Iterator[bytes]:
    """The data fields of a server-sent event stream as they arrive, stripped, still bytes.

    Lines end with \n (a \r before it is whitespace to strip); a line or a UTF-8 character
    split across reads waits in `rest` for the read that completes it.
    """
    chunks = iter(body)
    rest = b""
    while True:
        try:
            chunk = next(chunks, None)
        except Exception as exc:  # whatever breaks reading the body, the connection is gone
            raise StreamInterrupted(_interruption_sentence(exc), cause=repr(exc)) from exc
        if chunk is None:
            return
        lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()


def _interruption_sentence(exc: Exception) -> str:
    if "timed out" in str(exc).lower():  # urllib3's ReadTimeoutError, or SSL's read timeout
        return "The API stopped sending in the middle of the reply (timed out)."
    return "The connection to the API dropped in the middle of the reply."


def _parse_chunk(data: bytes) -> Delta:
    """One chunk of the stream. `data` is stripped, so raw_decode accepts exactly what
    json.loads would, without the whitespace scans that are 40 % of json.loads' time here."""
    text = data.decode("utf-8", "replace")
    try:
        chunk, end = _decode_json(text)
    except ValueError as exc:
        raise StreamInterrupted("The API sent a malformed piece of the reply.",
                                cause=text[:500]) from exc
    if end != len(text) or not isinstance(chunk, dict):
        raise StreamInterrupted("The API sent a malformed piece of the reply.",
                                cause=text[:500])
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise StreamInterrupted("The API reported an error in the middle of the reply.",
                                detail=str(message))
    usage = Usage.from_json(chunk["usage"]) if "usage" in chunk else None
    model = chunk.get("model")
    model = model if isinstance(model, str) and model else None
    if model and _UNSTORABLE_ESCAPE.search(data):
        model = storable(model)
    choices = chunk.get("choices")
    choice = choices[0] if choices else None
    if not isinstance(choice, dict):
        return Delta(usage=usage, model=model)
    piece = choice.get("delta")
    if not piece:  # the usage chunk, or a finish chunk without text
        return Delta(finish_reason=_finish_reason(choice), usage=usage, model=model)
    content = piece.get("content") or ""
    reasoning = piece.get("reasoning_content") or piece.get("reasoning") or ""
    if _UNSTORABLE_ESCAPE.search(data):
        content, reasoning = storable(content), storable(reasoning)
    return Delta(content, reasoning, _finish_reason(choice), usage, model)


# JSON strings hold NUL or half of a UTF-16 pair (\ud83d) only as escapes, and text
# holding them cannot be stored (webapp/upstream/storable.py): only such chunks need cleaning.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _finish_reason(choice: dict) -> str | None:
    """The choice's finish reason, storable, or None when it names none."""
    reason = choice.get("finish_reason")
    return storable(reason) if isinstance(reason, str) and reason else None


def pooled_session(base_url: str, pool_size: int = 1024) -> requests.Session:
    """A requests session for base_url that keeps up to pool_size connections per host open.

    The environment's proxy and CA settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE) are read once here instead of on every request, where requests spends
    about half a millisecond on them; ~/.netrc is not read, the key is sent explicitly.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(base_url)
    session.verify = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                      or True)
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
