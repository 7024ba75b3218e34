"""Text from the upstream with NUL or lone surrogates is saved and shown, otherwise intact.

PostgreSQL refuses NUL in text and neither database can encode half of a UTF-16 pair;
the fake upstream sends both (as JSON escapes) in a reply's content, its reasoning, an
error message and a title, and each must be saved, searchable, shareable and shown.
"""

from __future__ import annotations

from harness.fake_upstream import Reply
from tests.conftest import messages_of, share_link, start_chat, text_of, wait_for_generations
from webapp.conversations.models import Conversation
from webapp.extensions import db
from webapp.upstream.storable import storable

CONTENT = "Pangolin\x00facts: a lone \ud800 half, then more."
REASONING = "Think\x00ing about \udc00 scales."
STORED_CONTENT = "Pangolinfacts: a lone \ufffd half, then more."
STORED_REASONING = "Thinking about \ufffd scales."


def test_storable_removes_nul_and_replaces_lone_surrogates_only():
    assert storable("a\x00b\ud800c\udfffd") == "ab\ufffdc\ufffdd"
    assert storable("pair \U0001F600, tab\t, newline\n") == "pair \U0001F600, tab\t, newline\n"
    assert storable("\ud83d\ude00") == "\U0001F600"  # two halves that make a pair


def test_a_reply_and_its_title_with_unstorable_text_are_saved_and_shown(make_app, upstream):
    app = make_app(TITLE_GENERATION=True)
    client = app.test_client()
    # Paced, so the partial text is flushed while it streams too (STREAM_FLUSH_SECONDS).
    upstream.enqueue(Reply(CONTENT, reasoning=REASONING, token_delay=0.03),
                     Reply("Pangolin\x00 Scales \udc00 Explained"))
    url = start_chat(client, "Tell me about pangolins")
    wait_for_generations(app)

    reply = messages_of(app)[-1]
    assert (reply.status, reply.content, reply.reasoning) == (
        "complete", STORED_CONTENT, STORED_REASONING)
    with app.app_context():
        assert db.session.scalars(db.select(Conversation.title)).one() == \
            "Pangolin Scales \ufffd Explained"
    page = text_of(client.get(url).get_data(as_text=True))
    assert STORED_CONTENT in page and STORED_REASONING in page
    assert "Pangolin Scales \ufffd Explained" in page

    found = client.get("/search", query_string={"q": "Pangolinfacts"}).get_data(as_text=True)
    assert url.split("/c/")[1] in found and "Pangolinfacts" in text_of(found)
    shared = text_of(client.get(share_link(client, url)).get_data(as_text=True))
    assert STORED_CONTENT in shared


def test_an_error_message_with_unstorable_text_still_shows_the_apis_words(client, app,
                                                                          upstream):
    upstream.enqueue(Reply(status=422, error_message="temperature\x00 must be \ud800 <= 2"))
    url = start_chat(client, "Hi")
    reply = messages_of(app)[-1]
    assert reply.status == "error"
    assert reply.error == "The API refused the request (422): temperature must be \ufffd <= 2"
    assert reply.error_detail == "temperature must be \ufffd <= 2"
    assert "temperature must be \ufffd <= 2" in text_of(client.get(url).get_data(as_text=True))


def test_an_error_inside_the_stream_with_unstorable_text_keeps_the_partial_reply(
        client, app, upstream):
    upstream.enqueue(Reply(tokens=["Partial\x00 ", "text \udc00 ", "lost"],
                           stream_error_after=2, error_message="model\x00 crashed \ud800 here"))
    url = start_chat(client, "Hi")
    reply = messages_of(app)[-1]
    assert (reply.status, reply.content) == ("interrupted", "Partial text \ufffd ")
    assert reply.error_detail == "model crashed \ufffd here"
    page = text_of(client.get(url).get_data(as_text=True))
    assert "Partial text \ufffd" in page and "model crashed \ufffd here" in page
