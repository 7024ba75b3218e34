"""Search: the owner's titles and messages, safe snippets, any query, an index kept up to date."""

from __future__ import annotations

import re

import pytest
from html import unescape

from flask_migrate import check, downgrade, upgrade
from markupsafe import escape
from sqlalchemy import text

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of, wait_for_generations, wait_until
from webapp.extensions import db

HTMX = {"HX-Request": "true"}


def on_sqlite(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "sqlite"


def indexed_rows(app) -> tuple[list, list]:
    """(id, text) rows of the SQLite search tables: messages, then titles."""
    with app.app_context():
        return tuple(sorted(tuple(row) for row in db.session.execute(text(
            f"SELECT rowid, {column} FROM search_{table}")))
            for table, column in (("messages", "content"), ("titles", "title")))


def search(client, query: str, **headers) -> str:
    response = client.get("/search", query_string={"q": query}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def message_links(html: str) -> list[str]:
    return re.findall(r'href="(/c/[^"]+/messages/\d+)"', html)


def title_links(html: str) -> list[str]:
    return re.findall(r'<li><a href="(/c/[^"/]+)">', html)


def test_finds_titles_and_messages_with_marked_snippets(client, app):
    url = start_chat(client, "Tell me about the pangolin please")
    client.post(f"{url}/messages", data={"content": "Is a pangolin dangerous?"})
    start_chat(client, "Something else entirely")

    html = search(client, "pangolin")

    assert title_links(html) == [url]
    assert "Tell me about the <mark>pangolin</mark> please" in html
    links = message_links(html)
    assert len(links) == 4  # two questions, two echoed replies
    assert "Is a <mark>pangolin</mark> dangerous?" in html
    wanted = next(m for m in messages_of(app) if m.content == "Is a pangolin dangerous?")
    assert f"{url}/messages/{wanted.id}" in links
    opened = client.get(f"{url}/messages/{wanted.id}")
    assert opened.status_code == 303
    assert opened.headers["Location"] == f"{url}#m-{wanted.id}"


def test_every_word_must_match_and_case_does_not_matter(client):
    start_chat(client, "La città di Roma")
    assert len(message_links(search(client, "CITTÀ roma"))) == 2  # message and its echo
    assert not message_links(search(client, "città milano"))


def test_owners_never_see_each_others_conversations(app):
    alice, bob = app.test_client(), app.test_client()
    alice_url = start_chat(alice, "My secret recipe for tiramisu")
    start_chat(bob, "Bob asks about tiramisu too")

    alice_results = search(alice, "tiramisu")
    bob_results = search(bob, "tiramisu")

    assert "secret recipe" in alice_results and "Bob asks" not in alice_results
    assert "Bob asks" in bob_results and "secret recipe" not in bob_results
    assert all(link.startswith(alice_url) for link in message_links(alice_results))
    assert not any(link.startswith(alice_url) for link in message_links(bob_results))
    alice_message = messages_of(app)[0]
    assert alice_message.content.startswith("My secret")
    assert bob.get(f"{alice_url}/messages/{alice_message.id}").status_code == 404


def test_snippets_escape_message_text_and_mark_only_matches(client):
    start_chat(client, 'Look: <script>alert("owned")</script> <b>marmalade</b> & more')

    html = search(client, "marmalade")

    snippets = re.findall(r'<p class="snippet">(.*?)</p>', html, re.S)
    assert len(snippets) == 2  # the message and its echo
    for snippet in snippets:
        assert "<script" not in snippet and "<b>" not in snippet
        assert "alert(&#34;owned&#34;)" in snippet and "&amp; more" in snippet
        assert re.sub(r"</?mark>", "", snippet) == str(escape(unescape(
            re.sub(r"</?mark>", "", snippet))))  # only <mark> tags are markup
        assert "<mark>marmalade</mark>" in snippet
    assert "\ue000" not in html and "\ue002" not in html


def test_markup_in_a_query_is_only_text(client):
    start_chat(client, "the <mark> tag")
    html = search(client, "<mark> tag")
    assert "<mark>tag</mark>" in html and "the <mark> tag" not in html
    assert "Search: “&lt;mark&gt; tag”" in html


@pytest.mark.parametrize("query", [
    '"', '"unbalanced', "(", ")", "((a", "*", "a*", "-", "-bread", "NEAR", "NEAR(a b)",
    "a OR b", "AND", "NOT x", "^start", "content:bread", "{content}: bread", "a + b",
    "'; DROP TABLE messages; --", "\x00bread", "🥖 bread", "bread " * 40, "x" * 2000,
])
def test_hostile_queries_never_fail(client, query):
    start_chat(client, "Fresh bread every morning")
    html = search(client, query)
    assert "Search" in text_of(html)


def test_operators_are_searched_as_words(client):
    start_chat(client, "Bread or butter")
    start_chat(client, "Only jam")
    assert message_links(search(client, "bread OR jam")) == []
    assert len(message_links(search(client, "bread or"))) == 2  # message and its echo
    assert message_links(search(client, "-bread")) != []


def test_long_queries_use_the_first_words_and_say_so(client):
    start_chat(client, "alpha")
    html = search(client, "alpha " + "beta " * 30)
    assert "Only the first 20 words were searched for." in html


def test_an_empty_query_explains_itself(client):
    assert "Type words in the search box" in search(client, "   ")
    assert "Type words in the search box" in search(client, "")


def test_rename_and_delete_keep_the_index_up_to_date(client, app):
    url = start_chat(client, "Ordinary words")
    client.post(f"{url}/rename", data={"title": "Quokka facts"})
    assert title_links(search(client, "quokka")) == [url]
    assert title_links(search(client, "ordinary")) == []

    client.post(f"{url}/delete")

    assert "Nothing in your conversations matches" in search(client, "quokka")
    assert "Nothing in your conversations matches" in search(client, "ordinary")
    if on_sqlite(app):  # PostgreSQL maintains its expression indexes itself
        assert indexed_rows(app) == ([], [])
    start_chat(client, "New words")  # SQLite may give the new rows the freed ids
    assert "Nothing in your conversations matches" in search(client, "ordinary")


def test_the_index_holds_exactly_the_finished_messages_and_every_title(client, app):
    if not on_sqlite(app):
        pytest.skip("the FTS5 tables exist on SQLite only")
    url = start_chat(client, "One", system_prompt="Be kind.")
    client.post(f"{url}/messages", data={"content": "Two"})
    start_chat(client, "Three")
    messages, titles = indexed_rows(app)
    assert messages == sorted((m.id, m.content) for m in messages_of(app))
    assert [title for _, title in titles] == ["One", "Three"]


def test_a_message_on_another_branch_is_found_and_opened_on_its_branch(client, app):
    url = start_chat(client, "Capybara question")
    original = messages_of(app)[0]
    client.post(f"{url}/messages/{original.id}/edit", data={"content": "Wombat question"})
    assert f'id="m-{original.id}"' not in client.get(url).get_data(as_text=True)

    links = message_links(search(client, "capybara"))
    assert f"{url}/messages/{original.id}" in links

    assert client.get(f"{url}/messages/{original.id}").status_code == 303
    assert f'id="m-{original.id}"' in client.get(url).get_data(as_text=True)
    assert message_links(search(client, "wombat"))  # the other version is still indexed


def test_the_sidebar_has_a_search_form_that_works_without_javascript(client):
    page = client.get("/").get_data(as_text=True)
    form = re.search(r'<form class="search-form"[^>]*>.*?</form>', page, re.S).group(0)
    assert 'role="search" method="get" action="/search"' in form
    assert 'name="q"' in form and ">Search conversations</label>" in form


def test_htmx_gets_the_results_fragment(client):
    start_chat(client, "Sloths are slow")
    response = client.get("/search", query_string={"q": "sloths"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<mark>Sloths</mark>" in html
    assert "HX-Request" in response.headers["Vary"]
    restore = client.get("/search", query_string={"q": "sloths"},
                         headers=HTMX | {"HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_the_search_index_is_left_out_of_migration_checks(app):
    with app.app_context():
        check()  # exits with an error when the models and the database differ


def test_the_migration_indexes_conversations_written_before_it(client, app):
    url = start_chat(client, "Written before search existed")
    with app.app_context():
        downgrade(revision="0002")
        upgrade()
    assert title_links(search(client, "existed")) == [url]
    assert len(message_links(search(client, "existed"))) == 2


def test_a_reply_is_searchable_once_it_is_no_longer_being_written(client, app, upstream):
    url = start_chat(client, "Start")
    upstream.enqueue(Reply(tokens=["zebra "] + [f"w{i} " for i in range(40)], token_delay=0.05))
    client.post(f"{url}/messages", data={"content": "Go on"}, headers=HTMX)
    wait_until(lambda: "zebra" in messages_of(app)[-1].content)
    assert messages_of(app)[-1].is_active
    assert message_links(search(client, "zebra")) == []

    client.post(f"{url}/messages/{messages_of(app)[-1].id}/stop")
    wait_for_generations(app)

    assert message_links(search(client, "zebra")) == [f"{url}/messages/{messages_of(app)[-1].id}"]


def test_snippets_are_plain_text_without_markdown(client):
    start_chat(client, "A **bold** ocelot, an *italic* one, `code` and a "
                       "[link](https://example.com/ocelot)\n\n```python\nocelot()\n```\n\n"
                       "| ocelot | b |\n|---|---|\n| 1 | 2 |")
    html = search(client, "ocelot")
    snippets = re.findall(r'<p class="snippet">(.*?)</p>', html, re.S)
    assert snippets
    for snippet in snippets:
        plain = re.sub(r"</?mark>", "", snippet)
        for syntax in ("```", "**", "*italic*", "`", "](", "|", "---"):
            assert syntax not in plain, (syntax, plain)
        assert "italic one" in plain and "link" in plain


def test_versions_of_a_message_are_one_row_marked_as_such(client, app):
    url = start_chat(client, "The quokka question")
    for _ in range(3):  # the same echoed reply, regenerated: four versions
        reply = messages_of(app)[-1]
        assert client.post(f"{url}/messages/{reply.id}/retry").status_code == 303
    html = search(client, "quokka")
    assert len(message_links(html)) == 2  # the question and one row for the replies
    assert text_of(html).count("also in 3 other versions") == 1


def test_results_say_when(client, app):
    url = start_chat(client, "A narwhal today")
    html = search(client, "narwhal")
    with app.app_context():
        created = messages_of(app)[0].created_at
    day = created.strftime("%d %b %Y")
    assert f'<time datetime="{created.isoformat()}Z">{day}</time>' in html
    assert html.count("<time") == 3  # the title and both messages
