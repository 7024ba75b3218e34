"""What bad input and upstream failures get: a clear message, and nothing typed is lost."""

from __future__ import annotations

import io
import socket

import pytest

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of, wait_for_generations


@pytest.mark.parametrize("content", ["", "   \n\t  "])
def test_an_empty_message_is_refused_and_nothing_is_sent(client, app, upstream, content):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/messages", data={"content": content})
    assert response.status_code == 422
    assert "Type a message before sending." in response.get_data(as_text=True)
    assert len(upstream.chat_requests) == 1
    assert len(messages_of(app)) == 2


def test_an_empty_first_message_is_refused(client, upstream):
    response = client.post("/c", data={"content": " ", "system_prompt": "Kept prompt"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Type a message before sending." in html
    assert "Kept prompt" in html
    assert upstream.chat_requests == []


def test_an_empty_message_with_htmx_gets_an_inline_error(client, upstream):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/messages", data={"content": ""},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#form-error"
    assert "<nav" not in response.get_data(as_text=True)


def test_a_huge_message_is_refused_and_kept_in_the_box(make_app, upstream):
    client = make_app(MAX_MESSAGE_CHARS=50).test_client()
    url = start_chat(client, "Hi")
    draft = "word " * 20
    response = client.post(f"{url}/messages", data={"content": draft})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The message is 100 characters long; the limit is 50." in html
    assert f">{draft}</textarea>" in html
    assert len(upstream.chat_requests) == 1


def test_an_unknown_conversation_is_a_404_page_in_the_layout(client):
    response = client.get("/c/not-a-real-id")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Not found" in html and "New chat" in html and "Traceback" not in html
    assert client.post("/c/not-a-real-id/messages", data={"content": "x"}).status_code == 404


def test_an_unknown_message_is_a_404(client):
    url = start_chat(client, "Hi")
    assert client.post(f"{url}/messages/9999/retry").status_code == 404
    assert client.get(f"{url}/messages/9999/stream").status_code == 404


def test_no_api_key_keeps_the_message_and_names_the_setting(make_app, upstream):
    app = make_app(REGOLO_API_KEY="")
    client = app.test_client()
    url = start_chat(client, "My important question")
    page = text_of(client.get(url).get_data(as_text=True))
    assert "set REGOLO_API_KEY" in page
    assert "My important question" in page
    assert "Retry" in page
    user, reply = messages_of(app)
    assert user.content == "My important question" and reply.status == "error"
    assert upstream.chat_requests == []


@pytest.mark.parametrize("reply, sentence", [
    (Reply(status=401), "The API key was rejected (401)"),
    (Reply(status=403, error_message="forbidden"), "The API key was rejected (403)"),
    (Reply(status=400),
     "This server does not serve model Llama-3.3-70B-Instruct; pick another one."),
    (Reply(status=400, error_message="This model's maximum context length is 8192 tokens"),
     "The conversation is too long for this model"),
    (Reply(status=422, error_message="temperature must be <= 2"),
     "The API refused the request (422): temperature must be <= 2"),
    (Reply(status=404), "The API endpoint was not found (404)"),
    (Reply(status=404, error_message="The model `Llama-3.3-70B-Instruct` does not exist."),
     "This server does not serve model Llama-3.3-70B-Instruct; pick another one."),
])
def test_upstream_errors_become_a_sentence_and_are_not_retried(client, app, upstream,
                                                               reply, sentence):
    upstream.enqueue(reply)
    url = start_chat(client, "Hi")
    page = client.get(url).get_data(as_text=True)
    assert sentence in text_of(page)
    assert "Details from the API" in page
    assert len(upstream.chat_requests) == 1
    assert messages_of(app)[1].status == "error"


def test_the_long_401_text_is_kept_out_of_the_sentence(client, app, upstream):
    upstream.enqueue(Reply(status=401))
    url = start_chat(client, "Hi")
    reply = messages_of(app)[1]
    assert reply.error == "The API key was rejected (401). Check REGOLO_API_KEY."
    assert "Key Hash" in reply.error_detail


def test_retry_resends_the_same_history(client, app, upstream):
    upstream.enqueue(Reply(status=401))
    url = start_chat(client, "Hi", system_prompt="Be kind.")
    failed = messages_of(app)[-1]
    response = client.post(f"{url}/messages/{failed.id}/retry")
    assert response.status_code == 303
    assert upstream.sent_messages(1) == upstream.sent_messages(0)
    page = text_of(client.get(url).get_data(as_text=True))
    assert "You said: Hi" in page and "rejected" not in page


def test_retry_with_htmx_returns_the_new_reply(client, app, upstream):
    upstream.enqueue(Reply(status=401))
    url = start_chat(client, "Hi")
    failed = messages_of(app)[-1]
    response = client.post(f"{url}/messages/{failed.id}/retry", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert 'sse-connect="' in html and f'id="m-{failed.id}"' not in html


def test_rate_limits_are_retried_then_reported(client, app, upstream):
    upstream.enqueue(*[Reply(status=429, retry_after="0") for _ in range(3)])
    url = start_chat(client, "Hi")
    assert len(upstream.chat_requests) == 3
    assert "rate limiting" in text_of(client.get(url).get_data(as_text=True))


def test_a_server_error_before_the_first_token_is_retried(client, app, upstream):
    upstream.enqueue(Reply(status=503))
    url = start_chat(client, "Hi")
    assert len(upstream.chat_requests) == 2
    assert "You said: Hi" in client.get(url).get_data(as_text=True)


def test_an_unreachable_upstream_says_so(make_app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(REGOLO_BASE_URL=f"http://127.0.0.1:{port}/v1", REGOLO_RETRY_BUDGET=0)
    client = app.test_client()
    url = start_chat(client, "Hi")
    page = text_of(client.get(url).get_data(as_text=True))
    assert "The API could not be reached; try again in a moment." in page
    assert f":{port}" not in page  # the address is for the server's log only


def test_a_slow_upstream_times_out(make_app, upstream):
    app = make_app(REGOLO_READ_TIMEOUT=0.3)
    upstream.enqueue(Reply(delay=1.5))
    client = app.test_client()
    url = start_chat(client, "Hi")
    assert "did not answer in time" in text_of(client.get(url).get_data(as_text=True))


def test_a_body_that_is_not_an_event_stream_is_reported(client, app, upstream):
    upstream.enqueue(Reply(raw_body=b"<html>gateway</html>"))
    url = start_chat(client, "Hi")
    assert messages_of(app)[1].status == "error"
    assert "not understood" in text_of(client.get(url).get_data(as_text=True))


def test_hostile_model_output_is_never_live_markup(client, upstream):
    upstream.enqueue(Reply('<script>alert(1)</script> <img src=x onerror=alert(1)> '
                           '[click](javascript:alert(1)) "quoted"'))
    url = start_chat(client, "<script>alert('user')</script>")
    page = client.get(url).get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(&#39;user&#39;)&lt;/script&gt;" in page or \
           "&lt;script&gt;alert('user')&lt;/script&gt;" in page


def test_hostile_title_is_escaped_in_the_sidebar_and_title(client):
    url = start_chat(client, "Hi")
    client.post(f"{url}/rename", data={"title": '"><script>alert(1)</script>'})
    page = client.get(url).get_data(as_text=True)
    assert "<script>alert(1)" not in page


def test_a_body_over_the_size_cap_gets_a_sentence_not_a_crash(make_app, upstream):
    client = make_app(MAX_CONTENT_LENGTH=4096).test_client()
    url = start_chat(client)
    big = {"content": "x" * 5000}
    for response in (client.post(f"{url}/messages", data=big),
                     client.post("/c", data=big)):
        assert response.status_code == 413
        assert "more than 4 KB in all" in response.get_data(as_text=True)
    response = client.post(f"{url}/messages", data=big, headers={"HX-Request": "true"})
    assert response.status_code == 413 and response.headers["HX-Retarget"] == "#form-error"
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("body", [
    b"content=%ff%fe%c3%28hi&model=%00&system_prompt=%01%02",
    b"content=a%00b%1bc%7f",
    b"content=%e2%80%ae%00&model=x%00y",
])
def test_invalid_utf8_and_control_characters_are_cleaned(client, app, body):
    response = client.post("/c", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (303, 422)
    for message in messages_of(app):
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in message.content)


@pytest.mark.parametrize("path", ["/c/%00abc", "/c/" + "x" * 200, "/c/%ff%fe",
                                  "/c/a%00/messages/1/stream"])
def test_a_malformed_conversation_id_is_a_404(client, path):
    assert client.get(path).status_code == 404


NOT_AN_IMAGE = b"plain text, not a picture"


def test_cheap_checks_come_before_images_are_decoded(client, app, upstream):
    """A message that is too long, settings out of range, or a reply still being written
    are refused as such: the attached file is never opened (it would be refused too)."""
    def post(path, **form):
        form["images"] = (io.BytesIO(NOT_AN_IMAGE), "photo.png")
        response = client.post(path, data=form, content_type="multipart/form-data",
                               headers={"HX-Request": "true"})
        return response.status_code, text_of(response.get_data(as_text=True))

    status, text = post("/c", content="x" * (app.config["MAX_MESSAGE_CHARS"] + 1))
    assert status == 422 and "The message is" in text
    status, text = post("/c", content="Hi", temperature="hot")
    assert status == 422 and "photo.png" not in text and "Temperature" in text
    upstream.enqueue(Reply(tokens=["slow "] * 20, token_delay=0.1))
    url = client.post("/c", data={"content": "Hi"},
                      headers={"HX-Request": "true"}).headers["HX-Redirect"]
    status, text = post(f"{url}/messages", content="Again")
    assert status == 409 and "still being written" in text
    wait_for_generations(app)
    status, text = post(f"{url}/messages", content="Again")
    assert status == 422 and "photo.png" in text  # the same file, now looked at
