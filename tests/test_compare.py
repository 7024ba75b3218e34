"""Comparing models side by side: each model keeps its own thread (the request bodies are
asserted exactly), errors stay in their column, a column is picked or regenerated, blind
picks are counted, and the stored tree is an ordinary one for share, export and import."""

from __future__ import annotations

import json
import re

import pytest

from harness.fake_upstream import Reply
from tests.conftest import messages_of, share_link, text_of, wait_for_generations
from tests.test_streaming import read_events
from tests.test_documents import NOTES, TABLE, block
from tests.test_documents import upload as document_upload
from tests.test_import import upload
from webapp.conversations import comparisons, tree
from webapp.conversations.models import Comparison, Conversation, Message
from webapp.conversations.pricing import parse_prices
from webapp.extensions import db

MODELS = ["m-a", "m-b", "m-c"]
STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def by_model(body: dict) -> Reply:
    """Each model says who it is and what it was told last."""
    said = body["messages"][-1]["content"]
    return Reply(f"{body['model']} on {said}")


def compare(client, content: str, models=MODELS, **fields) -> str:
    """Start a comparison from the new-chat form without script (it waits for every
    reply); the conversation's URL."""
    response = client.post("/c", data={"content": content, "models": models, **fields})
    assert response.status_code == 303, text_of(response.get_data(as_text=True))[:500]
    assert response.headers["Location"].endswith("#columns")
    return response.headers["Location"].split("#")[0]


def bodies(upstream, start: int = 0) -> dict[str, dict]:
    """The chat request bodies from the `start`-th on, by model (one each)."""
    found = {request.json["model"]: request.json for request in upstream.chat_requests[start:]}
    assert len(found) == len(upstream.chat_requests[start:])
    return found


def columns_of(page: str) -> list[str]:
    """The visible text of each column of a conversation page."""
    return [text_of(part) for part in
            re.findall(r'<section class="column".*?</section>', page, re.S)]


def thread(model: str, *turns: str) -> list[dict]:
    """The messages a model is replayed: each turn, then its own answer to it (by_model)."""
    messages = []
    for turn in turns:
        messages += [{"role": "user", "content": turn},
                     {"role": "assistant", "content": f"{model} on {turn}"}]
    return messages[:-1]


def test_each_model_is_replayed_only_its_own_thread(client, app, upstream):
    upstream.default_reply = by_model
    url = compare(client, "One", system_prompt="Be brief")
    system = [{"role": "system", "content": "Be brief"}]
    assert bodies(upstream) == {model: {"model": model, "messages": system + thread(
        model, "One"), **STREAM} for model in MODELS}

    client.post(f"{url}/compare/messages", data={"content": "Two"})
    assert bodies(upstream, 3) == {model: {"model": model, "messages": system + thread(
        model, "One", "Two"), **STREAM} for model in MODELS}

    client.post(f"{url}/compare/messages", data={"content": "Three"})
    assert bodies(upstream, 6) == {model: {"model": model, "messages": system + thread(
        model, "One", "Two", "Three"), **STREAM} for model in MODELS}

    page = text_of(client.get(url).get_data(as_text=True))
    for model in MODELS:
        assert f"{model} on Three" in page and f"{model} on One" in page


def test_a_comparison_started_in_a_conversation_goes_on_from_its_branch(client, app,
                                                                       upstream):
    upstream.default_reply = by_model
    url = client.post("/c", data={"content": "Hi", "model": "m-a"}).headers["Location"]
    url = url.split("#")[0]
    response = client.post(f"{url}/compare", data={"models": ["m-a", "m-b"], "blind": ""})
    assert response.status_code == 303
    assert "Your next message goes to each" in text_of(client.get(url).get_data(as_text=True))
    client.post(f"{url}/compare/messages", data={"content": "Next"})
    earlier = [{"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "m-a on Hi"}]
    assert bodies(upstream, 1) == {model: {"model": model, "messages": earlier + [
        {"role": "user", "content": "Next"}], **STREAM} for model in ["m-a", "m-b"]}


def test_one_models_error_stays_in_its_column_while_the_others_finish(client, app,
                                                                      upstream):
    faults = {"m-a": Reply(status=401), "m-b": Reply(status=429, retry_after="600"),
              "m-c": Reply("Half of it and", end_early_after=3)}
    upstream.default_reply = lambda body: faults.get(body["model"], by_model(body))
    upstream.unknown_model_status = 400
    upstream.models = [*MODELS, "m-ok"]
    url = compare(client, "Go", ["m-a", "m-b", "m-c"])
    page = client.get(url).get_data(as_text=True)
    columns = dict(zip(MODELS, columns_of(page)))
    assert "The API key was rejected" in columns["m-a"]
    assert "try again in about 10 minutes" in columns["m-b"]
    assert "Half of it" in columns["m-c"] and "cut" in columns["m-c"].lower()
    assert [m.status for m in messages_of(app) if m.role == "assistant"] == \
        ["error", "error", "interrupted"]

    client.post(f"{url}/compare/end")
    url = compare(client, "Again", ["m-ok", "not-served"])
    page = client.get(url).get_data(as_text=True)
    ok, refused = columns_of(page)
    assert "m-ok on Again" in ok
    assert "does not serve model not-served" in refused


def test_a_column_regenerates_on_its_own_branch(client, app, upstream):
    upstream.default_reply = by_model
    url = compare(client, "One", ["m-a", "m-b"])
    client.post(f"{url}/compare/messages", data={"content": "Two"})
    upstream.enqueue(Reply("B again"))
    assert client.post(f"{url}/compare/1/retry").status_code == 303
    wait_for_generations(app)
    assert upstream.chat_requests[-1].json == {"model": "m-b", "messages": thread(
        "m-b", "One", "Two"), **STREAM}
    page = client.get(url).get_data(as_text=True)
    a, b = columns_of(page)
    assert "B again" in b and "m-b on Two" not in b and "m-a on Two" in a
    upstream.enqueue(Reply("A continues"))
    client.post(f"{url}/compare/messages", data={"content": "Three"})
    assert bodies(upstream, 5)["m-b"]["messages"][-3:] == [
        {"role": "user", "content": "Two"}, {"role": "assistant", "content": "B again"},
        {"role": "user", "content": "Three"}]


def test_continue_with_one_makes_its_thread_the_shown_branch(client, app, upstream):
    upstream.default_reply = by_model
    url = compare(client, "One")
    client.post(f"{url}/compare/messages", data={"content": "Two"})
    assert client.post(f"{url}/compare/1/pick").status_code == 303

    page = client.get(url).get_data(as_text=True)
    assert 'class="column"' not in page and "m-b on Two" in text_of(page)
    assert "m-a on Two" not in text_of(page)
    assert re.search(r'<span class="version-count">2 / 3</span>', page)  # at the fork
    with app.app_context():
        conversation = db.session.scalar(db.select(Conversation))
        assert conversation.model == "m-b"
        assert [m.model for m in tree.shown_branch(conversation).messages
                if m.role == "assistant"] == ["m-b", "m-b"]
    client.post(f"{url}/messages", data={"content": "Three"})
    assert upstream.chat_requests[-1].json == {"model": "m-b", "messages": thread(
        "m-b", "One", "Two", "Three"), **STREAM}

    first_a = next(m for m in messages_of(app) if m.content == "m-a on One")
    client.post(f"{url}/messages/{first_a.id}/show")  # the versions switcher
    assert "m-a on Two" in text_of(client.get(url).get_data(as_text=True))


def test_blind_columns_are_lettered_until_the_pick_which_counts_as_a_win(client, app,
                                                                        upstream):
    upstream.default_reply = lambda body: Reply("Same answer")
    url = compare(client, "Which?", ["m-a", "m-b"], blind="1")
    page = client.get(url).get_data(as_text=True)
    assert "m-a" not in page and "m-b" not in page  # not in the header either
    assert "A is better" in text_of(page) and "B is better" in text_of(page)
    client.post(f"{url}/compare/1/pick")
    url = compare(client, "Again?", ["m-a", "m-b"], blind="1")
    client.post(f"{url}/compare/1/pick")
    url = compare(client, "Sighted", ["m-a", "m-b"])
    client.post(f"{url}/compare/0/pick")  # not blind: not counted

    wins = text_of(client.get("/compare/wins").get_data(as_text=True))
    assert "m-b 2 2" in wins and "m-a 0 2" in wins
    other = app.test_client()
    assert "No blind comparison decided yet" in text_of(
        other.get("/compare/wins").get_data(as_text=True))
    with app.app_context():
        assert [c.picked_position for c in db.session.scalars(
            db.select(Comparison).order_by(Comparison.id))] == [1, 1, 0]


def test_a_blind_columns_error_does_not_name_its_model_before_the_pick(client, app,
                                                                      upstream):
    upstream.unknown_model_status = 400  # LiteLLM's refusal names the model it refuses
    upstream.models = ["m-a"]
    upstream.default_reply = by_model
    url = compare(client, "Which?", ["m-a", "not-served"], blind="1")
    page = client.get(url).get_data(as_text=True)
    _, refused = columns_of(page)
    assert "does not serve model B" in refused
    assert "not-served" not in page and "m-a" not in page.replace("m-a on Which?", "")
    assert "Details from the API" not in refused  # the API's own text may name it

def test_the_columns_show_their_figures(make_app, upstream):
    app = make_app(MODEL_PRICES=parse_prices("m-a=1000/2000 EUR"))
    client = app.test_client()
    upstream.default_reply = lambda body: Reply(
        "Figures", usage={"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})
    url = compare(client, "Go", ["m-a", "m-b"])
    a, b = columns_of(client.get(url).get_data(as_text=True))
    assert re.search(r"\d+\.\d s to first token · \d+ tokens/s · 20 tokens · 0\.0500 EUR", a)
    assert "20 tokens" in b and "EUR" not in b
    with app.app_context():
        reply = db.session.scalar(db.select(Message).where(Message.model == "m-a"))
        assert reply.first_token_seconds >= 0 and reply.writing_seconds >= 0


@pytest.mark.parametrize("models, sentence", [
    (["m-a"], "Pick 2 or 3 different models to compare (1 picked)."),
    (["m-a", "m-b", "m-c", "m-d"], "Pick 2 or 3 different models to compare (4 picked)."),
    (["m-a", "m-a"], "(1 picked)")])
def test_too_few_or_too_many_models_are_refused_keeping_the_text(client, app, models,
                                                                 sentence):
    response = client.post("/c", data={"content": "Kept text", "models": models})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and sentence in text_of(page)
    assert "Kept text</textarea>" in page and messages_of(app) == []


def test_a_link_opens_the_new_chat_page_with_the_models_chosen(client):
    page = client.get("/new?models=m-a,m-b&blind=1").get_data(as_text=True)
    checked = re.findall(r'name="models" value="([^"]+)" checked', page)
    assert checked == ["m-a", "m-b"]
    assert re.search(r'name="blind" value="1" checked', page)
    assert "Comparing m-a, m-b (blind): your message goes to each." in text_of(page)
    assert 'id="model"' not in page  # no single-model picker to be ignored
    assert 'id="model"' in client.get("/new").get_data(as_text=True)
    hostile = client.get("/new?models=<b>x</b>,m-b").get_data(as_text=True)
    assert "<b>x</b>" not in hostile and "&lt;b&gt;x&lt;/b&gt;" in hostile


def test_stop_stops_every_column(client, app, upstream):
    upstream.default_reply = lambda body: Reply(tokens=[f"w{i} " for i in range(200)],
                                                token_delay=0.02)
    response = client.post("/c", data={"content": "Count", "models": ["m-a", "m-b"]},
                           headers={"HX-Request": "true"})
    url = response.headers["HX-Redirect"]
    upstream.wait_for_requests(2)
    page = client.get(url).get_data(as_text=True)
    assert 'id="stop-compare"' in page and 'form="stop-compare"' in page
    assert client.post(f"{url}/compare/stop").status_code == 303
    wait_for_generations(app)
    assert [m.status for m in messages_of(app) if m.role == "assistant"] == \
        ["stopped", "stopped"]


def test_share_export_search_and_import_see_an_ordinary_tree(client, app, upstream):
    upstream.default_reply = by_model
    url = compare(client, "Tree", ["m-a", "m-b"])
    client.post(f"{url}/compare/messages", data={"content": "Grows"})

    exported = json.loads(client.get(f"{url}/export.json").data)
    replies = [(m["model"], m["content"]) for m in exported["messages"]
               if m["role"] == "assistant"]
    assert sorted(replies) == sorted([("m-a", "m-a on Tree"), ("m-b", "m-b on Tree"),
                                      ("m-a", "m-a on Grows"), ("m-b", "m-b on Grows")])
    shared = text_of(client.get(share_link(client, url)).get_data(as_text=True))
    assert "m-a on Grows" in shared and "m-b on Grows" not in shared  # the first column
    found = client.get("/search?q=Grows").get_data(as_text=True)
    b_reply = next(m.id for m in messages_of(app) if m.content == "m-b on Grows")
    assert f"/messages/{b_reply}" in found  # a column's reply is found and opened

    report = upload(client, "Tree.json", client.get(f"{url}/export.json").data)
    [link] = re.findall(r'href="/c/([^"]+)"', report.get_data(as_text=True)
                        .split("Imported</h3>")[1])
    copy = json.loads(client.get(f"/c/{link}/export.json").data)
    assert [(m["role"], m["content"], m["parent"]) for m in copy["messages"]] == \
        [(m["role"], m["content"], m["parent"]) for m in exported["messages"]]


def test_columns_stream_side_by_side_and_end_as_their_column(client, app, upstream):
    slow = {model: Reply(tokens=[f"{model}-{i} " for i in range(8)], token_delay=0.02)
            for model in ("m-a", "m-b")}
    upstream.default_reply = lambda body: slow[body["model"]]
    url = compare(client, "Warm up", ["m-a", "m-b"], blind="1")
    response = client.post(f"{url}/compare/messages", data={"content": "Go"},
                           headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    streams = re.findall(r'sse-connect="([^"]+)"', fragment)
    assert len(streams) == 2 and 'id="stop-compare"' in fragment
    done = read_events(client, streams[1])[-1]
    assert done[0] == "done"
    assert "m-b-7" in text_of(done[1]) and "m-b" not in text_of(done[1]).replace("m-b-", "")
    assert f"{url}/compare/1/retry" in done[1] and "/retry" not in done[1].replace(
        f"{url}/compare/1/retry", "")  # the column's own Regenerate, no versions switcher
    assert "version-count" not in done[1] and re.search(r'msg-role">\s*B\s*<', done[1])


def test_a_plain_send_from_a_page_opened_before_the_comparison_is_refused(client, app):
    url = client.post("/c", data={"content": "Hi"}).headers["Location"].split("#")[0]
    client.post(f"{url}/compare", data={"models": ["m-a", "m-b"]})
    response = client.post(f"{url}/messages", data={"content": "Typed earlier"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and "comparing models now" in text_of(page)
    assert "Typed earlier</textarea>" in page
    assert "Typed earlier" not in [m.content for m in messages_of(app)]



def test_message_actions_from_a_page_opened_before_the_comparison_are_refused(client, app,
                                                                              upstream):
    upstream.default_reply = by_model
    url = compare(client, "One", ["m-a", "m-b"])
    client.post(f"{url}/compare/messages", data={"content": "Two"})
    sent = len(upstream.chat_requests)
    one = next(m for m in messages_of(app) if m.content == "One")
    b_two = next(m for m in messages_of(app) if m.content == "m-b on Two")
    regenerate = client.post(f"{url}/messages/{b_two.id}/retry")  # m-a would get B's thread
    edit = client.post(f"{url}/messages/{one.id}/edit", data={"content": "Typed earlier"})
    b_two_continued = client.post(f"{url}/messages/{b_two.id}/continue")
    for response in (regenerate, edit, b_two_continued):
        assert response.status_code == 409
        assert "comparing models now" in text_of(response.get_data(as_text=True))
    assert "Typed earlier</textarea>" in edit.get_data(as_text=True)
    wait_for_generations(app)
    assert len(upstream.chat_requests) == sent
    assert len(messages_of(app)) == 7

def test_another_worker_follows_and_stops_every_column(make_app, upstream):
    app, other = make_app(), make_app()  # one database, two processes' memories
    client, other_client = app.test_client(), other.test_client()
    upstream.default_reply = lambda body: Reply(
        tokens=[f"{body['model']}-{i} " for i in range(200)], token_delay=0.02)
    response = client.post("/c", data={"content": "Count", "models": ["m-a", "m-b"]},
                           headers={"HX-Request": "true"})
    other_client.set_cookie("session", client.get_cookie("session").value)
    url = response.headers["HX-Redirect"]
    streams = re.findall(r'sse-connect="([^"]+)"', other_client.get(url).get_data(as_text=True))
    assert len(streams) == 2
    first = read_events(other_client, streams[1], limit=3)
    assert "m-b-" in text_of(first[-1][1]) and "m-a-" not in text_of(first[-1][1])
    assert other_client.post(f"{url}/compare/stop").status_code == 303
    done = read_events(other_client, streams[0])[-1]
    assert done[0] == "done" and 'data-status="stopped"' in done[1]
    wait_for_generations(app)
    assert [m.status for m in messages_of(app) if m.role == "assistant"] == \
        ["stopped", "stopped"]


def test_documents_go_to_every_column_and_are_replayed_in_each_thread(client, upstream):
    upstream.default_reply = lambda body: Reply(f"{body['model']} read it")
    url = compare(client, "Sum it up", models=["m-a", "m-b"],
                  documents=[document_upload(NOTES, "notes.md")])
    first = block("notes.md", NOTES) + "\n\nSum it up"
    assert {model: body["messages"] for model, body in bodies(upstream).items()} == {
        model: [{"role": "user", "content": first}] for model in ("m-a", "m-b")}

    client.post(f"{url}/compare/messages",
                data={"content": "And this?", "documents": [document_upload(TABLE, "cities.csv")]})
    assert {model: body["messages"] for model, body in bodies(upstream, 2).items()} == {
        model: [{"role": "user", "content": first},
                {"role": "assistant", "content": f"{model} read it"},
                {"role": "user", "content": block("cities.csv", TABLE) + "\n\nAnd this?"}]
        for model in ("m-a", "m-b")}


def test_a_compared_send_that_loses_the_race_to_a_pick_adds_nothing(client, app, upstream):
    """A send that found the comparison open, then saves after a pick (another tab)
    ended it, is refused whole: the picked branch stays the shown one."""
    upstream.default_reply = by_model
    url = compare(client, "One", models=["m-a", "m-b"])
    service = app.extensions["generation"]
    with app.app_context():
        conversation = db.session.scalar(db.select(Conversation))
        conversation_id = conversation.id
        comparison = comparisons.open_comparison(conversation)
        assert comparison is not None
        with service.sessions() as other_tab:  # the pick commits in between
            picked = other_tab.get(Conversation, conversation.id)
            comparisons.pick(picked, other_tab.get(Comparison, comparison.id),
                             other_tab.get(Comparison, comparison.id).columns[1])
            other_tab.commit()
            shown = picked.current_leaf_id
        with pytest.raises(comparisons.Ended):
            service.start_compared_turn(conversation, comparison, "Too late")
        db.session.rollback()
    assert "Too late" not in [m.content for m in messages_of(app)]
    with app.app_context():
        assert db.session.get(Conversation, conversation_id).current_leaf_id == shown
    assert len(upstream.chat_requests) == 2


def test_a_follow_up_that_would_not_fit_one_columns_window_names_that_column(
        make_app, upstream):
    """Each column has its own model's window and its own thread: the check before a
    compared send measures every column, not just the first."""
    app = make_app(MODEL_CONTEXT_WINDOWS={"m-a": 100_000, "m-b": 100})
    client = app.test_client()
    upstream.default_reply = by_model
    url = compare(client, "One", models=["m-a", "m-b"])
    sent = len(upstream.chat_requests)
    response = client.post(f"{url}/compare/messages", data={"content": "word " * 200})
    page = text_of(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "would not fit m-b's context window" in page and "word word" in page
    assert len(upstream.chat_requests) == sent
    assert client.post(f"{url}/compare/messages",
                       data={"content": "Short"}).status_code == 303
