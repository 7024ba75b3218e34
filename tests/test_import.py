"""Import: ChatGPT, Open WebUI, LibreChat and this app's own JSON exports, every branch kept.

The samples under tests/import_samples are real exports (see its README). Each test
uploads through the plain form and reads back the trees the import stored.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image as PILImage

from harness.fake_upstream import Reply
from tests.conftest import messages_of, share_link, start_chat, text_of, wait_until
from webapp.conversations import tree
from webapp.conversations.models import Attachment, Conversation, Message
from webapp.extensions import db

SAMPLES = Path(__file__).parent / "import_samples"
JOKE = "Sure, here's one for you:\n\nWhy don't scientists trust atoms?"


def upload(client, name: str, data: bytes | None = None, **fields):
    """Post a file to the import form; the response, or once the import has ended in the
    background, its page."""
    body = data if data is not None else (SAMPLES / name).read_bytes()
    response = client.post("/import", data={"export": (io.BytesIO(body), name), **fields},
                           content_type="multipart/form-data")
    if response.status_code != 303:
        return response
    job_page = response.headers["Location"]
    wait_until(lambda: "Import another file" in client.get(job_page).get_data(as_text=True),
               timeout=30)
    return client.get(job_page)


def imported(client, name: str, data: bytes | None = None) -> str:
    """Upload and return the report's visible text (the import must succeed)."""
    response = upload(client, name, data)
    assert response.status_code == 200, text_of(response.get_data(as_text=True))[:2000]
    return text_of(response.get_data(as_text=True))


def conversation(app, title: str) -> dict:
    """The stored conversation with this title: its messages, shown branch and versions."""
    with app.app_context():
        found = db.session.scalar(db.select(Conversation).where(Conversation.title == title))
        assert found is not None, f"no conversation {title!r}"
        branch = tree.shown_branch(found)
        messages = db.session.scalars(db.select(Message).where(
            Message.conversation_id == found.id).order_by(Message.id)).all()
        children: dict = {}
        for message in messages:
            children.setdefault(message.parent_id, []).append(message.content)
        return {"conversation": found, "messages": messages, "children": children,
                "shown": [(m.role, m.content) for m in branch.turns],
                "shown_models": [m.model for m in branch.turns],
                "shown_reasoning": [m.reasoning for m in branch.turns],
                "system_prompt": branch.system_prompt,
                "versions": {m.content: (v.number, v.count) for m in branch.messages
                             if (v := branch.versions.get(m.id))},
                "branch_points": sorted(len(kids) for kids in children.values()
                                        if len(kids) > 1)}


def test_chatgpt_tree_keeps_every_branch_and_shows_the_current_node(client, app):
    report = imported(client, "chatgpt-tree.json")
    assert "1 conversation imported" in report and "Assist user with summary" in report

    found = conversation(app, "Assist user with summary")
    assert len(found["messages"]) == 11  # the hidden empty system node is not a message
    assert found["branch_points"] == [2, 2]
    assert [text[:30] for _, text in found["shown"]] == [
        "hi there", "Hello! How can I assist you to", "hi again",
        "Hey! Welcome back. What's on y", "tell me a joke", JOKE[:30]]
    assert [role for role, _ in found["shown"]] == ["user", "assistant"] * 3
    assert set(found["shown_models"][1::2]) == {"text-davinci-002-render-sha"}
    assert found["shown_models"][0::2] == [None] * 3
    assert found["versions"]["hi again"] == (2, 2)
    assert [v for text, v in found["versions"].items() if text.startswith(JOKE)] == [(2, 2)]
    # The branch not shown ends in the story that was still being written.
    story = next(m for m in found["messages"] if m.content.startswith("Sure! Here's a short"))
    assert story.status == "interrupted" and story.parent_id is not None
    assert found["conversation"].updated_at.year == 2024


def test_chatgpt_tool_calls_are_not_messages_and_code_stays_in_the_reply(client, app):
    imported(client, "chatgpt-export.json")

    browsing = conversation(app, "Conversation 1. Web Search")
    assert [role for role, _ in browsing["shown"]] == ["user", "assistant"] * 3
    assert len(browsing["messages"]) == 6 and browsing["branch_points"] == []
    assert not any("search(" in text or "mclick(" in text for _, text in browsing["shown"])
    assert set(browsing["shown_models"][1::2]) == {"gpt-4"}
    assert browsing["shown"][-1][1].startswith("The fuel consumption figures for the 2014")

    code = conversation(app, "Conversation 2")
    assert len(code["messages"]) == 4
    assert "```" in code["shown"][-1][1] and "class" in code["shown"][-1][1]


def test_chatgpt_modern_export_custom_instructions_models_and_a_bad_entry(client, app):
    report = imported(client, "chatgpt-modern-export.json")
    assert "2 conversations imported, 1 skipped" in report
    assert "Corrupted entry: It has no messages" in report

    deploy = conversation(app, "Deploying the staging cluster")
    assert deploy["system_prompt"] == "The user is an SRE.\n\nAnswer concisely."
    assert deploy["shown"] == [
        ("user", "How do I roll back the deploy?"), ("assistant", "Run `helm rollback staging`."),
        ("user", "And if that fails?"), ("assistant", "Restore from the last known-good chart.")]
    assert deploy["shown_models"] == [None, "gpt-5-thinking", None, "o4-mini"]
    # The custom instructions are the system prompt, never a user message.
    assert not any("SRE" in m.content for m in deploy["messages"] if m.role == "user")
    pasta = conversation(app, "Weeknight pasta")
    assert pasta["shown_models"] == [None, "gpt-5"]
    # The sidebar orders imported chats by their own times, the newest first.
    assert deploy["conversation"].updated_at == datetime(2025, 8, 24, 1, 53, 20, 654321)
    assert pasta["conversation"].updated_at == datetime(2025, 8, 24, 2, 5)
    sidebar = client.get("/").get_data(as_text=True)
    assert sidebar.index("Weeknight pasta") < sidebar.index("Deploying the staging cluster")


def test_chatgpt_current_node_outside_the_mapping_shows_the_newest_branch(client, app):
    imported(client, "chatgpt-citations.json")
    found = conversation(app, "Citation Convo")
    assert [role for role, _ in found["shown"]] == ["assistant"]
    assert found["shown"][0][1].startswith("Signal Sciences is a web application security")


def test_open_webui_reasoning_tool_calls_and_models(client, app):
    report = imported(client, "openwebui-export.json")
    assert "3 conversations imported" in report

    reasoning = conversation(app, "Chat with reasoning")
    assert reasoning["shown"] == [("user", "What is 15 * 17?"), ("assistant", "255")]
    assert reasoning["shown_reasoning"][1] == "Let me break this down..."
    assert reasoning["shown_models"][1] == "deepseek-r1"

    tool = conversation(app, "Chat with tool call")
    assert tool["shown"][1][1] == ('```\n"Paris: 18C, rain"\n```\n\n'
                                   "The weather in Paris is 18C with rain.")
    assert conversation(app, "Simple linear chat")["shown_models"] == [None, "llama3.1:latest"]


def test_librechat_nested_tree_with_its_system_prompt(client, app):
    imported(client, "librechat-tree.json")
    found = conversation(app, "Troubleshooting Python Virtual Environment Activation Issue")
    assert found["system_prompt"] == "You are an expert software engineer."
    users = [m.content for m in found["messages"] if m.role == "user"]
    assert "thanks" in users and "lol" in users
    assert found["branch_points"] == [2, 2]
    assert found["shown"][0][0] == "user" and found["shown"][-1][0] == "assistant"
    assert set(found["shown_models"][1::2]) == {"gpt-4-turbo"}

    imported(client, "librechat-export.json")
    linear = conversation(app, "Conversation 1. Web Search")
    assert [role for role, _ in linear["shown"]] == ["user", "assistant"] * 3
    assert linear["branch_points"] == []


def test_importing_the_same_export_twice_adds_nothing(client, app):
    imported(client, "openwebui-export.json")
    again = imported(client, "openwebui-export.json")
    assert "0 conversations imported, 3 already here" in again
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Conversation.id))) == 3


def test_the_same_export_imported_twice_at_once_is_added_once(client, app):
    body = (SAMPLES / "chatgpt-export.json").read_bytes()
    pages = [client.post("/import", data={"export": (io.BytesIO(body), "c.json")}
                         ).headers["Location"] for _ in range(3)]
    for page in pages:
        wait_until(lambda: "Import another file" in client.get(page).get_data(as_text=True),
                   timeout=30)
    reports = [text_of(client.get(page).get_data(as_text=True)) for page in pages]
    assert not any("skipped" in report for report in reports), reports
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Conversation.id))) == 2


def png(color: str = "red") -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (8, 6), color).save(out, "PNG")
    return out.getvalue()


def chatgpt_conversation(conversation_id: str, title: str, parts: list) -> dict:
    """A minimal ChatGPT conversation: one user message of `parts`, one reply."""
    def node(key, parent, role, content, children):
        return {"id": key, "parent": parent, "children": children, "message": {
            "id": key, "author": {"role": role}, "create_time": 1756000001.0,
            "content": content, "status": "finished_successfully", "recipient": "all",
            "metadata": {}}}
    return {"title": title, "conversation_id": conversation_id, "current_node": "a",
            "create_time": 1756000000.0, "update_time": 1756000002.0,
            "default_model_slug": "gpt-4o", "mapping": {
                "root": {"id": "root", "parent": None, "children": ["u"], "message": None},
                "u": node("u", "root", "user",
                          {"content_type": "multimodal_text", "parts": parts}, ["a"]),
                "a": node("a", "u", "assistant",
                          {"content_type": "text", "parts": ["Seen."]}, [])}}


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_split_chatgpt_zip_with_an_image_and_a_missing_one(client, app):
    picture = chatgpt_conversation("pic-1", "Look at this", [
        "Before the picture.",
        {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-Abc1"},
        "Between.",
        {"content_type": "image_asset_pointer", "asset_pointer": "sediment://file_missing"},
        "After."])
    archive = zipped({
        "conversations-000.json": (SAMPLES / "chatgpt-tree.json").read_bytes(),
        "conversations-001.json": json.dumps([picture]).encode(),
        "file-Abc1-photo.png": png(), "user.json": b"{}"})

    report = imported(client, "export.zip", archive)
    assert "2 conversations imported" in report

    found = conversation(app, "Look at this")
    user = found["messages"][0]
    assert user.content == ("Before the picture.\n\nBetween.\n\nAfter.\n\n"
                            "_(an image that is not in the export was left out)_")
    with app.app_context():
        [image] = db.session.scalars(db.select(Attachment)).all()
        assert (image.message_id, image.width, image.height) == (user.id, 8, 6)
    assert conversation(app, "Assist user with summary")["branch_points"] == [2, 2]


def test_one_unreadable_conversation_among_good_ones_is_skipped(client, app):
    good = json.loads((SAMPLES / "chatgpt-modern-export.json").read_text())
    bad = {"title": "Broken", "conversation_id": "x", "mapping": {
        "n": {"parent": None, "message": {"author": "not an object", "content": {}}}}}
    report = imported(client, "conversations.json", json.dumps([good[0], bad, good[2]]).encode())
    assert "2 conversations imported, 1 skipped" in report
    assert "Broken: Its messages are not in the shape the export format has." in report


def test_integers_beyond_64_bits_are_read(client, app):
    """JSON allows them; the fast parser does not, so the file is read again slowly."""
    chats = json.loads((SAMPLES / "openwebui-export.json").read_text())
    chats[1]["chat"]["history"]["messages"]["ta1"]["timestamp"] = 2**70
    page = imported(client, "chats.json", json.dumps(chats).encode())
    assert "3 conversations imported" in page


def test_a_file_broken_part_way_keeps_what_came_before(client, app):
    whole = (SAMPLES / "openwebui-export.json").read_bytes()
    cut = whole[: whole.index(b'"id": "simple-chat"') + 40]
    page = imported(client, "chats.json", cut)
    assert "2 conversations imported" in page
    assert "The file stops being valid JSON in conversation 3 (premature EOF)" in page


@pytest.mark.parametrize(("name", "body", "sentence"), [
    ("notes.txt", b"Dear diary", "The file is not JSON (nor a zip file)"),
    ("empty.zip", zipped({"readme.txt": b"hi"}), "This zip file holds no JSON file"),
])
def test_a_file_that_is_not_an_export_gets_a_clear_sentence(client, app, name, body, sentence):
    response = upload(client, name, body)
    assert response.status_code == 422
    assert sentence in text_of(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Conversation.id))) == 0


def test_json_that_holds_no_conversation_says_so(client, app):
    page = imported(client, "other.json", b'{"name": "a package", "version": 1}')
    assert "This file is not an export this app can read" in page
    assert "0 conversations imported" in page


def test_a_zip_bomb_is_refused_unread(client, app):
    bomb = zipped({"conversations.json": b"[" + b" " * (8 * 2**20) + b"]"})
    response = upload(client, "export.zip", bomb)
    assert response.status_code == 422
    assert "unpacks to more than 100 times its packed size" in text_of(
        response.get_data(as_text=True))


def test_an_upload_over_the_limit_is_refused_with_a_sentence(make_app):
    client = make_app(IMPORT_MAX_BYTES=4096).test_client()
    response = upload(client, "chatgpt-tree.json")
    assert response.status_code == 413
    assert "This file is larger than the 4 KB an import may be" in text_of(
        response.get_data(as_text=True))
    assert "IMPORT_MAX_BYTES" in text_of(response.get_data(as_text=True))


def test_imported_chats_belong_to_the_importer_only(app):
    mine, theirs = app.test_client(), app.test_client()
    start_chat(theirs, "Their own chat")
    response = mine.post("/import", data={"export": (
        io.BytesIO((SAMPLES / "chatgpt-tree.json").read_bytes()), "c.json")})
    job_page = response.headers["Location"]
    assert theirs.get(job_page).status_code == 404
    wait_until(lambda: "Import another file" in mine.get(job_page).get_data(as_text=True))
    report = upload(mine, "chatgpt-tree.json").get_data(as_text=True)
    assert "1 already here" in text_of(report)
    [link] = re.findall(r'href="(/c/[^"]+)"', report.split("Already here")[1])

    assert mine.get(link).status_code == 200
    assert theirs.get(link).status_code == 404
    assert "Assist user with summary" not in theirs.get("/").get_data(as_text=True)
    assert "Assist user with summary" in mine.get("/").get_data(as_text=True)
    assert "Assist user" not in theirs.get("/search?q=joke").get_data(as_text=True)
    assert "Assist user" in mine.get("/search?q=joke").get_data(as_text=True)
    # The same export imported by another owner is theirs, apart.
    assert "1 conversation imported" in imported(theirs, "chatgpt-tree.json")


def test_continuing_an_imported_chat_replays_its_shown_branch(client, app, upstream):
    imported(client, "chatgpt-modern-export.json")
    found = conversation(app, "Deploying the staging cluster")["conversation"]
    url = f"/c/{found.public_id}"
    upstream.enqueue(Reply("Then page someone."))
    client.post(f"{url}/messages", data={"content": "And then?"})
    upstream.wait_for_requests(1)
    sent = [(m["role"], m["content"]) for m in upstream.sent_messages()]
    assert sent == [("system", "The user is an SRE.\n\nAnswer concisely."),
                    ("user", "How do I roll back the deploy?"),
                    ("assistant", "Run `helm rollback staging`."),
                    ("user", "And if that fails?"),
                    ("assistant", "Restore from the last known-good chart."),
                    ("user", "And then?")]


def test_hostile_text_is_stored_clean_and_rendered_sanitized(client, app):
    hostile = chatgpt_conversation("h-1", "<script>alert(1)</script>\x00", [
        "<img src=x onerror=alert(1)>\x07 hi\x00 there"])
    page = upload(client, "<script>alert(2)</script>\x00.json",
                  json.dumps([hostile]).encode()).get_data(as_text=True)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;.json" in page and "<script>alert" not in page
    found = conversation(app, "<script>alert(1)</script>")
    assert found["messages"][0].content == "<img src=x onerror=alert(1)> hi there"
    page = client.get(f"/c/{found['conversation'].public_id}").get_data(as_text=True)
    assert "<img src=x onerror" not in page and "<script>alert(1)" not in page


def branchy_conversation(client, app, upstream) -> str:
    """A chat with a system prompt, parameters, two versions of a reply (the first shown),
    reasoning, usage and an image; its URL."""
    upstream.enqueue(Reply("First answer.", usage={"prompt_tokens": 5, "completion_tokens": 2,
                                                   "total_tokens": 7}))
    url = start_chat(client, "Describe", system_prompt="Be exact", model="Qwen3-8B")
    first = next(m for m in messages_of(app) if m.content == "First answer.")
    upstream.enqueue(Reply("Second answer."))
    client.post(f"{url}/messages/{first.id}/retry")
    client.post(f"{url}/messages/{first.id}/show")
    with app.app_context():
        stored = db.session.get(Message, first.id)
        stored.reasoning = "Thought about it."
        user = db.session.get(Message, first.parent_id)
        user.attachments.append(Attachment(content_type="image/png", data=png("blue"),
                                           width=8, height=6, byte_size=len(png("blue"))))
        stored.conversation.params = {"temperature": 0.3}
        db.session.commit()
    return url


def comparable(app, public_id: str) -> dict:
    """What export then import must keep: the export without its id and numbers' origin."""
    with app.app_context():
        from webapp.conversations.export import as_json
        found = db.session.scalar(db.select(Conversation).where(
            Conversation.public_id == public_id))
        data = as_json(found)
    data.pop("id")
    return data


def test_export_then_import_gives_the_same_conversation(client, app, upstream):
    url = branchy_conversation(client, app, upstream)
    exported = client.get(f"{url}/export.json").data
    assert json.loads(exported)["format"] == "regolo-chat/2"

    report = upload(client, "Describe.json", exported).get_data(as_text=True)
    [link] = re.findall(r'href="/c/([^"]+)"', report.split("Imported</h3>")[1])

    original, copy = comparable(app, url.rsplit("/", 1)[1]), comparable(app, link)
    assert copy == original
    assert len(copy["messages"]) == 3 and copy["shown"] == 2
    assert copy["params"] == {"temperature": 0.3} and copy["system_prompt"] == "Be exact"
    assert copy["messages"][1]["reasoning"] == "Thought about it."
    assert copy["messages"][1]["usage"]["total_tokens"] == 7
    assert base64.b64decode(copy["messages"][0]["images"][0]["data"]) == png("blue")


def test_the_earlier_export_format_is_still_read(client, app):
    earlier = {"format": "regolo-chat/1", "id": "old1", "title": "Old chat", "model": "M1",
               "created_at": "2026-01-31T09:15:02+00:00",
               "updated_at": "2026-01-31T09:16:00+00:00", "system_prompt": "Be kind",
               "messages": [
                   {"role": "user", "content": "Hi", "model": None, "status": "complete",
                    "created_at": "2026-01-31T09:15:02+00:00", "usage": None},
                   {"role": "assistant", "content": "Hello", "model": "M1",
                    "status": "complete", "created_at": "2026-01-31T09:15:03+00:00",
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                              "total_tokens": 2}}]}
    imported(client, "old.json", json.dumps(earlier).encode())
    found = conversation(app, "Old chat")
    assert found["shown"] == [("user", "Hi"), ("assistant", "Hello")]
    assert found["system_prompt"] == "Be kind" and found["conversation"].model == "M1"
    assert found["messages"][-1].total_tokens == 2


def test_an_export_larger_than_other_uploads_passes_with_its_token(make_app):
    """IMPORT_MAX_BYTES, not MAX_CONTENT_LENGTH, bounds the upload, though the CSRF check
    reads the form before the view runs."""
    app = make_app(WTF_CSRF_ENABLED=True, MAX_CONTENT_LENGTH=8 * 1024,
                   IMPORT_MAX_BYTES=64 * 1024)
    client = app.test_client()
    page = client.get("/import").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    body = (SAMPLES / "chatgpt-tree.json").read_bytes()
    assert 8 * 1024 < len(body) < 64 * 1024
    response = upload(client, "c.json", body, csrf_token=token)
    assert response.status_code == 200
    assert "1 conversation imported" in text_of(response.get_data(as_text=True))


def chatgpt_nodes(*nodes: tuple) -> dict:
    """A ChatGPT mapping from (key, parent, role, content, extra message fields) tuples."""
    mapping = {"root": {"id": "root", "parent": None, "children": [], "message": None}}
    for number, (key, parent, role, content, extra) in enumerate(nodes):
        mapping[key] = {"id": key, "parent": parent, "children": [], "message": {
            "id": key, "author": {"role": role, "name": extra.pop("name", None)},
            "create_time": 1756000000.0 + number, "content": content,
            "status": "finished_successfully", "recipient": extra.pop("recipient", "all"),
            "metadata": extra}}
        mapping[parent]["children"].append(key)
    return mapping


def test_chatgpt_turn_pieces_make_one_reply_with_reasoning_and_fenced_code(client, app):
    text = lambda value: {"content_type": "text", "parts": [value]}  # noqa: E731
    mapping = chatgpt_nodes(
        ("memory", "root", "user", {"content_type": "model_editable_context",
                                    "model_set_context": "Likes Go."}, {}),
        ("q", "memory", "user", text("Sum 1..10 in Python"), {}),
        ("think", "q", "assistant", {"content_type": "thoughts", "thoughts": [
            {"summary": "Plan", "content": "Use sum(range())."}]}, {"model_slug": "o3"}),
        ("recap", "think", "assistant", {"content_type": "reasoning_recap",
                                         "content": "Thought for 2s"}, {}),
        ("code", "recap", "assistant", {"content_type": "code", "language": "python",
                                        "text": "print(sum(range(1, 11)))"},
         {"recipient": "python"}),
        ("out", "code", "tool", {"content_type": "execution_output", "text": "55"},
         {"name": "python"}),
        ("search", "out", "assistant", {"content_type": "code", "text": "search('x')"},
         {"recipient": "browser"}),
        ("quote", "search", "tool", {"content_type": "tether_quote", "text": "noise"},
         {"name": "browser"}),
        ("answer", "quote", "assistant", text("It is 55."), {}),
        ("again", "q", "assistant", text("55."), {"model_slug": "gpt-4o"}),
        ("hidden", "answer", "user", text("(hidden)"),
         {"is_visually_hidden_from_conversation": True}),
    )
    raw = {"title": "Pieces", "conversation_id": "p-1", "current_node": "hidden",
           "default_model_slug": "gpt-4o", "mapping": mapping}
    imported(client, "conversations.json", json.dumps([raw]).encode())

    found = conversation(app, "Pieces")
    assert len(found["messages"]) == 3  # the question and two versions of its reply
    assert found["shown"] == [("user", "Sum 1..10 in Python"), (
        "assistant", "```python\nprint(sum(range(1, 11)))\n```\n\n```\n55\n```\n\nIt is 55.")]
    assert found["shown_reasoning"][1] == "Plan\n\nUse sum(range()).\n\nThought for 2s"
    assert found["shown_models"][1] == "o3"
    assert found["versions"][found["shown"][1][1]] == (1, 2)
    assert [m.model for m in found["messages"] if m.content == "55."] == ["gpt-4o"]
    assert not any("Likes Go" in m.content or "search(" in m.content or "noise" in m.content
                   for m in found["messages"])


def test_a_long_import_lets_the_workers_other_greenlets_run(app):
    """Between conversations the import yields: reply streams and gunicorn's heartbeat go
    on under the gevent worker."""
    import gevent

    from webapp.imports.run import run
    from webapp.imports.save import SaveSettings
    from webapp.imports.source import ZipLimits

    ticks: list[int] = []

    def ticker():
        while True:
            ticks.append(1)
            gevent.sleep(0)

    def importing():
        with app.app_context():
            before = len(ticks)
            report = run(io.BytesIO((SAMPLES / "openwebui-export.json").read_bytes()),
                         "o" * 32, ZipLimits(10, 2**30, 100, 2**20),
                         SaveSettings("m", 200, 4, 2**20, app.extensions["images"]))
            return report, len(ticks) - before

    other = gevent.spawn(ticker)
    report, ticks_during_import = gevent.spawn(importing).get(timeout=30)
    other.kill()
    assert len(report.having("imported")) == 3
    assert ticks_during_import >= 3


def test_a_running_import_refreshes_its_page_and_a_dead_one_says_so(client, app):
    from datetime import timedelta

    from webapp.conversations.models import utcnow
    from webapp.imports.jobs import ImportJob

    client.get("/import")  # this browser's owner id, made on its first page
    with client.session_transaction() as session:
        owner = session["owner"]
    with app.app_context():
        running = ImportJob(owner_id=owner, filename="big.zip", bytes_total=1000,
                            bytes_read=250, report={"outcomes": [
                                {"title": "First", "status": "imported", "public_id": "abc",
                                 "reason": ""}], "problem": None})
        dead = ImportJob(owner_id=owner, filename="dead.zip", bytes_total=1000,
                         bytes_read=500, updated_at=utcnow() - timedelta(minutes=5))
        db.session.add_all([running, dead])
        db.session.commit()
        running_id, dead_id = running.public_id, dead.public_id

    page = client.get(f"/import/{running_id}").get_data(as_text=True)
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert '<progress id="import-progress" max="100" value="25">' in page
    assert "1 conversation imported so far." in text_of(page)
    assert f'hx-get="/import/{running_id}"' in page and 'hx-trigger="every 2s"' in page
    fragment = client.get(f"/import/{running_id}", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="import-job"')
    assert "<html" not in fragment.get_data(as_text=True)

    page = client.get(f"/import/{dead_id}").get_data(as_text=True)
    assert "http-equiv" not in page and "<progress" not in page and "hx-trigger" not in page
    assert "This import stopped before the end" in text_of(page)

    with app.app_context():  # a month on, the next import clears them
        db.session.execute(db.update(ImportJob).values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    imported(client, "chatgpt-tree.json")
    assert client.get(f"/import/{running_id}").status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ImportJob.id))) == 1


def test_an_imported_chat_is_shared_and_exported_like_any_other(client, app):
    imported(client, "chatgpt-tree.json")
    url = f"/c/{conversation(app, 'Assist user with summary')['conversation'].public_id}"

    exported = json.loads(client.get(f"{url}/export.json").data)
    assert len(exported["messages"]) == 11
    shown = {m["number"]: m for m in exported["messages"]}[exported["shown"]]
    assert shown["content"].startswith(JOKE) and shown["model"] == "text-davinci-002-render-sha"

    public = text_of(app.test_client().get(share_link(client, url)).get_data(as_text=True))
    assert "hi again" in public and "so cool bro" not in public


def test_messages_without_keys_or_with_repeated_ones_do_not_hang_the_import(client, app):
    broken = {"format": "regolo-chat/2", "id": "k1", "title": "Odd keys", "model": "m",
              "shown": 2, "messages": [
                  {"number": None, "parent": None, "role": "user", "content": "No key"},
                  {"number": 1, "parent": None, "role": "user", "content": "One"},
                  {"number": 2, "parent": 1, "role": "assistant", "content": "Two"},
                  {"number": 2, "parent": 1, "role": "assistant", "content": "Two again"},
                  {"number": 3, "parent": 3, "role": "user", "content": "Own parent"}]}
    imported(client, "odd.json", json.dumps(broken).encode())
    found = conversation(app, "Odd keys")
    assert found["shown"] == [("user", "One"), ("assistant", "Two")]
    assert sorted(m.content for m in found["messages"]) == ["One", "Own parent", "Two"]


def test_open_webui_reasoning_from_the_output_list_and_images_as_data_urls(client, app):
    chats = json.loads((SAMPLES / "openwebui-export.json").read_text())
    chat = chats[0]
    reply = chat["chat"]["history"]["messages"]["ra2"]
    reply["content"] = "255"  # no <details> block: the output list holds the reasoning
    question = chat["chat"]["history"]["messages"]["ra1"]
    question["files"] = [
        {"type": "image", "url": "data:image/png;base64," + base64.b64encode(png()).decode()},
        {"type": "image", "url": "https://elsewhere.invalid/cat.png", "name": "cat\x00.png"}]
    imported(client, "chats.json", json.dumps([chat]).encode())

    found = conversation(app, "Chat with reasoning")
    assert found["shown_reasoning"][1] == "15 * 17 = 15 * 10 + 15 * 7 = 150 + 105 = 255"
    assert found["shown"][0] == ("user", "What is 15 * 17?\n\n_(cat.png was left out)_")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 1


def shaped_like_exports():
    """Arbitrary JSON, leaning towards the keys the export formats use."""
    from hypothesis import strategies as st

    keys = st.sampled_from(["mapping", "message", "parent", "children", "author", "role",
                            "content", "content_type", "parts", "current_node", "chat",
                            "history", "messages", "parentId", "currentId", "format",
                            "messagesTree", "conversationId", "text", "number", "title"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=12), st.sampled_from(["regolo-chat/2", "user",
                                                               "assistant", "text"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


def test_any_shape_of_conversation_is_skipped_or_imported_never_an_error(app):
    """Whatever one item of an export holds, the import goes on with the next."""
    from hypothesis import HealthCheck, given, settings

    from webapp.imports.run import run
    from webapp.imports.save import SaveSettings
    from webapp.imports.source import ZipLimits

    good = json.loads((SAMPLES / "chatgpt-modern-export.json").read_text())[2]

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(shaped_like_exports())
    def check(item):
        body = json.dumps([item, good], allow_nan=False).encode()
        with app.app_context():
            report = run(io.BytesIO(body), "f" * 32, ZipLimits(10, 2**30, 100, 2**20),
                         SaveSettings("m", 200, 4, 2**20, app.extensions["images"]))
        assert report.problem is None or "not an export" not in report.problem
        assert report.outcomes[-1].status in ("imported", "already")
        assert report.outcomes[0].status in ("imported", "already", "skipped")

    check()


def test_chatgpt_tree_is_read_through_parents_when_children_lists_are_incomplete(client, app):
    [raw] = json.loads((SAMPLES / "chatgpt-tree.json").read_text())
    for node in raw["mapping"].values():
        node["children"] = []
    imported(client, "conversations.json", json.dumps([raw]).encode())
    found = conversation(app, "Assist user with summary")
    assert len(found["messages"]) == 11 and found["branch_points"] == [2, 2]
    assert found["versions"]["hi again"] == (2, 2)


def test_librechat_flat_messages_give_the_same_tree_as_nested_ones(client, app):
    nested = json.loads((SAMPLES / "librechat-tree.json").read_text())

    def flat(items):
        for item in items:
            yield {key: value for key, value in item.items() if key != "children"}
            yield from flat(item.get("children", []))

    flattened = {**nested, "conversationId": "flat-copy", "title": "Flat",
                 "messages": list(flat(nested["messages"]))}
    imported(client, "nested.json", json.dumps(nested).encode())
    imported(client, "flat.json", json.dumps(flattened).encode())
    tree_of = conversation(app, nested["title"])
    flat_tree = conversation(app, "Flat")
    for key in ("shown", "shown_models", "system_prompt", "branch_points"):
        assert flat_tree[key] == tree_of[key]
    assert len(flat_tree["messages"]) == len(tree_of["messages"]) > 5


def test_a_device_link_joins_two_browsers_that_imported_the_same_export(app):
    from tests.test_devices import make_link, use_link

    laptop, phone = app.test_client(), app.test_client()
    imported(laptop, "chatgpt-tree.json")
    imported(phone, "chatgpt-tree.json")
    assert use_link(phone, make_link(laptop)).status_code == 303

    with app.app_context():
        copies = db.session.scalars(db.select(Conversation).where(
            Conversation.title == "Assist user with summary")).all()
    assert len(copies) == 2 and len({copy.owner_id for copy in copies}) == 1
    assert "1 already here" in imported(phone, "chatgpt-tree.json")
