"""Share links: a public read-only snapshot, update, revoke, continue a copy, bad tokens."""

from __future__ import annotations

import re

import pytest

from tests.conftest import messages_of, share_link, start_chat, text_of
from webapp.conversations import tree
from webapp.conversations.models import Conversation, Share, Status
from webapp.extensions import db
from webapp.share import snapshot


@pytest.fixture
def viewer(app):
    """A browser that has never visited the app."""
    return app.test_client()


def meta(html: str, name: str) -> str:
    """The raw (still escaped) content of a <meta> tag, by name or property."""
    return re.search(rf'<meta (?:name|property)="{name}" content="([^"]*)">', html)[1]


def test_a_share_is_a_public_read_only_page_that_sets_no_cookie(client, viewer):
    url = start_chat(client, "Explain **bold** text")
    link = share_link(client, url)
    assert re.fullmatch(r"/s/[A-Za-z0-9_-]{32,}", link)

    response = viewer.get(link)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and viewer.get_cookie("session") is None
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex">' in html
    assert "<p>Explain <strong>bold</strong> text</p>" in html
    assert "You said: Explain <strong>bold</strong> text" in html
    assert "read-only snapshot" in text_of(html)
    assert "<nav" not in html and url.rsplit("/", 1)[1] not in html
    assert re.findall(r'<form[^>]*method="post"', html) == []
    assert f'href="{link}/continue"' in html
    assert meta(html, "og:type") == "article" and meta(html, "twitter:card") == "summary"


def test_the_system_prompt_is_hidden_unless_the_owner_includes_it(client, viewer):
    url = start_chat(client, "Hi", system_prompt="Secret instructions")
    link = share_link(client, url)
    assert "Secret instructions" not in viewer.get(link).get_data(as_text=True)

    assert share_link(client, url, include_system_prompt="1") == link
    assert "Secret instructions" in viewer.get(link).get_data(as_text=True)


def test_a_share_is_a_snapshot_until_the_owner_updates_it(client, viewer):
    url = start_chat(client, "First question")
    link = share_link(client, url)
    client.post(f"{url}/messages", data={"content": "Later question"})
    client.post(f"{url}/rename", data={"title": "Renamed later"})

    page = viewer.get(link).get_data(as_text=True)
    assert "First question" in page
    assert "Later question" not in page and "Renamed later" not in page
    panel = text_of(client.get(f"{url}/share").get_data(as_text=True))
    assert "stay private until you update the link" in panel
    assert "The conversation has changed since the snapshot." in panel

    assert share_link(client, url) == link
    page = viewer.get(link).get_data(as_text=True)
    assert "Later question" in page and "You said: Later question" in page
    assert "<h1>Renamed later</h1>" in page


def test_revoking_removes_the_link_for_good(app, client, viewer):
    url = start_chat(client, "Hi")
    link = share_link(client, url)
    response = client.post(f"{url}/share/revoke")
    assert response.status_code == 303 and response.headers["Location"] == f"{url}/share"

    gone = viewer.get(link)
    assert gone.status_code == 410
    assert "removed by its owner" in gone.get_data(as_text=True)
    assert viewer.get(f"{link}/continue").status_code == 410
    assert viewer.post(f"{link}/continue").status_code == 410
    assert link not in client.get("/shares").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Share)).snapshot is None

    new_link = share_link(client, url)
    assert new_link != link
    assert viewer.get(link).status_code == 410 and viewer.get(new_link).status_code == 200


@pytest.mark.parametrize("token", ["nope", "x" * 500, "%00", "%3Cscript%3E", "a.b"])
def test_unknown_or_malformed_tokens_get_a_404_page(client, viewer, token):
    share_link(client, start_chat(client, "Another share's secret"))
    response = viewer.get(f"/s/{token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Not found" in html and "Skip to content" in html
    assert "Traceback" not in html and "secret" not in html
    assert viewer.get(f"/s/{token}/continue").status_code == 404
    assert viewer.post(f"/s/{token}/continue").status_code == 404


def test_continue_copies_the_snapshot_into_the_viewers_own_list(app, client, viewer,
                                                               upstream):
    url = start_chat(client, "Original question", system_prompt="Be brief")
    link = share_link(client, url, include_system_prompt="1")
    before = [(m.role, m.content) for m in messages_of(app)]

    confirm = viewer.get(f"{link}/continue")
    assert confirm.status_code == 200
    assert re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"',
                      confirm.get_data(as_text=True)) == [f"{link}/continue"]
    assert len(messages_of(app)) == len(before), "asking copies nothing"
    response = viewer.post(f"{link}/continue")
    assert response.status_code == 303
    copy = response.headers["Location"]
    assert copy.startswith("/c/") and copy != url
    assert "Original question" in viewer.get(copy).get_data(as_text=True)
    assert copy in viewer.get("/").get_data(as_text=True)
    assert copy not in client.get("/").get_data(as_text=True)

    viewer.post(f"{copy}/messages", data={"content": "Follow-up"})
    assert upstream.sent_messages(1) == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Original question"},
        {"role": "assistant", "content": "You said: Original question"},
        {"role": "user", "content": "Follow-up"},
    ]
    original = [(m.role, m.content) for m in messages_of(app)][: len(before)]
    assert original == before
    assert "Follow-up" not in client.get(url).get_data(as_text=True)
    assert "Follow-up" not in viewer.get(link).get_data(as_text=True)


def test_continue_leaves_out_a_system_prompt_that_was_not_shared(client, viewer, upstream):
    link = share_link(client, start_chat(client, "Hi", system_prompt="Hidden"))
    copy = viewer.post(f"{link}/continue").headers["Location"]
    viewer.post(f"{copy}/messages", data={"content": "Next"})
    assert [m["role"] for m in upstream.sent_messages(1)] == ["user", "assistant", "user"]


def test_deleting_a_conversation_deletes_its_shares(app, client, viewer):
    url = start_chat(client, "Hi")
    link = share_link(client, url)
    client.post(f"{url}/delete")
    assert viewer.get(link).status_code == 404
    with app.app_context():
        assert db.session.scalars(db.select(Share)).all() == []


def test_link_preview_tags_are_escaped(client, viewer):
    url = start_chat(client, 'He said "hi" <script>alert(1)</script>\n\n  and   more')
    client.post(f"{url}/rename", data={"title": 'A "quoted" <script>alert(2)</script>'})
    html = viewer.get(share_link(client, url)).get_data(as_text=True)

    assert "<script>alert" not in html
    for name in ("og:title", "twitter:title"):
        assert meta(html, name) == "A &#34;quoted&#34; &lt;script&gt;alert(2)&lt;/script&gt;"
    for name in ("og:description", "twitter:description", "description"):
        assert meta(html, name) == ("He said &#34;hi&#34; &lt;script&gt;alert(1)&lt;/script&gt;"
                                    " and more")


def test_the_description_is_short_and_folded():
    long = {"messages": [{"role": "assistant", "content": "x"},
                         {"role": "user", "content": "word\n\t " * 100}]}
    text = snapshot.description(long)
    assert len(text) == 200 and text.endswith("…") and "\n" not in text
    assert snapshot.description({"messages": []}) == snapshot.DEFAULT_DESCRIPTION


def test_replies_being_written_or_failed_without_text_are_not_shared(app):
    with app.app_context():
        conversation = Conversation(owner_id="o" * 43, model="m")
        db.session.add(conversation)
        tree.append(conversation, "user", "Q1")
        tree.append(conversation, "assistant", "", status=Status.ERROR)
        tree.append(conversation, "user", "Q2")
        tree.append(conversation, "assistant", "Half a rep", status=Status.STREAMING)
        frozen = snapshot.take(conversation, include_system_prompt=False)
        db.session.rollback()
    assert [m["content"] for m in frozen["messages"]] == ["Q1", "Q2"]


def test_htmx_share_returns_the_panel_with_a_copyable_link(client):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/share", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<nav" not in html
    assert 'id="share-panel"' in html
    assert re.search(r'<input id="share-link" type="url" value="http://localhost/s/[^"]+" '
                     r"readonly>", html)
    assert '<button type="button" data-copy="share-link" hidden>Copy link</button>' in html
    assert "Update link" in html and "Revoke link" in html

    revoked = client.post(f"{url}/share/revoke", headers={"HX-Request": "true"})
    assert "Create link" in revoked.get_data(as_text=True)


def test_the_shares_page_updates_and_revokes_each_link(client, viewer):
    url = start_chat(client, "Listed chat", system_prompt="Listed prompt")
    link = share_link(client, url, include_system_prompt="1")
    page = client.get("/shares").get_data(as_text=True)
    assert "Listed chat" in page and link in page
    assert 'aria-label="Revoke the link to “Listed chat”"' in page

    client.post(f"{url}/messages", data={"content": "Newer"})
    form = page.split(f'action="{url}/share"')[1].split("</form>")[0]
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', form))
    response = client.post(f"{url}/share", data=fields)
    assert response.status_code == 303 and response.headers["Location"] == "/shares"
    shared = viewer.get(link).get_data(as_text=True)
    assert "Newer" in shared and "Listed prompt" in shared

    response = client.post(f"{url}/share/revoke", data={"back": "shares"})
    assert response.headers["Location"] == "/shares"
    assert "You have not shared any conversation" in client.get("/shares").get_data(
        as_text=True)


def test_the_conversation_page_links_to_share_and_export(client):
    url = start_chat(client, "Hi")
    html = client.get(url).get_data(as_text=True)
    for path in ("/share", "/export.md", "/export.json"):
        assert f'href="{url}{path}"' in html
    assert 'href="/shares"' in html
