"""Upstream failures show people a sentence and the API's own words, never our setup.

Neither the page nor the reply's stream may name the upstream's base URL, host or port,
or a Python exception; the server log keeps them for the operator.
"""

from __future__ import annotations

import logging
import socket

import pytest

from harness.fake_upstream import Reply
from tests.conftest import messages_of, text_of
from tests.test_streaming import read_events, send_htmx

# Words of the client's exceptions (requests, urllib3, socket) that must stay in the log.
EXCEPTION_WORDS = ["Error", "Exception", "Timeout", "HTTPConnectionPool", "Max retries",
                   "Errno", "Traceback", "urllib3", "requests.", "gaierror", "timed out",
                   "Name or service", "refused", "object at 0x"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["connection refused", "DNS failure", "timeout", "malformed stream"])
def fault(request, make_app, upstream):
    """(app, sentence shown, host, base URL, what the log says) for one kind of upstream
    failure."""
    settings = {"REGOLO_RETRY_BUDGET": 1.5}  # one retry, with its notice, then the error
    if request.param == "connection refused":
        settings["REGOLO_BASE_URL"] = f"http://127.0.0.1:{closed_port()}/v1"
        sentence = "The API could not be reached; try again in a moment."
    elif request.param == "DNS failure":
        settings["REGOLO_BASE_URL"] = "http://regolo-upstream.invalid/v1"
        sentence = "The API could not be reached; try again in a moment."
    elif request.param == "timeout":
        settings["REGOLO_READ_TIMEOUT"] = 0.3
        upstream.enqueue(*[Reply(delay=1.5)] * 2)  # the first send, then the htmx one
        sentence = "The API did not answer in time; try again."
    else:
        upstream.enqueue(*[Reply(tokens=["a ", "b ", "c"], malformed_after=1)] * 2)
        sentence = "The API sent a malformed piece of the reply."
    app = make_app(**settings)
    base_url = app.config["REGOLO_BASE_URL"]
    host = base_url.split("//")[1].split(":")[0].split("/")[0]
    logged = '{"choices": [' if request.param == "malformed stream" else host
    return app, sentence, host, base_url, logged


def test_the_page_and_the_stream_name_no_host_nor_exception(fault, caplog):
    app, sentence, host, base_url, logged = fault
    client = app.test_client()
    url = client.post("/c", data={"content": "Hi"}).headers["Location"].split("#")[0]
    stream_url = send_htmx(client, url, "Again")
    events = "\n".join(data for _, data in read_events(client, stream_url))
    page = client.get(url).get_data(as_text=True)
    assert sentence in text_of(page) and sentence in text_of(events)
    assert messages_of(app)[-1].error_detail is None  # nothing came from the API itself
    for shown in (page, events):
        for secret in (base_url, host, base_url.split("/v1")[0]):
            assert secret not in shown
        for word in EXCEPTION_WORDS:
            assert word not in text_of(shown), word
    assert logged in caplog.text  # the operator still learns what failed


def test_the_apis_own_message_is_shown_capped(client, app, upstream):
    upstream.enqueue(Reply(status=422, error_message="temperature must be <= 2 " * 200))
    client.post("/c", data={"content": "Hi"})
    reply = messages_of(app)[-1]
    assert reply.error_detail.startswith("temperature must be <= 2")
    assert len(reply.error_detail) == 1000 and reply.error_detail.endswith("…")
    assert len(reply.error) < 400  # the sentence quotes the API's message, shortened


def test_a_body_that_is_not_the_apis_json_is_kept_for_the_log(client, app, upstream, caplog):
    upstream.enqueue(Reply(status=400, raw_body=b"<html>nginx at 10.0.0.7:8000</html>"))
    page = text_of(client.get(client.post("/c", data={"content": "Hi"})
                              .headers["Location"].split("#")[0]).get_data(as_text=True))
    assert "The API refused the request (400)." in page
    assert "10.0.0.7" not in page and "nginx" not in page
    assert "10.0.0.7" in caplog.text
