"""The context meter, the warning before a send that would overflow the model's window,
and leaving older messages out of the requests (the exact bodies the upstream gets)."""

from __future__ import annotations

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of
from tests.test_streaming import read_events, send_htmx
from tests.test_costs import meter_text, usage

MODEL = "Llama-3.3-70B-Instruct"
OVERFLOW = "more than the model's 100. Older messages can be left out"


def conversation_near_full(make_app, upstream):
    """A conversation with a system prompt and two turns, its last reply counted at 131
    tokens against a window of 100 (MODEL_CONTEXT_WINDOWS)."""
    app = make_app(MODEL_CONTEXT_WINDOWS={MODEL: 100})
    client = app.test_client()
    upstream.enqueue(Reply("R1."), Reply("R2.", usage=usage(130, 1)))
    url = start_chat(client, "a" * 200, system_prompt="Be brief.")
    client.post(f"{url}/messages", data={"content": "c" * 40, "fit": "send-anyway"})
    return app, client, url


def test_a_send_that_would_overflow_is_held_with_what_was_typed(make_app, upstream):
    app, client, url = conversation_near_full(make_app, upstream)
    page = client.get(url).get_data(as_text=True)
    assert "Context: 131 of 100 tokens (100 %)" in meter_text(page)
    requests = len(upstream.chat_requests)
    response = client.post(f"{url}/messages", data={"content": "d" * 40})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "about 141 tokens, " + OVERFLOW in text_of(page)
    assert ">" + "d" * 40 + "</textarea>" in page
    assert len(upstream.chat_requests) == requests and len(messages_of(app)) == 5

    response = client.post(f"{url}/messages", data={"content": "d" * 40},
                           headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 409 and response.headers["HX-Retarget"] == "#form-error"
    assert 'name="fit" value="leave-out"' in fragment and 'value="send-anyway"' in fragment


def test_leaving_older_messages_out_changes_the_exact_request_and_shows_a_marker(
        make_app, upstream):
    app, client, url = conversation_near_full(make_app, upstream)
    upstream.enqueue(Reply("R3.", usage=usage(40, 1)))
    response = client.post(f"{url}/messages", data={"content": "d" * 40, "fit": "leave-out"})
    assert response.status_code == 303
    assert upstream.sent_messages(-1) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "c" * 40},
        {"role": "assistant", "content": "R2."},
        {"role": "user", "content": "d" * 40}]
    page = client.get(url).get_data(as_text=True)
    assert page.count('class="msg user left-out"') == 1
    assert page.count('class="msg assistant left-out"') == 1
    assert "The messages above are no longer sent to the model" in text_of(page)
    assert "Context: 41 of 100 tokens (41 %)" in meter_text(page)

    upstream.enqueue(Reply("R4."))
    reply = messages_of(app)[-1]
    client.post(f"{url}/messages/{reply.id}/retry")
    assert upstream.sent_messages(-1)[1] == {"role": "user", "content": "c" * 40}

    assert client.post(f"{url}/send-all").status_code == 303
    client.post(f"{url}/messages", data={"content": "e", "fit": "send-anyway"})
    assert [m["content"] for m in upstream.sent_messages(-1)][:3] == [
        "Be brief.", "a" * 200, "R1."]
    assert "no longer sent" not in client.get(url).get_data(as_text=True)


def test_when_nothing_older_fits_only_the_new_message_is_sent(make_app, upstream):
    app, client, url = conversation_near_full(make_app, upstream)
    client.post(f"{url}/messages", data={"content": "d" * 300, "fit": "leave-out"})
    assert upstream.sent_messages(-1) == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "d" * 300}]
    page = client.get(url).get_data(as_text=True)
    assert page.count(' left-out"') == 4 and 'id="left-out-marker"' in page


def test_the_done_event_brings_the_new_meter(make_app, upstream):
    client = make_app(MODEL_CONTEXT_WINDOWS={MODEL: 1000}).test_client()
    url = start_chat(client, "Hi")
    upstream.enqueue(Reply("Two.", usage=usage(300, 20), token_delay=0.02))
    events = read_events(client, send_htmx(client, url, "More"))
    done = events[-1][1]
    assert 'id="context-meter" hx-swap-oob="true"' in done
    assert "Context: 320 of 1,000 tokens (32 %)" in meter_text(done)


def test_with_htmx_leaving_out_returns_the_whole_branch_with_its_marker(make_app, upstream):
    app, client, url = conversation_near_full(make_app, upstream)
    response = client.post(f"{url}/messages", data={"content": "d" * 40, "fit": "leave-out"},
                           headers={"HX-Request": "true"})
    assert response.headers["HX-Retarget"] == "#messages"
    assert response.headers["HX-Reswap"] == "outerHTML"
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div class="messages" id="messages">')
    assert 'id="left-out-marker"' in html and html.count(' left-out"') == 2
