"""Real gunicorn processes (the Procfile's command): a worker killed or a server stopped
mid-reply, two workers and two instances sharing one database, one generating and the
others following (as smoothly as the generating one, through the reply bus) and
stopping."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from harness import processes
from harness.fake_upstream import Reply
from harness.procfs import children
from tests.conftest import API_KEY

TOKENS = [f"t{i} " for i in range(400)]
SHORT = [f"s{i} " for i in range(60)]  # a 1.2 s reply at 20 ms a token
# Polling the row alone would show the short reply in two or three updates.
SLOW_POLL = {"STREAM_POLL_SECONDS": "1.0"}
SSE_CONNECT = re.compile(r'sse-connect="([^"]+)"')
STALE_SECONDS = 2


@pytest.fixture
def start_server(database_url, upstream, tmp_path) -> Iterator:
    """Start the Procfile's web process on a free port; its base URL and process."""
    started = []

    def start(name: str = "app", **env: str):
        port = processes.free_port()
        settings = {"DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
                    "REGOLO_BASE_URL": upstream.base_url, "REGOLO_API_KEY": API_KEY,
                    "STREAM_FLUSH_SECONDS": "0.1", "STREAM_POLL_SECONDS": "0.1",
                    "STREAM_STALE_SECONDS": str(STALE_SECONDS), "ACCESS_LOG": "0",
                    "FLASK_DEBUG": "0", "WEB_CONCURRENCY": "1", "TITLE_GENERATION": "0", **env}
        process = processes.start_app(settings, port, tmp_path / f"{name}.log")
        started.append(process)
        return f"http://127.0.0.1:{port}", process

    yield start
    for process in started:
        processes.stop_process(process)


def wait_for(predicate, timeout: float, what: str):
    """Poll until predicate() is truthy; its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return value


def new_chat(base: str) -> tuple[requests.Session, str]:
    """A browser with one finished conversation; its conversation URL."""
    browser = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(base).text).group(1)
    browser.headers["X-CSRFToken"] = token  # as htmx sends it; forms post it as a field
    response = browser.post(f"{base}/c", data={"content": "Hello"}, allow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    return browser, base + response.headers["Location"].split("#")[0]


def send_with_htmx(browser: requests.Session, url: str) -> tuple[str, int]:
    """Send a message the way htmx does; the reply's stream path and message id."""
    response = browser.post(f"{url}/messages", data={"content": "Go"},
                            headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text[:300]
    stream = SSE_CONNECT.search(response.text).group(1)
    return stream, int(re.search(r"/messages/(\d+)/stream", stream).group(1))


def reply_state(browser: requests.Session, url: str, message_id: int) -> tuple[str, str]:
    """(status, visible text) of a reply, read from the conversation page."""
    page = browser.get(url).text
    tag, body = re.search(rf'(<article[^>]*\bid="m-{message_id}"[^>]*>)(.*?)</article>',
                          page, re.S).groups()
    status = re.search(r'data-status="([a-z]+)"', tag).group(1)
    return status, " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_a_worker_killed_mid_reply_leaves_it_interrupted_with_its_text(start_server,
                                                                       upstream):
    base, server = start_server()
    browser, url = new_chat(base)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))  # 20 s unless killed
    _, reply_id = send_with_htmx(browser, url)
    wait_for(lambda: "t0 t1 t2 t3 t4 t5" in reply_state(browser, url, reply_id)[1], 10,
             "partial text")
    (worker,) = children(server.pid)
    os.kill(worker, signal.SIGKILL)

    wait_for(lambda: set(children(server.pid)) - {worker}, 20, "a new worker")
    started = time.monotonic()
    status, text = wait_for(lambda: (state := reply_state(browser, url, reply_id))[0]
                            == "interrupted" and state, 4 * STALE_SECONDS, "interrupted")
    assert time.monotonic() - started <= 4 * STALE_SECONDS
    assert "t0 t1 t2 t3 t4 t5" in text and "t399" not in text
    assert "server handling it went away" in text

    upstream.enqueue(Reply("Back again."))
    stream, new_reply = send_with_htmx(browser, url)
    wait_for(lambda: reply_state(browser, url, new_reply)[0] == "complete", 10, "new reply")
    assert "Back again." in reply_state(browser, url, new_reply)[1]


def test_a_server_stopped_mid_reply_saves_it_as_interrupted_with_its_text(start_server,
                                                                         upstream):
    base, server = start_server("stopping")
    browser, url = new_chat(base)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))
    _, reply_id = send_with_htmx(browser, url)
    wait_for(lambda: "t0 t1 t2 t3" in reply_state(browser, url, reply_id)[1], 10,
             "partial text")
    browser.close()  # no idle keep-alive connection for the worker to wait on
    processes.stop_process(server)  # SIGTERM: the worker saves what it was writing
    base, _ = start_server("restarted", STREAM_STALE_SECONDS="600")  # no reaping
    url = base + "/c/" + url.split("/c/")[1]
    status, text = reply_state(make_reader(base, browser), url, reply_id)
    assert status == "interrupted" and "t0 t1 t2 t3" in text and "t399" not in text
    assert "The server restarted while writing this reply" in text


def test_an_unwatched_reply_of_a_dead_worker_is_reaped_without_page_views(start_server,
                                                                          upstream):
    base, server = start_server()
    browser, url = new_chat(base)
    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))
    _, reply_id = send_with_htmx(browser, url)
    wait_for(lambda: "t0 t1 t2 t3" in reply_state(browser, url, reply_id)[1], 10,
             "partial text")
    (worker,) = children(server.pid)
    os.kill(worker, signal.SIGKILL)
    time.sleep(3 * STALE_SECONDS)  # nobody looks meanwhile: the new worker's reaper acts
    other = make_reader(base, browser)
    assert reply_state(other, url, reply_id)[0] == "interrupted"


def make_reader(base: str, browser: requests.Session) -> requests.Session:
    """Another tab of the same browser."""
    tab = requests.Session()
    tab.cookies.update(browser.cookies)
    tab.headers.update(browser.headers)
    return tab


def read_stream(browser: requests.Session, base: str, path: str,
                on_first_update=None) -> list[tuple[str, str]]:
    """The (event, data) pairs of an event stream to its end."""
    events = []
    with browser.get(base + path, stream=True, timeout=30,
                     headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        name, data = None, []
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and name:
                events.append((name, "\n".join(data)))
                if name == "update" and on_first_update and len(events) == 1:
                    on_first_update()
                name, data = None, []
    return events


def changes_shown(events: list[tuple[str, str]]) -> int:
    """How many times the stream changed the reply before its end."""
    return sum(name in ("update", "delta") for name, _ in events)


def test_two_workers_stream_a_reply_change_by_change_whichever_serves_the_stream(
        start_server, upstream):
    base, server = start_server(WEB_CONCURRENCY="2", **SLOW_POLL)
    wait_for(lambda: len(children(server.pid)) == 2, 20, "two workers")
    browser, url = new_chat(base)
    upstream.enqueue(Reply(tokens=SHORT, token_delay=0.02))
    stream, _ = send_with_htmx(browser, url)
    # Several tabs at once: the workers share the listening socket, so these streams are
    # spread over both, and usually some land on the worker that does not generate the
    # reply (the two-instance test below makes sure of it).
    tabs = [make_reader(base, browser) for _ in range(6)]
    results: dict[int, list] = {}
    threads = [threading.Thread(target=lambda n=n, tab=tab: results.__setitem__(
        n, read_stream(tab, base, stream))) for n, tab in enumerate(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == len(tabs)
    for events in results.values():
        assert events[-1][0] == "done" and "s59" in events[-1][1]
        assert changes_shown(events) >= 10, [name for name, _ in events]


def test_two_instances_share_a_database_send_on_one_follow_and_stop_on_the_other(
        start_server, upstream):
    # Stop requests are read from the database only every 3 s: the bus must carry them.
    slow_fallbacks = {"STREAM_FLUSH_SECONDS": "3", "STREAM_STALE_SECONDS": "30", **SLOW_POLL}
    first, _ = start_server("first", **slow_fallbacks)
    second, _ = start_server("second", **slow_fallbacks)
    browser, url = new_chat(first)
    other_tab = make_reader(second, browser)

    upstream.enqueue(Reply(tokens=SHORT, token_delay=0.02))
    stream, _ = send_with_htmx(browser, url)
    events = read_stream(other_tab, second, stream)
    assert events[-1][0] == "done" and "s59" in events[-1][1]
    assert changes_shown(events) >= 10, [name for name, _ in events]

    upstream.enqueue(Reply(tokens=TOKENS, token_delay=0.05))
    stream, reply_id = send_with_htmx(browser, url)
    other_url = url.replace(first, second)

    def stop_on_the_second():
        response = other_tab.post(f"{other_url}/messages/{reply_id}/stop",
                                  headers={"HX-Request": "true"})
        assert response.status_code == 204

    events = read_stream(other_tab, second, stream, on_first_update=stop_on_the_second)
    names = [name for name, _ in events]
    assert names[0] == "update" and names[-1] == "done"
    assert "Stopped" in events[-1][1] and "t50" not in events[-1][1]  # 2.5 s after
    status, text = reply_state(browser, url, reply_id)
    assert status == "stopped" and "t0 " in text
    assert reply_state(other_tab, other_url, reply_id) == (status, text)
