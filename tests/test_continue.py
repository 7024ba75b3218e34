"""Continue: a reply cut at the token limit, stopped or interrupted goes on in the same row."""

from __future__ import annotations

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of, wait_for_generations
from tests.test_streaming import read_events, reply_row, send_htmx, shown, wait_until
from webapp.conversations.models import Conversation
from webapp.extensions import db
from webapp.replies.generation import CONTINUE_INSTRUCTION

USAGE = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
MORE_USAGE = {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24}


def cut_chat(client, upstream) -> str:
    """A conversation whose reply stopped at the token limit."""
    upstream.enqueue(Reply("The first half,", finish_reason="length", usage=USAGE))
    return start_chat(client, "Tell a story", system_prompt="Be brief.")


def test_a_reply_cut_at_the_token_limit_says_so_and_offers_continue(client, app, upstream):
    url = cut_chat(client, upstream)
    page = client.get(url).get_data(as_text=True)
    assert "Cut off at the token limit" in text_of(page)
    reply = reply_row(app)
    assert f'action="{url}/messages/{reply.id}/continue"' in page
    assert ">Continue</button>" in page


def test_continue_appends_to_the_same_reply_with_the_partial_text_replayed(client, app,
                                                                         upstream):
    url = cut_chat(client, upstream)
    before = messages_of(app)
    upstream.enqueue(Reply(" and the second half.", usage=MORE_USAGE))
    response = client.post(f"{url}/messages/{before[-1].id}/continue")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"#m-{before[-1].id}")

    assert upstream.sent_messages(-1) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell a story"},
        {"role": "assistant", "content": "The first half,"},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    after = messages_of(app)
    assert [m.id for m in after] == [m.id for m in before]  # no message was added
    reply = after[-1]
    assert reply.content == "The first half, and the second half."
    assert reply.status == "complete" and reply.finish_reason == "stop"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (30, 7, 37)
    page = text_of(client.get(url).get_data(as_text=True))
    assert "The first half, and the second half." in page
    assert "Cut off at the token limit" not in page and "Continue" not in page


def test_the_instruction_is_never_replayed_later(client, app, upstream):
    url = cut_chat(client, upstream)
    upstream.enqueue(Reply(" the end."))
    client.post(f"{url}/messages/{reply_row(app).id}/continue")
    client.post(f"{url}/messages", data={"content": "Another"})
    assert upstream.sent_messages(-1)[2:] == [
        {"role": "assistant", "content": "The first half, the end."},
        {"role": "user", "content": "Another"},
    ]


def test_continue_with_htmx_streams_from_the_text_so_far(client, app, upstream):
    url = cut_chat(client, upstream)
    reply_id = reply_row(app).id
    upstream.enqueue(Reply(tokens=[" more", " words."], token_delay=0.05))
    response = client.post(f"{url}/messages/{reply_id}/continue",
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert f'id="m-{reply_id}"' in html and "sse-connect" in html
    assert "The first half," in text_of(html)
    events = read_events(client, html.split('sse-connect="')[1].split('"')[0])
    assert all("The first half," in text_of(html) for _, html in shown(events))
    assert events[-1][0] == "done" and "The first half, more words." in text_of(events[-1][1])


def test_a_stopped_reply_can_be_continued(client, app, upstream):
    url = start_chat(client)
    upstream.enqueue(Reply(tokens=[f"w{i} " for i in range(12)], token_delay=0.1))
    send_htmx(client, url)
    wait_until(lambda: reply_row(app).content)
    reply_id = reply_row(app).id
    client.post(f"{url}/messages/{reply_id}/stop", headers={"HX-Request": "true"})
    wait_for_generations(app)
    stopped = reply_row(app).content
    assert ">Continue</button>" in client.get(url).get_data(as_text=True)
    upstream.enqueue(Reply("rest."))
    client.post(f"{url}/messages/{reply_id}/continue")
    assert upstream.sent_messages(-1)[-2:] == [
        {"role": "assistant", "content": stopped},
        {"role": "user", "content": CONTINUE_INSTRUCTION}]
    assert reply_row(app).content == stopped + "rest."
    assert reply_row(app).status == "complete" and reply_row(app).error is None


def test_an_interrupted_reply_offers_retry_and_continue(client, app, upstream):
    upstream.enqueue(Reply(tokens=["a ", "b ", "c "], drop_after=2))
    url = start_chat(client)
    page = client.get(url).get_data(as_text=True)
    assert ">Retry</button>" in page and ">Continue</button>" in page
    upstream.enqueue(Reply("c."))
    client.post(f"{url}/messages/{reply_row(app).id}/continue")
    assert reply_row(app).content == "a b c."


def test_a_failed_continuation_keeps_the_text(client, app, upstream):
    url = cut_chat(client, upstream)
    upstream.enqueue(Reply(status=401))
    client.post(f"{url}/messages/{reply_row(app).id}/continue")
    reply = reply_row(app)
    assert reply.content == "The first half," and reply.status == "interrupted"
    assert "The API key was rejected" in reply.error


def test_only_the_last_cut_or_stopped_reply_can_be_continued(client, app, upstream):
    url = start_chat(client, "Hi")
    complete = reply_row(app)
    response = client.post(f"{url}/messages/{complete.id}/continue")
    assert response.status_code == 409
    assert "can be continued" in text_of(response.get_data(as_text=True))

    upstream.enqueue(Reply("Cut", finish_reason="length"))
    client.post(f"{url}/messages", data={"content": "More"})
    cut = reply_row(app)
    client.post(f"{url}/messages", data={"content": "Later"})
    response = client.post(f"{url}/messages/{cut.id}/continue",
                           headers={"HX-Request": "true"})
    assert response.status_code == 409 and response.headers["HX-Retarget"] == "#form-error"
    assert len(upstream.chat_requests) == 3
    assert messages_of(app)[-3].content == "Cut"


def test_continue_while_the_title_is_being_asked_for(make_app, upstream):
    app = make_app(TITLE_GENERATION=True)
    client = app.test_client()
    upstream.enqueue(Reply("Part one", finish_reason="length"),
                     Reply("A Title", delay=1.0),
                     Reply(tokens=[f" t{i}" for i in range(8)], token_delay=0.25))
    url = start_chat(client, "Story")
    reply_id = reply_row(app).id
    upstream.wait_for_requests(2)  # the title request is waiting for its answer
    relay = app.extensions["relay"]
    first_generation = relay.get(reply_id)
    client.post(f"{url}/messages/{reply_id}/continue", headers={"HX-Request": "true"})
    continuation = relay.get(reply_id)
    assert continuation is not first_generation and not continuation.finished
    # The first generation's thread ends (title written) without dropping the new one.
    wait_until(lambda: db_title(app) == "A Title")
    assert relay.get(reply_id) is continuation or continuation.finished
    wait_for_generations(app)
    assert reply_row(app).content == "Part one" + "".join(f" t{i}" for i in range(8))
    assert reply_row(app).status == "complete"


def db_title(app) -> str:
    with app.app_context():
        return db.session.scalars(db.select(Conversation.title)).one()
