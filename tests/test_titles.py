"""Conversation titles written by the model after the first reply, and their fallbacks."""

from __future__ import annotations

import pytest

from harness.fake_upstream import Reply
from tests.conftest import share_link, start_chat, wait_for_generations, wait_until
from tests.test_streaming import read_events, reply_row, send_htmx
from webapp.conversations import titles
from webapp.conversations.models import Conversation, Message
from webapp.conversations.titles import clean_title
from webapp.extensions import db

QUESTION = "Can you help me plan a three day trip to Rome in spring please"
DEFAULT_TITLE = "Can you help me plan a three day"  # the first words of the question


@pytest.fixture
def app(make_app):
    return make_app(TITLE_GENERATION=True)


def title_of(app) -> tuple[str, bool]:
    with app.app_context():
        conversation = db.session.scalars(db.select(Conversation)).one()
        return conversation.title, conversation.title_is_custom


def title_requests(upstream):
    """The title requests: the only chat requests that do not stream."""
    return [r for r in upstream.chat_requests if r.json["stream"] is False]


def test_the_first_reply_is_followed_by_a_short_title(client, app, upstream):
    upstream.enqueue(Reply("Sure, here is a plan."), Reply('"Rome Trip Planning."'))
    url = start_chat(client, QUESTION)
    wait_for_generations(app)
    assert title_of(app) == ("Rome Trip Planning", False)
    [request] = title_requests(upstream)
    assert request.json["max_tokens"] == 16
    assert request.json["model"] == "Llama-3.3-70B-Instruct"
    [prompt] = request.json["messages"]
    assert prompt["role"] == "user" and QUESTION in prompt["content"]
    assert "3 to 6 words" in prompt["content"]
    page = client.get(url).get_data(as_text=True)
    assert '<h1 id="conv-title">Rome Trip Planning</h1>' in page
    assert f'id="conv-{url.rsplit("/", 1)[1]}"' in page.split("</nav>")[0]
    found = client.get("/search", query_string={"q": "planning"}).get_data(as_text=True)
    assert "<mark>Planning</mark>" in found  # the search index follows the new title


def test_the_title_comes_after_the_reply_is_saved(client, app, upstream):
    upstream.enqueue(Reply("Answer."), Reply("Rome Trip", delay=1.0))
    url = start_chat(client, QUESTION)  # returns once the reply is saved
    assert reply_row(app).status == "complete"
    assert title_of(app)[0] == DEFAULT_TITLE
    wait_for_generations(app)
    assert title_of(app)[0] == "Rome Trip"
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("title_reply", [
    Reply(status=500), Reply(status=401), Reply(raw_body=b"<html>oops</html>"),
    Reply("   "), Reply("<think>The user wants a title so"),
])
def test_on_any_title_error_the_first_words_stay(client, app, upstream, title_reply):
    upstream.enqueue(Reply("Answer."), title_reply)
    url = start_chat(client, QUESTION)
    wait_for_generations(app)
    assert len(title_requests(upstream)) == 1
    assert title_of(app) == (DEFAULT_TITLE, False)
    assert reply_row(app).status == "complete" and reply_row(app).content == "Answer."
    assert client.get(url).status_code == 200


def test_only_the_first_complete_reply_gets_a_title(client, app, upstream):
    upstream.enqueue(Reply(status=401))
    url = start_chat(client, QUESTION)
    wait_for_generations(app)
    assert title_requests(upstream) == []  # the reply failed: no title yet
    upstream.enqueue(Reply("Now it works."), Reply("Rome in Spring"))
    client.post(f"{url}/messages/{reply_row(app).id}/retry")
    wait_for_generations(app)
    assert title_of(app)[0] == "Rome in Spring"
    client.post(f"{url}/messages", data={"content": "And Florence?"})
    wait_for_generations(app)
    assert len(title_requests(upstream)) == 1


def test_a_custom_title_is_never_asked_for_or_overwritten(client, app, upstream):
    url = start_chat(client, "Hi")
    wait_for_generations(app)
    upstream.reset()
    client.post(f"{url}/rename", data={"title": "My trip"})
    client.post(f"{url}/messages", data={"content": "More"})
    wait_for_generations(app)
    assert title_requests(upstream) == []

    # Renamed while its first reply is being written: no title request at all.
    upstream.enqueue(Reply(tokens=["a ", "b ", "c "], token_delay=0.2))
    other = client.post("/c", data={"content": QUESTION}, headers={"HX-Request": "true"})
    other_url = other.headers["HX-Redirect"]
    client.post(f"{other_url}/rename", data={"title": "Chosen"})
    wait_for_generations(app)
    assert title_requests(upstream) == []


def test_a_rename_during_the_title_request_wins(client, app, upstream):
    upstream.enqueue(Reply("Answer."), Reply("Generated Title", delay=1.0))
    response = client.post("/c", data={"content": QUESTION}, headers={"HX-Request": "true"})
    url = response.headers["HX-Redirect"]
    upstream.wait_for_requests(2)  # the title request is waiting for its answer
    client.post(f"{url}/rename", data={"title": "Chosen by me"})
    wait_for_generations(app)
    assert title_of(app) == ("Chosen by me", True)


def test_the_next_done_event_carries_the_new_title(client, app, upstream):
    upstream.enqueue(Reply("Answer."), Reply("Rome Trip"))
    url = start_chat(client, QUESTION)
    wait_for_generations(app)
    events = read_events(client, send_htmx(client, url, "More"))
    done = events[-1][1]
    assert '<h1 id="conv-title" hx-swap-oob="true">Rome Trip</h1>' in done
    assert f'<a id="conv-{url.rsplit("/", 1)[1]}" hx-swap-oob="true"' in done


def test_the_first_done_event_carries_the_title_to_the_tab_and_the_rename_field(
        client, app, upstream):
    upstream.enqueue(Reply("Answer.", delay=0.5), Reply("Rome Trip", delay=0.5))
    response = client.post("/c", data={"content": QUESTION}, headers={"HX-Request": "true"})
    page = client.get(response.headers["HX-Redirect"]).get_data(as_text=True)
    stream_url = page.split('sse-connect="')[1].split('"')[0]
    events = read_events(client, stream_url)
    done = events[-1][1]  # sent once the title is written, though it came later
    assert events[-1][0] == "done" and "Answer." in done
    assert "<title>Rome Trip · Regolo Chat</title>" in done
    assert '<h1 id="conv-title" hx-swap-oob="true">Rome Trip</h1>' in done
    assert ('<input id="title-input" name="title" value="Rome Trip"' in done
            and 'required hx-swap-oob="true">' in done)


def test_a_stopped_reply_ends_its_stream_without_waiting_for_the_upstream(client, app,
                                                                         upstream):
    upstream.enqueue(Reply(tokens=["Some ", "words ", "then ", "silence"], stall_after=2,
                           stall_seconds=3))
    response = client.post("/c", data={"content": QUESTION}, headers={"HX-Request": "true"})
    url = response.headers["HX-Redirect"]
    wait_until(lambda: reply_row(app).content)
    reply_id = reply_row(app).id
    client.post(f"{url}/messages/{reply_id}/stop", headers={"HX-Request": "true"})
    live = app.extensions["relay"].get(reply_id)
    assert live is not None  # its generation still waits on the silent upstream...
    assert live.finished and live.settled  # ...but a stopped reply gets no title to wait for


def test_a_rename_updates_the_tab_title(client, app, upstream):
    url = start_chat(client, QUESTION)
    html = client.post(f"{url}/rename", data={"title": "Mine"},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<title>Mine · Regolo Chat</title>" in html


def test_title_generation_can_be_turned_off(make_app, upstream):
    app = make_app(TITLE_GENERATION=False)
    start_chat(app.test_client(), QUESTION)
    wait_for_generations(app)
    assert title_requests(upstream) == [] and title_of(app)[0] == DEFAULT_TITLE


@pytest.mark.parametrize("answer, title", [
    ('"Planning a Trip to Rome"', "Planning a Trip to Rome"),
    ("Title: **Rome in Spring**.", "Rome in Spring"),
    ("“Rome’s Best Sights”!\nSecond line", "Rome’s Best Sights"),
    ("<think>short</think>\nWeekend in Rome", "Weekend in Rome"),
    ("one two three four five six seven eight nine ten", "one two three four five six seven eight"),
    ("x" * 100, "x" * 59 + "…"),
    ("<think>never closed", ""),
    ("...", ""),
])
def test_titles_are_cleaned(answer, title, app):
    with app.app_context():
        assert clean_title(answer) == title



def test_of_compared_replies_saved_together_exactly_one_titles(make_app, upstream):
    """Two columns that finish at the same moment: each one's hook then sees the other
    complete too; the one whose claim on the conversation is written first asks."""
    app = make_app(TITLE_GENERATION=False)
    client = app.test_client()
    upstream.default_reply = lambda body: Reply(f"{body['model']} answers")
    client.post("/c", data={"content": QUESTION, "models": ["m-a", "m-b"]})
    wait_for_generations(app)
    service = app.extensions["generation"]
    with app.app_context():
        replies = db.session.scalars(db.select(Message).where(Message.role == "assistant")
                                     .order_by(Message.id)).all()
    hook = titles.after_first_reply(service.client)
    upstream.default_reply = lambda body: Reply("Rome in Spring")
    for reply in reversed(replies):
        with service.sessions() as session:
            hook(session, reply.id)
    assert len(title_requests(upstream)) == 1
    assert title_of(app)[0] == "Rome in Spring"


def test_a_conversation_continued_from_a_share_keeps_its_title(client, app, upstream):
    url = start_chat(client, QUESTION)
    wait_for_generations(app)
    link = share_link(client, url)
    other = app.test_client()
    copy = other.post(f"{link}/continue").headers["Location"]
    asked = len(title_requests(upstream))
    other.post(f"{copy}/messages", data={"content": "And Florence?"})
    wait_for_generations(app)
    assert len(title_requests(upstream)) == asked


@pytest.mark.parametrize("slow_model", [None, "m-a", "m-b"])
def test_compared_replies_title_the_conversation_once_whichever_finishes_first(
        client, app, upstream, slow_model):
    def reply(body):
        if body["stream"] is False:
            return Reply("Rome in Spring")
        return Reply(f"{body['model']} answers", delay=0.4 if body["model"] == slow_model else 0)

    upstream.default_reply = reply
    response = client.post("/c", data={"content": QUESTION, "models": ["m-a", "m-b", "m-c"]})
    assert response.status_code == 303
    wait_for_generations(app)
    wait_until(lambda: title_of(app)[0] == "Rome in Spring")
    assert len(title_requests(upstream)) == 1
