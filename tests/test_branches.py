"""Regenerate and edit make versions; the switcher moves between them; only the shown branch is replayed."""

from __future__ import annotations

import re

from harness.fake_upstream import Reply
from tests.conftest import messages_of, share_link, start_chat, text_of, wait_for_generations
from tests.test_streaming import read_events
from webapp.conversations import tree
from webapp.conversations.models import Conversation
from webapp.extensions import db

HTMX = {"HX-Request": "true"}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def message_id(app, role: str, content: str) -> int:
    """The id of the (only) message with this role and text."""
    [found] = [m.id for m in messages_of(app) if m.role == role and m.content == content]
    return found


def version_forms(html: str) -> dict[str, str]:
    """The switcher's buttons by accessible name -> the URL their form posts to."""
    return {label: action for action, label in re.findall(
        r'<form method="post" action="([^"]+/show)"[^>]*>\s*'
        r'(?:<input type="hidden" name="csrf_token"[^>]*>\s*)?'
        r'<button type="submit"[^>]* aria-label="([^"]+)"', html)}


def shown(app, html: str) -> list[str]:
    """The texts of the messages a page or fragment shows, in order."""
    contents = {m.id: m.content for m in messages_of(app)}
    return [contents[int(i)] for i in re.findall(r'<article class="msg [^"]*" id="m-(\d+)"', html)]


def test_regenerate_adds_a_version_and_replays_only_the_shown_branch(client, app, upstream):
    url = start_chat(client, "Hi", system_prompt="Be brief.")
    first_reply = message_id(app, "assistant", "You said: Hi")
    upstream.enqueue(Reply("A second answer."))

    response = client.post(f"{url}/messages/{first_reply}/retry")

    assert response.status_code == 303
    assert upstream.sent_messages(1) == upstream.sent_messages(0)
    page = client.get(url).get_data(as_text=True)
    assert shown(app, page) == ["Be brief.", "Hi", "A second answer."]
    assert "2 / 2" in text_of(page)
    assert set(version_forms(page)) == {"Previous version"}
    assert 'aria-label="Next version" disabled' in page

    client.post(f"{url}/messages", data={"content": "And then?"})
    assert upstream.sent_messages(2) == [
        {"role": "system", "content": "Be brief."}, user("Hi"),
        assistant("A second answer."), user("And then?")]


def test_regenerating_an_earlier_reply_branches_there(client, app, upstream):
    url = start_chat(client, "One")
    client.post(f"{url}/messages", data={"content": "Two"})
    page = client.get(url).get_data(as_text=True)
    assert page.count('aria-label="Regenerate"') == 2
    earlier = message_id(app, "assistant", "You said: One")
    upstream.enqueue(Reply("Another take on one."))

    client.post(f"{url}/messages/{earlier}/retry")

    assert upstream.sent_messages(-1) == [user("One")]
    assert shown(app, client.get(url).get_data(as_text=True)) == ["One", "Another take on one."]
    client.post(f"{url}/messages/{earlier}/show")
    assert shown(app, client.get(url).get_data(as_text=True)) == [
        "One", "You said: One", "Two", "You said: Two"]


def test_edit_makes_a_sibling_and_forgets_the_later_turns_upstream(client, app, upstream):
    url = start_chat(client, "First")
    client.post(f"{url}/messages", data={"content": "Second"})
    first = message_id(app, "user", "First")

    response = client.post(f"{url}/messages/{first}/edit", data={"content": "First, again"})

    assert response.status_code == 303
    assert upstream.sent_messages(2) == [user("First, again")]
    edited = message_id(app, "user", "First, again")
    rows = {m.id: m for m in messages_of(app)}
    assert rows[edited].parent_id == rows[first].parent_id is None
    page = client.get(url).get_data(as_text=True)
    assert shown(app, page) == ["First, again", "You said: First, again"]
    assert "2 / 2" in text_of(page)

    client.post(f"{url}/messages", data={"content": "Third"})
    assert upstream.sent_messages(3) == [user("First, again"), assistant("You said: First, again"),
                                         user("Third")]


def test_edit_keeps_the_system_prompt_as_parent(client, app, upstream):
    url = start_chat(client, "Hello", system_prompt="Answer in Italian.")
    hello = message_id(app, "user", "Hello")
    client.post(f"{url}/messages/{hello}/edit", data={"content": "Ciao"})
    assert upstream.sent_messages(1) == [{"role": "system", "content": "Answer in Italian."},
                                         user("Ciao")]


def test_the_switcher_moves_between_versions_without_javascript(client, app, upstream):
    url = start_chat(client, "First")
    client.post(f"{url}/messages", data={"content": "Second"})
    first = message_id(app, "user", "First")
    client.post(f"{url}/messages/{first}/edit", data={"content": "Edited"})

    previous = version_forms(client.get(url).get_data(as_text=True))["Previous version"]
    response = client.post(previous)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"#m-{first}")
    page = client.get(url).get_data(as_text=True)
    assert shown(app, page) == ["First", "You said: First", "Second", "You said: Second"]
    assert "1 / 2" in text_of(page)

    client.post(f"{url}/messages", data={"content": "Back on the first branch"})
    assert upstream.sent_messages(-1) == [
        user("First"), assistant("You said: First"), user("Second"),
        assistant("You said: Second"), user("Back on the first branch")]

    client.post(version_forms(client.get(url).get_data(as_text=True))["Next version"])
    assert shown(app, client.get(url).get_data(as_text=True)) == ["Edited", "You said: Edited"]


def test_the_switcher_swaps_the_message_list_with_htmx(client, app):
    url = start_chat(client, "Hi")
    reply = message_id(app, "assistant", "You said: Hi")
    regenerated = client.post(f"{url}/messages/{reply}/retry", headers=HTMX)
    assert regenerated.status_code == 200
    html = regenerated.get_data(as_text=True)
    assert html.lstrip().startswith('<div class="messages" id="messages">')
    assert 'sse-connect="' in html and "2 / 2" in text_of(html)
    wait_for_generations(app)

    page = client.get(url).get_data(as_text=True)
    response = client.post(version_forms(page)["Previous version"], headers=HTMX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<div class="messages"')
    assert shown(app, html) == ["Hi", "You said: Hi"] and "1 / 2" in text_of(html)
    assert 'hx-target="#messages" hx-swap="outerHTML"' in html


def test_switching_shows_the_newest_branch_under_a_version(client, app):
    url = start_chat(client, "Question")
    question = message_id(app, "user", "Question")
    reply = message_id(app, "assistant", "You said: Question")
    client.post(f"{url}/messages/{reply}/retry")            # a second reply to Question
    client.post(f"{url}/messages", data={"content": "Follow-up"})
    client.post(f"{url}/messages/{question}/edit", data={"content": "Other question"})

    client.post(f"{url}/messages/{question}/show")

    assert shown(app, client.get(url).get_data(as_text=True)) == [
        "Question", "You said: Question", "Follow-up", "You said: Follow-up"]
    second_reply = [m for m in messages_of(app) if m.content == "You said: Question"][1]
    assert client.get(url).get_data(as_text=True).count(f'id="m-{second_reply.id}"') == 1


def test_showing_a_message_already_shown_changes_nothing(client, app):
    url = start_chat(client, "Hi")
    client.post(f"{url}/messages", data={"content": "More"})
    hi = message_id(app, "user", "Hi")
    response = client.post(f"{url}/messages/{hi}/show")
    assert response.status_code == 303
    assert shown(app, client.get(url).get_data(as_text=True)) == ["Hi", "You said: Hi", "More",
                                                                 "You said: More"]


def test_a_blank_edit_is_refused_next_to_its_field_keeping_the_page(client, app, upstream):
    url = start_chat(client, "Hi")
    hi = message_id(app, "user", "Hi")

    page = client.post(f"{url}/messages/{hi}/edit", data={"content": "   "})

    assert page.status_code == 422
    html = page.get_data(as_text=True)
    edit_block = html.split('<details class="msg-edit" open>')[1].split("</details>")[0]
    assert "Type a message before sending." in edit_block
    assert '<div id="form-error"></div>' in html
    htmx = client.post(f"{url}/messages/{hi}/edit", data={"content": ""}, headers=HTMX)
    assert htmx.status_code == 422
    assert htmx.headers["HX-Retarget"] == f"#edit-error-{hi}"
    assert len(upstream.chat_requests) == 1


def test_only_user_messages_of_this_conversation_can_be_edited(client, app):
    url = start_chat(client, "Hi")
    other = start_chat(client, "Elsewhere")
    reply = message_id(app, "assistant", "You said: Hi")
    elsewhere = message_id(app, "user", "Elsewhere")
    assert client.post(f"{url}/messages/{reply}/edit", data={"content": "x"}).status_code == 409
    assert client.post(f"{url}/messages/{elsewhere}/edit",
                       data={"content": "x"}).status_code == 404
    assert client.post(f"{url}/messages/{elsewhere}/show").status_code == 404
    assert client.post(f"{other}/messages/{reply}/retry").status_code == 404


def test_one_generation_at_a_time_and_a_refused_edit_keeps_its_text(client, app, upstream):
    url = start_chat(client, "Hi")
    hi = message_id(app, "user", "Hi")
    first_reply = message_id(app, "assistant", "You said: Hi")
    upstream.enqueue(Reply(tokens=[f"w{i} " for i in range(40)], token_delay=0.05))
    client.post(f"{url}/messages", data={"content": "Long one"}, headers=HTMX)
    active = messages_of(app)[-1]
    assert active.is_active

    edit = client.post(f"{url}/messages/{hi}/edit", data={"content": "My careful edit"})
    switch = client.post(f"{url}/messages/{hi}/show", headers=HTMX)
    regenerate = client.post(f"{url}/messages/{first_reply}/retry")

    assert (edit.status_code, switch.status_code, regenerate.status_code) == (409, 409, 409)
    assert "My careful edit</textarea>" in edit.get_data(as_text=True)
    assert "still being written" in switch.get_data(as_text=True)
    client.post(f"{url}/messages/{active.id}/stop")
    wait_for_generations(app)
    assert len(upstream.chat_requests) == 2


def test_a_share_link_keeps_the_branch_shown_when_it_was_made(client, app):
    url = start_chat(client, "Original question")
    original = message_id(app, "user", "Original question")
    client.post(f"{url}/messages/{original}/edit", data={"content": "Edited question"})
    link = share_link(client, url)

    client.post(f"{url}/messages/{original}/show")

    viewer = app.test_client()
    shared = text_of(viewer.get(link).get_data(as_text=True))
    assert "You said: Edited question" in shared and "You said: Original" not in shared
    assert "Previous version" not in shared and "Regenerate" not in shared
    assert share_link(client, url) == link  # updating the link takes the branch shown now
    shared = text_of(viewer.get(link).get_data(as_text=True))
    assert "You said: Original question" in shared and "Edited" not in shared


def test_a_regenerated_reply_keeps_its_versions_when_its_stream_ends(client, app, upstream):
    url = start_chat(client, "Hi")
    first_reply = message_id(app, "assistant", "You said: Hi")
    upstream.enqueue(Reply("Another answer.", token_delay=0.02))
    fragment = client.post(f"{url}/messages/{first_reply}/retry",
                           headers=HTMX).get_data(as_text=True)
    stream_url = fragment.split('sse-connect="')[1].split('"')[0]

    [(event, done)] = read_events(client, stream_url)[-1:]

    assert event == "done" and "Another answer." in text_of(done)
    assert "2 / 2" in text_of(done) and set(version_forms(done)) == {"Previous version"}


def test_a_whole_tree_is_inserted_with_every_branch(app):
    with app.app_context():
        conversation = Conversation(owner_id="someone", model="m")
        db.session.add(conversation)
        inserted = tree.insert_tree(conversation, None, [
            tree.NewMessage("q", None, "user", "Question"),
            tree.NewMessage("a1", "q", "assistant", "First answer"),
            tree.NewMessage("a2", "q", "assistant", "Second answer"),
            tree.NewMessage("f", "a1", "user", "Follow-up on the first"),
        ])
        tree.move_leaf(conversation, inserted["a2"])
        shown = tree.shown_branch(conversation)
        assert [m.content for m in shown.messages] == ["Question", "Second answer"]
        assert shown.versions[inserted["a2"].id] == tree.Versions(
            2, 2, previous_id=inserted["a1"].id, next_id=None)
        assert inserted["q"].id not in shown.versions

        tree.show_branch_of(conversation, inserted["a1"])
        assert [m.content for m in tree.shown_branch(conversation).messages] == [
            "Question", "First answer", "Follow-up on the first"]
        assert tree.versions_of(inserted["a1"]) == tree.Versions(
            1, 2, previous_id=None, next_id=inserted["a2"].id)


def test_a_whole_tree_keeps_the_order_it_was_given(app):
    """insert_tree writes the tree in one flush; ids still put each child after its
    parent and siblings in the order given, so versions keep their order."""
    with app.app_context():
        conversation = Conversation(owner_id="someone", model="m")
        db.session.add(conversation)
        items = [tree.NewMessage("root", None, "user", "Root")]
        for parent in range(6):  # six replies, each with five follow-ups, depth first
            items.append(tree.NewMessage(f"a{parent}", "root", "assistant", f"A{parent}"))
            items += [tree.NewMessage(f"f{parent}.{child}", f"a{parent}", "user", "F")
                      for child in range(5)]
        inserted = tree.insert_tree(conversation, None, items)
        for item in items[1:]:
            message, parent = inserted[item.key], inserted[item.parent_key]
            assert message.parent_id == parent.id and message.id > parent.id
        for siblings in (items[1::6], *(items[2 + 6 * n:7 + 6 * n] for n in range(6))):
            ids = [inserted[item.key].id for item in siblings]
            assert ids == sorted(ids) and len(set(ids)) == len(siblings)
